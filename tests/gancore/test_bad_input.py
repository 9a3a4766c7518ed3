"""Bad input to the trainers and samplers: one line saying what is wrong and what to do, exit
status 2, nothing lost. (Data sets, samples files and the evaluator: tests/datasets and
tests/benchmarks.)"""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

import pytest

from gancore.errors import run_cli
from gancore.rundir import RunDir

TRAIN = {
    "dcgan-torch": ("vanilla_gan.train", ["--model", "dcgan", "--framework", "torch"]),
    "dcgan-tf": (
        "vanilla_gan.train",
        ["--model", "dcgan", "--framework", "tf", "--no-jit-compile"],
    ),
    "progan-torch": ("progan_torch.train", ["--preset", "quick", "--random-data"]),
    "progan-tf": ("progan_tf.train", ["--preset", "quick", "--random-data"]),
}
SAMPLE = {
    "dcgan-torch": "vanilla_gan.sample",
    "dcgan-tf": "vanilla_gan.sample",
    "progan-torch": "progan_torch.sample",
    "progan-tf": "progan_tf.sample",
}
TINY = {
    "dcgan": ["--quick", "--res", "16", "--width", "8", "--dataset", "stacked-digits"],
    "progan": [
        "--max-res",
        "8",
        "--latent-dim",
        "8",
        "--fmap-base",
        "16",
        "--fmap-max",
        "8",
        "--stabilize-kimg",
        "0.016",
        "--fade-kimg",
        "0.016",
    ],
}
COMMON = [
    "--kimg",
    "0.064",
    "--tick-kimg",
    "0.032",
    "--snapshot-kimg",
    "0.032",
    "--grid-size",
    "4",
    "--keep-checkpoints",
    "0",
    "--no-progress",
    "--device",
    "cpu",
]


def _cli(module: str, argv: list[str], capsys) -> tuple[int, str]:
    main = importlib.import_module(module).main
    code = run_cli(main, argv)
    err = capsys.readouterr().err
    return code, err


def _argv(name: str, out: Path, *extra: str) -> tuple[str, list[str]]:
    module, own = TRAIN[name]
    return module, [*own, *TINY[name.split("-")[0]], *COMMON, "--out", str(out), *extra]


