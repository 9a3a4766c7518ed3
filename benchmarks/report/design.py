"""The 2x2 design table: growing x spectral norm, per framework, and the four effects.

Each effect is plain arithmetic on the table above it: the mean of one cell minus the mean of
another in the same framework (``to - from``), e.g. spectral norm without growing = SN-DCGAN -
DCGAN. The first-screen sentences quote these same numbers (``findings``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchmarks.profiles import FRAMEWORK_LABELS
from benchmarks.report import keys as K
from benchmarks.report import kinds
from benchmarks.report.headline import design_entry, frameworks
from benchmarks.report.tables import DASH, Cell, Row, Table, context_note, fmt, fmt_stat


@dataclass
class Effect:
    what: str  # "spectral norm" | "growing"
    held: str  # "without growing", ...
    src: str  # kind it starts from
    dst: str  # kind it goes to
    means: dict[str, tuple[float, float]]  # framework -> (mean of src, mean of dst)

    @property
    def title(self) -> str:
        return f"{self.what}, {self.held} ({kinds.label(self.dst)} − {kinds.label(self.src)})"

    def delta(self, fw: str) -> float | None:
        if fw not in self.means:
            return None
        a, b = self.means[fw]
        return b - a


def effects(results: dict[str, Any], key: str) -> list[Effect]:
    """The four effects on ``key``, with each framework's pair of cell means."""
    out = []
    for what, held, src, dst in kinds.EFFECTS:
        means = {}
        for fw in frameworks(results):
            a, b = design_entry(results, src, fw), design_entry(results, dst, fw)
            sa, sb = (a.stat(key) if a else None), (b.stat(key) if b else None)
            if sa is not None and sb is not None:
                means[fw] = (sa.mean, sb.mean)
        out.append(Effect(what, held, src, dst, means))
    return out


def signed(x: float) -> str:
    """A difference with its sign, three significant digits (+547, -13.3)."""
    return ("+" if x > 0 else "") + fmt(x, 3)


def effect_text(eff: Effect, fw: str) -> str:
    d = eff.delta(fw)
    if d is None:
        return f"{DASH} (needs {kinds.label(eff.src)} and {kinds.label(eff.dst)})"
    a = eff.means[fw][0]
    return signed(d) + (f" ({d / abs(a):+.0%})" if a else "")


def design_table(results: dict[str, Any], keys: list[str]) -> Table:
    fws = frameworks(results)
    cols = [f"{FRAMEWORK_LABELS[fw]}: {k}" for fw in fws for k in keys]
    t = Table(
        "The 2x2 design: growing x spectral norm", ["model", "growing", "spectral norm"] + cols
    )
    for kind in kinds.ORDER:
        growing, sn = kinds.DESIGN[kind]
        cells = [Cell("yes" if growing else "no"), Cell("yes" if sn else "no")]
        any_entry = False
        for fw in fws:
            e = design_entry(results, kind, fw)
            any_entry |= e is not None
            for k in keys:
                st = e.stat(k) if e else None
                if e is None:
                    cells.append(Cell(f"{DASH} (not in this profile)"))
                elif st is None:
                    cells.append(
                        Cell(
                            f"{DASH} ({'no estimate' if e.no_estimate(k) else e.runs[0]['state']})"
                        )
                    )
                else:
                    suffix = " (collapsed)" if e.collapsed() else ""
                    cells.append(Cell(fmt_stat(st, len(e.runs)) + suffix, value=st.mean))
        t.rows.append(Row(kinds.label(kind), cells, "model" if any_entry else "failed"))
    per_key = {k: effects(results, k) for k in keys}
    for i, (what, *_rest) in enumerate(kinds.EFFECTS):
        cells = [Cell(""), Cell("")]
        for fw in fws:
            for k in keys:
                cells.append(Cell(effect_text(per_key[k][i], fw)))
        t.rows.append(
            Row(f"effect of {per_key[keys[0]][i].title}" if keys else what, cells, "effect")
        )
    t.notes.append(context_note(results))
    directions = ", ".join(f"{k}: {K.direction(k) or 'no direction'}" for k in keys)
    t.notes.append(
        "Effects: the mean of one cell minus the mean of another in the same framework, "
        f"(percentage of the first). Which way is better: {directions}"
        + (
            " (closest to the real-pair value)"
            if any(K.direction(k) == K.CLOSEST_TO_REAL for k in keys)
            else ""
        )
        + "."
    )
    return t
