"""What ``--help`` shows: module docstrings turned into plain terminal text.

The CLIs use their module docstring as the description; docstrings are written in reST for
the code reader (````code````, ``:class:`X```, ``::`` before a literal block). A terminal
shows those characters literally, so :class:`HelpFormatter` removes the markup and keeps the
layout (indented examples stay indented). It also leaves argparse's "(default: ...)" to
:func:`gancore.config.add_dataclass_arguments` and the CLIs, which say what an omitted flag
means in words.
"""

from __future__ import annotations

import argparse
import re

_ROLE = re.compile(r":(?:class|mod|func|meth|attr|data|obj):`~?([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")


def plain_text(text: str) -> str:
    """reST markup -> what a terminal should show (``x`` -> x, :class:`a.B` -> a.B, no ``::``)."""
    text = _ROLE.sub(r"\1", text)
    text = _LITERAL.sub(r"\1", text)
    lines = []
    for line in text.splitlines():
        if line.strip() == "::":  # a paragraph of its own that only introduces a literal block
            if lines and lines[-1].strip() == "":
                continue
            line = ""
        elif line.rstrip().endswith("::"):  # "Example::" -> "Example:"
            line = line.rstrip()[:-1]
        if line.strip() or (lines and lines[-1].strip()):  # no double blank lines
            lines.append(line)
    return "\n".join(lines).strip("\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's own line breaks (examples), without reST markup."""

    show_defaults = False

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return super()._fill_text(plain_text(text), width, indent)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = plain_text(action.help or "")
        default = action.default
        if (
            self.show_defaults
            and "(default" not in text
            and action.option_strings
            and default not in (None, argparse.SUPPRESS)
            and not (isinstance(action, argparse._StoreTrueAction) and default is False)
        ):
            from gancore.config import show_value

            text += f" (default: {show_value(default)})".replace("%", "%%")
        return text


class DefaultsHelpFormatter(HelpFormatter):
    """:class:`HelpFormatter` that also states each flag's default, except where there is
    none to state (a None default: the help says in words what happens without the flag)."""

    show_defaults = True
