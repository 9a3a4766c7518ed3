"""Load triton before TensorFlow, so torch and TensorFlow can share one process.

TensorFlow and triton (the compiler torch loads for ``torch._dynamo``, which torchvision,
torch-fidelity and torch's optimisers import on first use) each bundle their own LLVM.
Loading triton *after* TensorFlow kills the process with a segmentation fault (exit
status 139) with torch 2.14 / triton 3.8 and TensorFlow 2.21; the other order works.
``import tensorflow, torch`` alone survives, which makes the crash look random: it comes
at the first ``torchvision`` import or the first Adam step, long after the imports.

Every module of this project that imports TensorFlow calls :func:`load_triton_first`
before it, and so do the torch-side packages; a notebook that imports a project module
before ``import tensorflow`` is therefore safe. This module imports neither framework.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings

LATE_MESSAGE = (
    "tensorflow was imported before triton in this process: the first torchvision or "
    "torch-fidelity import, or the first torch optimiser step, will crash it with a "
    "segmentation fault (two copies of LLVM). Restart and import this project's modules "
    "(or `import triton`) before `import tensorflow`, or use torch and TensorFlow in "
    "separate processes."
)


def load_triton_first(warn_if_late: bool = False) -> bool:
    """Import triton now if it is installed and TensorFlow is not loaded yet.

    Returns True when triton is loaded afterwards (or was already). When TensorFlow got
    there first nothing can be repaired in this process; with ``warn_if_late`` (torch-side
    callers) a RuntimeWarning says what will crash and how to avoid it.
    """
    if "triton" in sys.modules:
        return True
    try:
        installed = importlib.util.find_spec("triton") is not None
    except (ImportError, ValueError):  # a broken or namespace-less install: nothing to load
        installed = False
    if not installed:
        return False
    if "tensorflow" in sys.modules:
        if warn_if_late:
            warnings.warn(LATE_MESSAGE, RuntimeWarning, stacklevel=2)
        return False
    try:
        import triton  # noqa: F401
    except ImportError:  # installed but unusable: torch will not load it either
        return False
    return True
