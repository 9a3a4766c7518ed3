"""Framework-neutral helpers shared by every model in the benchmark.

Nothing in this package imports torch or tensorflow (a test checks it), so the
data layer, the harness and both frameworks can all depend on it.
"""

from gancore.errors import UserError

__all__ = ["UserError"]
