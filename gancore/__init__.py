"""Framework-neutral helpers shared by every model in the benchmark.

Nothing in this package imports torch or tensorflow (a test checks it), so the
data layer, the harness and both frameworks can all depend on it.
"""

import os

# TensorFlow's C++ start-up messages (INFO lines, "failed call to cuInit" on machines without a
# GPU, grappler remapper notes) land in the middle of progress bars. Every entry point imports
# gancore before TensorFlow, so quiet is the default here; set TF_CPP_MIN_LOG_LEVEL=0 to see them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from gancore.errors import UserError  # noqa: E402

__all__ = ["UserError"]
