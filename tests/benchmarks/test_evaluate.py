"""The evaluate CLI and API: input checks, real-vs-real floors, result layout."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from benchmarks.evaluate import evaluate_images, main
from benchmarks.metrics.base import n_label
from gancore.errors import UserError, run_cli
from gancore.samples import save_samples

os.environ["GANBENCH_OFFLINE"] = "1"  # never download in tests


def _imgs(n: int = 8, res: int = 32, c: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, res, res, c), dtype=np.uint8)


@pytest.mark.parametrize(
    "bad, match",
    [
        (_imgs().astype(np.float32) / 127.5 - 1, "uint8.*gancore.grid.to_uint8"),
        (_imgs()[..., :2], "1 or 3 channels"),
        (_imgs()[:, :, :16], "square"),
        (_imgs()[0], "NHWC"),
    ],
)
def test_bad_images_are_user_errors(bad, match):
    with pytest.raises(UserError, match=match):
        evaluate_images(bad, "x", reference=_imgs(), metrics="msssim", progress=False)


def test_resolution_and_channel_mismatch_and_too_few(tmp_path):
    with pytest.raises(UserError, match="samples are 32x32 but the reference set .* is 16x16"):
        evaluate_images(_imgs(), "x", reference=_imgs(res=16), metrics="swd", progress=False)
    with pytest.raises(UserError, match="channel"):
        evaluate_images(_imgs(), "x", reference=_imgs(c=1), metrics="swd", progress=False)
    with pytest.raises(UserError, match="at least 2"):
        evaluate_images(_imgs(1), "x", reference=_imgs(), metrics="msssim", progress=False)
    with pytest.raises(UserError, match="unknown metric"):
        evaluate_images(_imgs(), "x", reference=_imgs(), metrics="fud", progress=False)
    # keep-going mode records the error instead of raising
    out = evaluate_images(
        _imgs(),
        "x",
        reference=_imgs(res=16)[:, :, :, :],
        metrics="swd,birthday",
        progress=False,
        strict=False,
        cache_dir=str(tmp_path),
    )
    assert out["skipped"]["swd"].startswith("error:") and "birthday_min_dist_s8" not in out


def test_samples_from_another_resolution_than_the_dataset(tmp_path):
    path = tmp_path / "s.npz"
    save_samples(path, _imgs(4, res=64), np.arange(4))
    code = run_cli(
        main,
        [
            "--samples",
            str(path),
            "--dataset",
            "stacked-digits",
            "--metrics",
            "swd",
            "--quiet",
            "--cache-dir",
            str(tmp_path),
        ],
    )
    assert code == 2


def test_n_labels():
    assert [n_label(n) for n in (5000, 16384, 1797, 26000, 500, 8192)] == [
        "5k",
        "16k",
        "1797",
        "26k",
        "500",
        "8k",
    ]


def test_list_help_and_dry_run(capsys):
    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    assert all(
        m in listed
        for m in ("swd", "msssim", "fid", "kid", "isc", "prc", "modes", "ndb", "birthday")
    )
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert main(["--dry-run", "--dataset", "cifar10-cars", "--swd-n", "2048"]) == 0
    assert '"swd_n": 2048' in capsys.readouterr().out


def test_cli_end_to_end_on_stacked_digits(tmp_path, capsys):
    from datasets import prepare

    real = np.asarray(prepare("stacked-digits", max_res=32).array(32))
    samples = tmp_path / "samples.npz"
    save_samples(samples, real[-600:], np.arange(600), {"model": "copy of real data"})
    out = tmp_path / "metrics.json"
    argv = [
        "--samples",
        str(samples),
        "--dataset",
        "stacked-digits",
        "--metrics",
        "swd,msssim,ndb,birthday,fid",
        "--swd-n",
        "64",
        "--msssim-pairs",
        "50",
        "--ndb-n",
        "600",
        "--birthday-s",
        "300",
        "--ndb-ref-n",
        "4000",
        "--out",
        str(out),
        "--quiet",
    ]
    assert run_cli(main, argv) == 0
    res = json.loads(out.read_text())
    for key in (
        "swd_64_32px",
        "swd_64_16px",
        "swd_64_avg",
        "msssim_50_pairs",
        "msssim_real_50_pairs",
        "ndb_k10",
        "ndb_js_k10",
        "birthday_min_dist_s300",
    ):
        assert isinstance(res[key], float | int), key
    assert res["protocol"]["swd"]["seconds"] > 0 and res["protocol"]["swd"]["n"] == 64
    assert res["protocol"]["swd"]["reference"]["name"] == "stacked-digits"
    assert "GANBENCH_OFFLINE" in res["skipped"]["fid"]
    assert res["evaluation"]["samples"]["meta"] == {"model": "copy of real data"}
    assert (tmp_path / "birthday_pairs_s300.png").is_file()


def test_real_vs_real_halves_are_disjoint(tmp_path):
    out = tmp_path / "floor.json"
    argv = [
        "--real-vs-real",
        "--split-a",
        "train",
        "--split-b",
        "train",
        "--dataset",
        "stacked-digits",
        "--metrics",
        "swd,msssim",
        "--swd-n",
        "64",
        "--msssim-pairs",
        "20",
        "--out",
        str(out),
        "--quiet",
    ]
    assert run_cli(main, argv) == 0
    res = json.loads(out.read_text())
    ref, smp = res["evaluation"]["reference"], res["evaluation"]["samples"]
    assert ref["part"] == "first half" and smp["part"] == "second half"
    assert ref["count"] == smp["count"] == 128000 and smp["n"] == 64000
    assert 0 < res["swd_64_avg"] < 50


# ---------------------------------------------------------- flag checks before any metric runs
@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--out", "DIR"], "is a folder; give a file path such as"),
        (["--out", "FILE/m.json"], "is a file, not a folder"),
        (["--out", "FILE/deeper/m.json"], "is a file, not a folder"),
        (["--out", ""], "--out is empty"),
        (["--artifact-dir", "FILE"], "is a file, not a folder"),
        (["--max-samples", "0"], "--max-samples must be 1 or more, got 0"),
        (["--max-samples", "-3"], "--max-samples must be 1 or more, got -3"),
        (["--metrics", ""], "--metrics is empty"),
        (["--metrics", " , "], "--metrics is empty"),
        (["--seed", "-1"], "seed must be 0 or more"),
        (["--res", "-4"], "--res must be a power of two >= 4"),
        (["--res", "33"], "--res must be a power of two >= 4"),
        (["--swd-n", "-5"], "swd_n must be positive"),
        (["--birthday-dup-factor", "nan"], "birthday_dup_factor must be a finite number"),
        (["--birthday-dup-factor", "inf"], "birthday_dup_factor must be a finite number"),
        (["--samples", "NPY"], "is a single .npy array, not a samples .npz"),
        (["--samples", "EMPTY"], "is empty (0 bytes)"),
        (["--samples", "FEWSEEDS"], "'seeds' must hold one integer per image"),
    ],
)
def test_cli_bad_flags_exit_2_with_one_line(tmp_path, capsys, extra, fragment):
    (tmp_path / "FILE").write_text("x")
    (tmp_path / "DIR").mkdir()
    good = tmp_path / "good.npz"
    save_samples(good, _imgs(), np.arange(8))
    np.save(tmp_path / "NPY.npy", _imgs())
    (tmp_path / "NPY.npy").rename(tmp_path / "NPY")
    (tmp_path / "EMPTY").write_bytes(b"")
    np.savez(tmp_path / "FEWSEEDS.npz", images=_imgs(), seeds=np.arange(3))
    (tmp_path / "FEWSEEDS.npz").rename(tmp_path / "FEWSEEDS")
    names = {"FILE", "DIR", "NPY", "EMPTY", "FEWSEEDS"}
    extra = [str(tmp_path / a) if a.split("/")[0] in names else a for a in extra]
    argv = ["--samples", str(good), "--dataset", "stacked-digits", "--metrics", "swd"]
    argv += ["--quiet", "--cache-dir", str(tmp_path), *extra]
    assert run_cli(main, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and fragment in err and err.count("\n") == 1, err


@pytest.mark.skipif(not os.path.isdir("/sys"), reason="needs a folder nobody may write in")
def test_cli_unwritable_out_is_refused_before_evaluating(tmp_path, capsys):
    good = tmp_path / "good.npz"
    save_samples(good, _imgs(), np.arange(8))
    argv = ["--samples", str(good), "--dataset", "stacked-digits", "--metrics", "swd"]
    assert run_cli(main, [*argv, "--quiet", "--out", "/sys/ganbench-test/m.json"]) == 2
    err = capsys.readouterr().err
    assert "cannot write in /sys" in err and "choose a writable path" in err


def test_cli_result_records_versions_and_max_samples(tmp_path):
    samples = tmp_path / "s.npz"
    save_samples(samples, _imgs(40), np.arange(40))
    out = tmp_path / "new" / "m.json"
    argv = ["--samples", str(samples), "--dataset", "stacked-digits", "--metrics", "swd"]
    argv += ["--swd-n", "16", "--max-samples", "20", "--quiet"]
    assert run_cli(main, [*argv, "--out", str(out)]) == 0
    ev = json.loads(out.read_text())["evaluation"]
    assert ev["n_samples"] == 20
    sw = ev["software"]
    for key in ("python", "torch", "torchvision", "tensorflow", "keras", "numpy", "torch-fidelity"):
        assert key in sw, key
    assert sw["numpy"] == np.__version__
    assert sw["constraints"] == "unpinned" or sw["constraints"].startswith(
        "constraints.txt sha256:"
    )