def _one_line_error(err: str, *fragments: str) -> None:
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "weights_only=False" not in err, err
    for f in fragments:
        assert f in lines[0], (f, lines[0])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One finished tiny run per trainer, with checkpoints at 32 and 64 images (copied per test)."""
    base = tmp_path_factory.mktemp("runs")
    import _pytest.capture  # noqa: F401 (capsys is function-scoped: run without it here)

    for name in TRAIN:
        module, argv = _argv(name, base / name)
        assert run_cli(importlib.import_module(module).main, argv) == 0, name
    return base


def _copy(runs: Path, name: str, tmp_path: Path) -> RunDir:
    dst = tmp_path / name
    shutil.copytree(runs / name, dst)
    return RunDir(dst)


def _damage(path: Path, how: str) -> None:
    target = path
    if path.is_dir():  # TF ProGAN: a checkpoint folder
        if how == "no-meta":
            (path / "meta.json").unlink()
            return
        target = next(p for p in path.iterdir() if p.name.startswith("ckpt.data"))
    data = target.read_bytes()
    if how == "empty":
        target.write_bytes(b"")
    elif how == "truncated":
        target.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        target.write_bytes(b"not a checkpoint at all" * 10)


@pytest.mark.parametrize("name", list(TRAIN))
@pytest.mark.parametrize("how", ["empty", "truncated", "garbage"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(
    runs, tmp_path, capsys, name, how
):
    run = _copy(runs, name, tmp_path)
    newest = run.latest_checkpoint()
    _damage(newest, how)
    module = TRAIN[name][0]
    code, err = _cli(
        module, ["--resume", str(run.path), "--kimg", "0.096", "--no-progress"], capsys
    )
    assert code == 0, err
    assert "warning: " in err and newest.name in err and "trying the previous checkpoint" in err
    assert "Traceback" not in err and "weights_only=False" not in err
    assert run.checkpoint_entries()[-1]["nimg"] == 96


@pytest.mark.parametrize("name", list(TRAIN))
def test_a_sampler_reports_a_damaged_checkpoint_in_one_line(runs, tmp_path, capsys, name):
    run = _copy(runs, name, tmp_path)
    _damage(run.latest_checkpoint(), "truncated")
    code, err = _cli(
        SAMPLE[name], ["--run", str(run.path), "--n", "2", "--out", str(tmp_path / "s.npz")], capsys
    )
    assert code == 2
    _one_line_error(err, "checkpoint")


def test_tf_progan_checkpoint_without_meta_is_a_clear_error(runs, tmp_path, capsys):
    run = _copy(runs, "progan-tf", tmp_path)
    for entry in run.checkpoint_entries():
        _damage(entry["path"], "no-meta")
    code, err = _cli("progan_tf.train", ["--resume", str(run.path), "--kimg", "0.096"], capsys)
    assert code == 2
    _one_line_error(err, "no checkpoint of", "could be read", "--overwrite")


@pytest.mark.parametrize("content", ["{broken", "[1, 2]", '{"schema": 1}'])
@pytest.mark.parametrize("name", ["dcgan-torch", "progan-torch"])
def test_a_damaged_config_is_one_line_for_train_and_sample(runs, tmp_path, capsys, name, content):
    run = _copy(runs, name, tmp_path)
    run.config_path.write_text(content)
    code, err = _cli(TRAIN[name][0], ["--resume", str(run.path), "--kimg", "0.096"], capsys)
    assert code == 2
    _one_line_error(err, "config")
    code, err = _cli(
        SAMPLE[name], ["--run", str(run.path), "--n", "2", "--out", str(tmp_path / "s.npz")], capsys
    )
    assert code == 2
    _one_line_error(err, "config")


@pytest.mark.parametrize("name", list(TRAIN))
@pytest.mark.parametrize(
    "flags,fragment",
    [
        (["--seed", "-1"], "seed"),
        (["--grid-size", "0"], "grid_size"),
        (["--device", "tpu7"], "device"),
        (["--kimg", "nan"], "finite"),
        (["--tick-kimg", "inf"], "finite"),
        (["--max-abs-loss", "0"], "max_abs_loss"),
        (["--snapshot-kimg", "0.0000001"], "snapshot_kimg"),
    ],
)
def test_bad_numbers_are_refused_before_anything_is_written(
    tmp_path, capsys, name, flags, fragment
):
    module, argv = _argv(name, tmp_path / "run", *flags)
    code, err = _cli(module, argv, capsys)
    assert code == 2
    _one_line_error(err, fragment)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", ["progan-torch", "progan-tf"])
@pytest.mark.parametrize("flags", [["--lr", "-0.001"], ["--lr-dict", "8:-1"], ["--lr", "0"]])
def test_progan_refuses_non_positive_learning_rates(tmp_path, capsys, name, flags):
    module, argv = _argv(name, tmp_path / "run", *flags)
    code, err = _cli(module, argv, capsys)
    assert code == 2
    _one_line_error(err, "learning rates must be positive")


@pytest.mark.parametrize("name", list(TRAIN))
def test_out_that_is_a_file_is_refused(tmp_path, capsys, name):
    f = tmp_path / "file"
    f.write_text("mine")
    module, argv = _argv(name, f)
    code, err = _cli(module, argv, capsys)
    assert code == 2
    _one_line_error(err, "is a file")
    assert f.read_text() == "mine"


@pytest.mark.parametrize("name", list(TRAIN))
def test_sample_out_that_is_a_folder_is_refused(runs, tmp_path, capsys, name):
    code, err = _cli(
        SAMPLE[name], ["--run", str(runs / name), "--n", "2", "--out", str(tmp_path)], capsys
    )
    assert code == 2
    _one_line_error(err, "folder")


def test_a_sampler_given_the_other_frameworks_run_names_the_right_command(runs, tmp_path, capsys):
    code, err = _cli(
        "progan_torch.sample",
        ["--run", str(runs / "progan-tf"), "--n", "2", "--out", str(tmp_path / "s.npz")],
        capsys,
    )
    assert code == 2
    _one_line_error(err, "python -m progan_tf.sample")
    code, err = _cli(
        "vanilla_gan.sample",
        ["--run", str(runs / "progan-torch"), "--n", "2", "--out", str(tmp_path / "s.npz")],
        capsys,
    )
    assert code == 2
    _one_line_error(err, "python -m progan_torch.sample")


@pytest.mark.parametrize("name", list(TRAIN))
def test_resume_below_the_current_position_says_so_and_changes_nothing(
    runs, tmp_path, capsys, name
):
    run = _copy(runs, name, tmp_path)
    before = run.config_path.read_text(), run.log_path.read_text()
    code, err = _cli(TRAIN[name][0], ["--resume", str(run.path), "--kimg", "0.032"], capsys)
    assert code == 0 and "is already at 0.064 kimg" in err
    assert (run.config_path.read_text(), run.log_path.read_text()) == before
