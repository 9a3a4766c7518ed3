"""The one exception type that means "the user must change something"."""

from __future__ import annotations

import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem the user can act on (missing data, bad flag, corrupt file).

    Command-line entry points print the message without a traceback and exit with status 2
    (or the subclass's ``exit_code``: 3 diverged, 130 interrupted); everything else is a bug
    and keeps its traceback.
    """


def file_error(path: object, exc: BaseException, what: str = "file") -> UserError:
    """A one-line :class:`UserError` for a file that could not be read or parsed.

    Keeps the first line of the library's message and drops advice that does not apply to
    our users (torch's "re-running with weights_only=False" would unpickle arbitrary code).
    """
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for marker in ("Weights only load failed", "In PyTorch 2.6", "weights_only"):
        if marker in reason:
            reason = "not a file this project wrote, or damaged (unexpected content)"
            break
    if len(reason) > 160:
        reason = reason[:157] + "..."
    return UserError(f"cannot read {what} {path}: {type(exc).__name__}: {reason}")


def run_cli(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> int:
    """Run ``main(argv)``; turn a :class:`UserError` into a one-line message and exit 2."""
    try:
        code = main(argv)
    except UserError as exc:
        code = int(getattr(exc, "exit_code", 2))
        print(f"error: {exc}" if code == 2 else str(exc), file=sys.stderr)
        return code
    return int(code or 0)
