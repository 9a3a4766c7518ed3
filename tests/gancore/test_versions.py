"""Known-good versions: constraints.txt drives `make install`; every result records versions."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from gancore.hardware import (
    CONSTRAINTS_FILE,
    constraints_status,
    describe,
    installed_versions,
    read_constraints,
)

ROOT = Path(__file__).resolve().parents[2]


def test_constraints_file_pins_the_frameworks_and_the_makefile_uses_it() -> None:
    assert CONSTRAINTS_FILE == ROOT / "constraints.txt"
    pins = read_constraints(CONSTRAINTS_FILE)
    for name in ("torch", "torchvision", "tensorflow", "keras", "numpy", "torch-fidelity"):
        assert re.fullmatch(r"\d+(\.\d+)+\S*", pins[name]), (name, pins.get(name))
    assert "progan-bench" not in pins  # the project itself is installed editable, not pinned
    install = [ln for ln in (ROOT / "Makefile").read_text().splitlines() if "pip install" in ln]
    # the extras are dev, plus gpu where asked (expanded and checked in test_gpu_check.py)
    assert any("-c constraints.txt -e '.[$(EXTRAS)]'" in ln for ln in install), install
    assert re.search(r"^EXTRAS := dev\b", (ROOT / "Makefile").read_text(), re.M)
    # pyproject keeps loose ranges: no == pins there
    assert "==" not in (ROOT / "pyproject.toml").read_text()


def test_constraints_status_matches_differs_and_unpinned(tmp_path: Path) -> None:
    installed = installed_versions()
    assert installed["numpy"] == np.__version__
    good = tmp_path / "constraints.txt"
    good.write_text(f"# comment\nnumpy=={np.__version__}\nnot-installed-pkg==1.0\n")
    assert constraints_status(installed, good).endswith("(every installed pinned package matches)")
    bad = tmp_path / "other.txt"
    bad.write_text("NumPy==0.0.1  # wrong on purpose\n")
    got = constraints_status(installed, bad)
    assert got.startswith("other.txt sha256:") and f"numpy {np.__version__} != 0.0.1" in got
    assert constraints_status(installed, tmp_path / "absent.txt") == "unpinned"


def test_describe_records_every_version() -> None:
    d = describe()
    for key in ("python", "torch", "torchvision", "tensorflow", "keras", "numpy", "torch-fidelity"):
        assert key in d, key
    assert d["numpy"] == np.__version__
    assert isinstance(d["onednn_amx"], bool) and (d["cpu_bf16"] or not d["onednn_amx"])
    assert d["constraints"] == "unpinned" or d["constraints"].startswith("constraints.txt sha256:")


def test_describe_and_the_import_guard_load_no_framework() -> None:
    import subprocess
    import sys

    code = (
        "import sys, gancore.hardware, gancore.tf_import; gancore.hardware.describe(); "
        "print(sorted(m for m in ('torch', 'tensorflow', 'triton') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


def test_code_version_names_the_commit_and_whether_tracked_files_changed(tmp_path) -> None:
    import shutil
    import subprocess

    from gancore.hardware import code_version

    assert code_version(tmp_path) == {"commit": None, "dirty": None}  # not a checkout
    if shutil.which("git") is None:
        pytest.skip("git is not installed")

    def git(*args: str) -> str:
        cmd = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *args]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()

    git("init", "-q")
    (tmp_path / "a.txt").write_text("1\n")
    git("add", "a.txt")
    git("commit", "-q", "-m", "one")
    head = git("rev-parse", "HEAD")
    assert code_version(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "new.txt").write_text("untracked files do not count\n")
    assert code_version(tmp_path)["dirty"] is False
    (tmp_path / "a.txt").write_text("2\n")
    assert code_version(tmp_path) == {"commit": head, "dirty": True}
