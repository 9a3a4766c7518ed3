"""``python -m progan_tf.convert`` and ``vanilla_gan.convert`` on files that are not usable
torch checkpoints: a one-line error and exit 2, never a traceback and never code run."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("tensorflow")

from gancore.errors import run_cli  # noqa: E402


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _bad_files(folder: Path) -> dict[str, Path]:
    files = {
        "zero": folder / "zero.pt",
        "text": folder / "text.pt",
        "dict": folder / "dict.pt",
        "list": folder / "list.pt",
        "evil": folder / "evil.pt",
    }
    files["zero"].write_bytes(b"")
    files["text"].write_text("hello, this is not a checkpoint\n" * 5)
    torch.save({"x": torch.zeros(2)}, files["dict"])
    torch.save([1, 2, 3], files["list"])
    files["evil"].write_bytes(pickle.dumps(_Evil(folder / "PWNED"), protocol=2))
    return files


def _run_dir(path: Path, model: str, entry_point: str) -> Path:
    """A run directory of the source framework (its checkpoints are the bad files)."""
    from gancore.config import config_to_dict
    from gancore.rundir import RunDir
    from gancore.train.schema import RunInfo, run_config

    if model == "progan":
        from progan_common.config import ProGANConfig

        cfg = ProGANConfig()
    else:
        from tests.vanilla_gan.conftest import tiny_config

        cfg = tiny_config()
    RunDir(path).create(run_config(RunInfo(model, "torch", entry_point, 3), config_to_dict(cfg)))
    return path


CASES = [
    ("zero", "is empty"),
    ("text", "cannot read"),
    ("dict", "is not a"),
    ("list", "not a checkpoint of this project"),
    ("evil", "not a file this project wrote"),
    ("missing", "does not exist"),
]


@pytest.mark.parametrize("name, fragment", CASES)
def test_progan_convert_bad_checkpoint(tmp_path: Path, capsys, name, fragment) -> None:
    from progan_tf.convert import main

    path = _bad_files(tmp_path).get(name, tmp_path / "missing.pt")
    out = tmp_path / "out"
    run = _run_dir(tmp_path / "run", "progan", "progan_torch.train")
    argv = ["torch-to-tf", "--run", str(run), "--checkpoint", str(path), "--out", str(out)]
    assert run_cli(main, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and fragment in err and err.count("\n") == 1, err
    assert "weights_only" not in err and not out.exists() and not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("name, fragment", CASES)
def test_vanilla_convert_bad_checkpoint(tmp_path: Path, capsys, name, fragment) -> None:
    from vanilla_gan.convert import main

    run = _run_dir(tmp_path / "run", "dcgan", "vanilla_gan.train")
    path = _bad_files(tmp_path).get(name, tmp_path / "missing.pt")
    out = tmp_path / "keras"
    assert run_cli(main, ["--run", str(run), "--checkpoint", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and fragment in err and err.count("\n") == 1, err
    assert "weights_only" not in err and not out.exists() and not (tmp_path / "PWNED").exists()
