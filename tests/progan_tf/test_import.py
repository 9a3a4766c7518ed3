"""Importing ``progan_tf`` is cheap and TensorFlow's start-up stays quiet.

``python -m progan_tf.train --help`` must not load TensorFlow (seconds of start-up); every
module that needs it gets it through ``gancore.tf_utils``, which loads triton first and
silences TensorFlow's C++ start-up messages, so no module may import ``tensorflow`` or
``keras`` itself."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TF_MODULES = sorted(
    [
        *ROOT.glob("progan_tf/*.py"),
        ROOT / "vanilla_gan/tf_nets.py",
        ROOT / "vanilla_gan/tf_training.py",
    ]
)


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=full
    )


def _top_level_framework_imports(path: Path) -> list[str]:
    """``import tensorflow`` / ``import keras`` / ``from keras ...`` at module level."""
    found = []
    for node in ast.parse(path.read_text()).body:
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        found += [n for n in names if n.split(".")[0] in ("tensorflow", "keras")]
    return found


@pytest.mark.parametrize("path", TF_MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_tensorflow_comes_only_through_tf_utils(path: Path) -> None:
    assert _top_level_framework_imports(path) == [], (
        f"{path.name}: import TensorFlow/Keras with `from gancore.tf_utils import keras, tf`"
    )


def test_the_package_and_its_clis_load_no_framework() -> None:
    code = (
        "import sys, progan_tf, progan_tf.train, progan_tf.bench, progan_tf.sample, "
        "progan_tf.convert; progan_tf.train.build_parser().format_help(); "
        "print(sorted(m for m in ('tensorflow', 'keras', 'torch') if m in sys.modules))"
    )
    out = _run(code)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


def test_loading_tensorflow_through_the_package_is_quiet() -> None:
    pytest.importorskip("tensorflow")
    out = _run("import progan_tf.training, vanilla_gan.tf_training")
    assert out.returncode == 0, out.stderr
    assert out.stderr == "", out.stderr  # no absl / cuInit / oneDNN banner lines
