"""The one exception type that means "the user must change something"."""

from __future__ import annotations

import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem the user can act on (missing data, bad flag, corrupt file).

    Command-line entry points print the message without a traceback and exit
    with status 2; everything else is a bug and keeps its traceback.
    """


def run_cli(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> int:
    """Run ``main(argv)``; turn a :class:`UserError` into a one-line message and exit 2."""
    try:
        code = main(argv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return int(code or 0)
