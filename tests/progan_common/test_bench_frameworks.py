"""python -m progan_common.bench_frameworks: two persistent workers timed in alternating rounds."""

from __future__ import annotations

import json
import statistics

import pytest

pytest.importorskip("tensorflow")

from gancore.errors import UserError  # noqa: E402
from progan_common import bench_frameworks  # noqa: E402

TINY = [
    "--preset", "quick", "--max-res", "8", "--latent-dim", "8", "--fmap-base", "16",
    "--fmap-max", "8", "--threads", "1",
]  # fmt: skip


def test_rounds_alternate_and_the_ratio_is_the_median_of_the_rounds(tmp_path, capsys):
    out = tmp_path / "tf_vs_torch.json"
    argv = [*TINY, "--res", "4,8", "--phases", "stabilize,fade", "--batch", "4"]
    argv += ["--steps", "1", "--warmup", "1", "--rewarm", "0", "--rounds", "3", "--json", str(out)]
    assert bench_frameworks.main(argv) == 0
    data = json.loads(out.read_text())
    # 4x4 has no fade: three rows
    assert [(r["res"], r["phase"]) for r in data["rows"]] == [
        (4, "stabilize"),
        (8, "stabilize"),
        (8, "fade"),
    ]
    for row in data["rows"]:
        rounds = row["rounds"]
        assert [x["first"] for x in rounds] == ["torch", "tf", "torch"]
        for x in rounds:
            assert x["torch_img_per_s"] > 0 and x["tf_img_per_s"] > 0
            assert x["ratio"] == pytest.approx(x["tf_img_per_s"] / x["torch_img_per_s"])
        ratios = [x["ratio"] for x in rounds]
        assert row["median_ratio"] == pytest.approx(statistics.median(ratios))
        assert row["min_ratio"] == min(ratios) and row["max_ratio"] == max(ratios)
        assert row["batch"] == 4
    assert data["options"]["rounds"] == 3 and data["hardware"]["cpu_count"] >= 1
    assert set(data["code"]) == {"commit", "dirty"}
    printed = [line for line in capsys.readouterr().out.splitlines() if "median" in line]
    assert len(printed) == 3


def test_a_worker_that_dies_is_a_user_error():
    with pytest.raises(UserError, match="the torch worker exited \\(status 2\\)"):
        bench_frameworks._Worker("torch", [*TINY, "--no-such-flag"])


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--rounds", "0"], "--rounds must be >= 1"),
        (["--res", "12"], "--res must be powers of two"),
        (["--res", "a,b"], "--res takes a comma list"),
        (["--phases", "warm"], "--phases takes"),
    ],
)
def test_bad_options_are_refused_before_any_worker_starts(extra, message):
    with pytest.raises(UserError, match=message):
        bench_frameworks.main([*TINY, *extra])


def test_profile_is_not_an_option_here(capsys):
    """The operator profile is progan_torch.bench's; here argparse refuses the flag."""
    with pytest.raises(SystemExit) as e:
        bench_frameworks.main([*TINY, "--profile", "2"])
    assert e.value.code == 2 and "--profile" in capsys.readouterr().err
