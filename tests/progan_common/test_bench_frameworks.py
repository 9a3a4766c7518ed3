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
            torch_rate, tf_rate = x["img_per_s"]
            assert torch_rate > 0 and tf_rate > 0
            assert x["ratio"] == pytest.approx(tf_rate / torch_rate)
        ratios = [x["ratio"] for x in rounds]
        assert row["median_ratio"] == pytest.approx(statistics.median(ratios))
        assert row["min_ratio"] == min(ratios) and row["max_ratio"] == max(ratios)
        assert row["batch"] == 4
    assert data["compare"] == ["torch", "tf"]
    assert data["options"]["rounds"] == 3 and data["hardware"]["cpu_count"] >= 1
    assert set(data["code"]) == {"commit", "dirty"}
    printed = [line for line in capsys.readouterr().out.splitlines() if "median" in line]
    assert len(printed) == 3


def test_compare_a_variant_with_the_default(tmp_path, capsys):
    """--compare torch:VARIANT,torch: two PyTorch workers, the variant's switched back in its
    own process only; the ratio is the second side's speed over the first's."""
    out = tmp_path / "variant.json"
    argv = [*TINY, "--res", "8", "--batch", "4", "--steps", "1", "--warmup", "1", "--rewarm", "0"]
    argv += ["--rounds", "2", "--compare", "torch:autograd-pixelnorm,torch", "--json", str(out)]
    assert bench_frameworks.main(argv) == 0
    data = json.loads(out.read_text())
    assert data["compare"] == ["torch:autograd-pixelnorm", "torch"]
    (row,) = data["rows"]
    assert [x["first"] for x in row["rounds"]] == ["torch:autograd-pixelnorm", "torch"]
    for x in row["rounds"]:
        assert x["ratio"] == pytest.approx(x["img_per_s"][1] / x["img_per_s"][0])
    assert "torch / torch:autograd-pixelnorm median" in capsys.readouterr().out


def test_a_side_with_its_own_flags(tmp_path, capsys):
    """torch[--no-fused-scale]: the flag reaches that side's worker only (each worker reports
    the configuration it built; the JSON keeps the fields that differ per side)."""
    out = tmp_path / "fused.json"
    argv = [*TINY, "--res", "8", "--batch", "4", "--steps", "1", "--warmup", "1", "--rewarm", "0"]
    argv += ["--rounds", "1", "--compare", "torch[--no-fused-scale],torch:contiguous[--amp off]"]
    assert bench_frameworks.main([*argv, "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["compare"] == ["torch[--no-fused-scale]", "torch:contiguous[--amp off]"]
    # --amp off is the quick preset's value already: no difference to record
    assert data["side_config"] == {
        "torch[--no-fused-scale]": {"fused_scale": False},
        "torch:contiguous[--amp off]": {},
    }
    printed = capsys.readouterr().out
    assert "torch:contiguous[--amp off] / torch[--no-fused-scale] median" in printed


@pytest.mark.parametrize(
    "text, sides",
    [
        ("torch,tf", ["torch", "tf"]),
        ("torch[--lr-dict 8:1e-3,16:1e-3],tf", ["torch[--lr-dict 8:1e-3,16:1e-3]", "tf"]),
        (" tf[--no-fused-scale] , tf ", ["tf[--no-fused-scale]", "tf"]),
    ],
)
def test_sides_split_at_the_commas_outside_brackets(text, sides):
    assert bench_frameworks.split_sides(text) == sides


def test_parse_side():
    parse = bench_frameworks.parse_side
    assert parse("tf") == ("tf", None, [])
    assert parse("torch:contiguous") == ("torch", "contiguous", [])
    assert parse("torch:contiguous[--amp bf16 --no-fused-scale]") == (
        "torch",
        "contiguous",
        ["--amp", "bf16", "--no-fused-scale"],
    )


def test_a_side_s_own_precision_decides_its_variant():
    """fp32-penalty runs only under bf16: a side that sets --amp bf16 itself may take it while
    the command line stays fp32, and the same side without it is refused."""
    from gancore.config import build_config, overrides_from_namespace
    from progan_common.config import PRESETS, ProGANConfig

    argv = [*TINY, "--amp", "off"]
    args = bench_frameworks.build_parser().parse_args(argv)
    cfg = build_config(
        ProGANConfig, PRESETS, args.preset, overrides_from_namespace(args, ProGANConfig)
    )
    bench_frameworks._check_side(argv, "torch:fp32-penalty[--amp bf16]", args, cfg)
    with pytest.raises(UserError, match="only under --amp bf16"):
        bench_frameworks._check_side(argv, "torch:fp32-penalty", args, cfg)


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
        (["--compare", "torch"], "--compare takes two sides"),
        (["--compare", "torch,jax"], "'jax' is not torch, tf or torch:VARIANT"),
        (["--compare", "tf:contiguous,torch"], "the variants are PyTorch's: torch:"),
        (["--compare", "torch:fast,torch"], "no variant 'torch:fast'"),
        (["--compare", "torch:autograd-penalty,torch", "--amp", "bf16"], "fp32 only"),
        (["--compare", "torch:fp32-penalty,torch"], "only under --amp bf16"),
        (["--compare", "torch:fp32-penalty[--amp off],torch"], "only under --amp bf16"),
        (["--compare", "torch[--no-fused-scale,torch"], "unbalanced brackets"),
        (["--compare", "torch]--amp off[,torch"], "unbalanced brackets"),
        (["--compare", "torch[[--amp off]],torch"], "unbalanced brackets"),
        (["--compare", "torch[--amp off]x,torch"], "one pair of brackets at its end"),
        (["--compare", "torch[],torch"], "has empty brackets"),
        (["--compare", "torch[--nope 1],torch"], "unknown flags --nope 1"),
        (["--compare", "torch[--batch 2],torch"], "--batch belong to the whole run"),
        (["--compare", "torch[--res 4],torch"], "--res belong to the whole run"),
        (["--compare", "torch[--preset cifar10],torch"], "--preset belong to the whole run"),
        (["--compare", "torch,torch[--max-res 16]"], "max_res must be the same on both sides"),
        (
            ["--compare", "torch,tf[--batch-sizes 8:2]"],
            "batch_sizes must be the same on both sides",
        ),
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
