"""The report's tables, as plain data (rendered to markdown and HTML by their own modules).

Aggregation over seeds (``headline.Stat``): one seed shows its value, several show mean ±
sample standard deviation over the seeds whose run finished and produced the value ("k of n
seeds" only when some are missing). A cell that has no value says why ("—" plus a reason),
never a made-up number. Every table says the budget axis, N and the seeds once, in a note.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from benchmarks.report import keys as K
from benchmarks.report.headline import (
    Entry,
    Stat,
    budget_text,
    entries,
    real_reference,
    seeds_text,
)
from benchmarks.report.published import comparability, figures_for

DASH = "—"


@dataclass
class Cell:
    text: str
    best: bool = False
    value: float | None = None


@dataclass
class Row:
    label: str
    cells: list[Cell]
    kind: str = "model"  # model | floor | published | failed


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def fmt(x: float | None, digits: int = 4) -> str:
    if x is None:
        return DASH
    ax = abs(x)
    if ax != 0 and (ax >= 1e5 or ax < 1e-3):
        return f"{x:.3e}"
    return f"{x:.{digits}g}" if ax < 1000 else f"{x:.0f}"


def fmt_stat(st: Stat, planned: int) -> str:
    """'m' for one value, 'm ± s' over seeds; '(k of n seeds)' only when seeds are missing."""
    # Two significant digits for the spread (more would be noise about the noise), and the
    # mean to the same decimal place: 799.5 ± 28 reads "800 ± 28".
    if st.std is None:
        text = fmt(st.mean)
    elif st.std > 0 and 1e-3 <= abs(st.mean) < 1e5:
        places = max(0, 1 - math.floor(math.log10(st.std)))
        text = f"{st.mean:.{places}f} ± {fmt(st.std, 2)}"
    else:
        text = f"{fmt(st.mean)} ± {fmt(st.std, 2)}"
    return text + (f" ({st.n} of {planned} seeds)" if st.n < planned else "")


def fmt_values(values: list[float], planned: int) -> str:
    return fmt_stat(Stat(values), planned)


def context_note(results: dict[str, Any]) -> str:
    """The line every table carries: on which axis the models were made equal, N, seeds."""
    return (
        f"Budget: {budget_text(results)}. Seeds: {seeds_text(results)}. "
        "N: in each metric key (swd_2k_avg: 2,048 images; modes_covered_10k: 10,000)."
    )


def _mixed_res(results: dict[str, Any]) -> bool:
    return len({r["res"] for r in results["runs"]}) > 1


def entry_label(results: dict[str, Any], e: Entry) -> str:
    return e.name + (f" {e.res}px" if _mixed_res(results) else "")


def metric_keys(results: dict[str, Any], headline_only: bool) -> list[str]:
    """Keys the runs produced (the floor's only when no run produced any)."""
    found = [k for r in results["runs"] for k in r["metrics"]]
    if not found:
        found = [k for f in results["floors"].values() for k in f["metrics"]]
    return K.sort_keys([k for k in found if K.is_headline(k) or not headline_only])


def missing_reason(runs: list[dict[str, Any]], key: str) -> str:
    states = {r["state"] for r in runs}
    if states <= {"not run"}:
        return "not run"
    if not any(r["state"] == "finished" for r in runs):
        return "failed" if "failed" in states else f"not finished ({', '.join(sorted(states))})"
    for r in runs:
        for metric, reason in (r.get("skipped") or {}).items():
            if key.startswith(metric) or metric in key:
                return f"skipped: {reason}"
    if any(key in (r.get("metrics") or {}) and r["metrics"][key] is None for r in runs):
        # The metric ran and wrote null: it has no estimate (e.g. the birthday test found
        # no duplicate pair, so the support is only known to be larger than it can resolve).
        return "no estimate"
    return "not computed by this evaluation"


def mark_best(
    table: Table, results: dict[str, Any], ents: list[Entry], keys: list[str]
) -> list[str]:
    """Bold the best mean of each column where that means something; returns notes saying
    which columns were left unmarked and why. Column ``i + offset`` holds ``keys[i]``."""
    why_not: list[str] = []
    for col, k in enumerate(keys):
        real, _ = real_reference(results, k)
        if not K.markable(k, real):
            continue
        if any(e.no_estimate(k) for e in ents):
            # A null is "larger than the test resolves" (birthday support): it may be the best.
            why_not.append(f"{k}: no best marked, a run has no estimate (null)")
            continue
        cands = [(i, e.stat(k)) for i, e in enumerate(ents) if not e.collapsed()]
        cands = [(i, st.mean) for i, st in cands if st is not None]
        if len(cands) < 2 or len({m for _, m in cands}) == 1:
            continue  # "best" of one row, or of rows that all tie, says nothing
        top = cands[0][1]
        for _, m in cands[1:]:
            if K.better(m, top, k, real):
                top = m
        for i, m in cands:
            if not K.better(top, m, k, real):
                table.rows[i].cells[col].best = True
    return why_not


def metric_table(
    results: dict[str, Any],
    keys: list[str],
    title: str,
    with_floor: bool = True,
    with_published: bool = True,
    unmatched_published: bool = True,
) -> Table:
    """Models x frameworks rows, one column per metric key, best mean per column marked."""
    table = Table(title, ["model (framework)"] + keys)
    ents = entries(results)
    for e in ents:
        cells = []
        for k in keys:
            st = e.stat(k)
            if st is None:
                cells.append(Cell(f"{DASH} ({missing_reason(e.runs, k)})"))
                continue
            text = fmt_stat(st, len(e.runs))
            if K.family(k) == "modes" and e.collapsed():
                text += " (collapsed)"
            cells.append(Cell(text, value=st.mean))
        table.rows.append(Row(entry_label(results, e), cells, "model" if e.finished else "failed"))
    unmarked = mark_best(table, results, ents, keys)
    if with_floor:
        _floor_rows(table, results, keys)
    if with_published:
        _published_rows(table, results, keys, unmatched_published)
    table.notes.insert(0, context_note(results))
    if any(c.best for row in table.rows for c in row.cells):
        table.notes.append(best_note(results, keys))
    collapsed = [f"{entry_label(results, e)} ({e.collapsed()})" for e in ents if e.collapsed()]
    if collapsed:
        table.notes.append(
            f"Never marked best: {'; '.join(collapsed)}; below {K.COLLAPSED_MODES} modes the "
            "other numbers describe a handful of images."
        )
    table.notes += unmarked
    if any(e.no_estimate(k) for e in ents for k in keys):
        table.notes.append(
            "no estimate: the metric ran and wrote null (birthday support: no duplicate pair "
            "among the samples, so the support is larger than the test resolves, about s²/2)."
        )
    return table


def best_note(results: dict[str, Any], keys: list[str]) -> str:
    text = (
        "Bold: the best mean of a column whose metric has a direction (lower is better for "
        "FD/FID/KID/SWD/KL/NDB, higher for modes/precision/recall/birthday support"
    )
    for k in keys:
        if K.direction(k) == K.CLOSEST_TO_REAL:
            real, name = real_reference(results, k)
            if real is not None:
                text += f"; {k}: closest to the real-pair value {name} = {fmt(real)}"
    return text + ")."


def _floor_rows(table: Table, results: dict[str, Any], keys: list[str]) -> None:
    """The real-vs-real floor, only under columns it computed with the models' exact key (same
    N, same K): a floor at another N or K is listed in the floor table, never in this column."""
    for res, floor in sorted(results["floors"].items(), key=lambda x: int(x[0])):
        cells = []
        for k in keys:
            v = floor["metrics"].get(k)
            fam = K.family(k)
            other = [o for o in floor["metrics"] if o != k and fam and K.family(o) == fam]
            if v is not None:
                cells.append(Cell(fmt(v), value=v))
            elif other:
                cells.append(Cell(f"{DASH} (floor has {', '.join(sorted(other))}: another N or K)"))
            else:
                why = floor.get("error") or missing_reason(
                    [
                        {
                            "state": "finished",
                            "skipped": floor.get("skipped"),
                            "metrics": floor["metrics"],
                        }
                    ],
                    k,
                )
                cells.append(Cell(f"{DASH} ({why})"))
        table.rows.append(Row(f"floor: real vs real ({res}px)", cells, kind="floor"))


def floor_table(results: dict[str, Any]) -> Table:
    """Every key the real-vs-real floor wrote, and whether the models have the same key."""
    model_keys = {k for r in results["runs"] for k in r["metrics"]}
    t = Table("Real-vs-real floor (every key it wrote)", ["resolution", "key", "value", "models"])
    for res, floor in sorted(results["floors"].items(), key=lambda x: int(x[0])):
        if floor.get("error"):
            t.rows.append(Row(f"{res}px", [Cell(DASH), Cell(DASH), Cell(floor["error"])], "failed"))
        for k in K.sort_keys(list(floor["metrics"])):
            fam = K.family(k)
            same = [m for m in model_keys if fam and K.family(m) == fam]
            if k in model_keys:
                where = "same key: shown in the models' column"
            elif same:
                where = f"another N or K than the models' {', '.join(sorted(same))}: not comparable"
            else:
                where = "the models have no such metric"
            t.rows.append(
                Row(f"{res}px", [Cell(k), Cell(fmt(floor["metrics"][k])), Cell(where)], "floor")
            )
    t.notes.append(context_note(results))
    t.notes.append(
        "The floor scores two disjoint sets of real images like a model's samples: the best "
        "value a generator could reach with the same N. A key names its N (and NDB its K); "
        "values are comparable only at equal keys."
    )
    return t


def _published_rows(
    table: Table, results: dict[str, Any], keys: list[str], unmatched: bool
) -> None:
    """One row per published source (e.g. VEEGAN's modes and KL together), with its note."""
    dataset = results["profile"]["dataset"]
    res = results["profile"]["resolution"]
    by_source: dict[tuple[str, str], list[Any]] = {}
    for fig in figures_for(dataset):
        if fig.family != "time":  # training time is shown in the speed section
            by_source.setdefault((fig.model, fig.source), []).append(fig)
    for figs in by_source.values():
        placed: dict[str, str] = {}
        loose = []
        for fig in figs:
            cols = [k for k in keys if K.family(k) == fig.family]
            for k in cols:
                placed[k] = fig.value_text()
            if not cols:
                loose.append(f"{fig.family} = {fig.value_text()}")
        if not placed and not unmatched:
            continue
        # A related figure whose metric this profile did not compute still gets its row,
        # so the reader sees the reference and that nothing here matches it.
        label = f"published: {figs[0].label}" + (
            f" ({', '.join(loose)}: not computed here)" if loose else ""
        )
        cells = [Cell(placed.get(k, "")) for k in keys]
        table.rows.append(Row(label, cells, kind="published"))
        protocols = "; ".join(dict.fromkeys(f.protocol for f in figs))
        table.notes.append(f"{figs[0].label}: {protocols}. {comparability(figs[0], dataset, res)}")


def published_table(results: dict[str, Any]) -> Table:
    from benchmarks.report.published import FIGURES

    dataset, res = results["profile"]["dataset"], results["profile"]["resolution"]
    t = Table(
        "Published reference figures",
        ["model", "metric", "value", "setting", "source", "comparable to this profile?"],
    )
    for f in FIGURES:
        t.rows.append(
            Row(
                f.model,
                [
                    Cell(f.family),
                    Cell(f.value_text()),
                    Cell(f.protocol),
                    Cell(f.source),
                    Cell(comparability(f, dataset, res)),
                ],
                kind="published",
            )
        )
    t.notes.append(
        "These numbers come from papers, not from runs of this benchmark; rows "
        "marked (unverified) were not checked against the paper."
    )
    return t


def runs_table(results: dict[str, Any]) -> Table:
    """Every run, one row each: state, error, time, speed, memory."""
    t = Table(
        "All runs",
        [
            "run",
            "state",
            "kimg",
            "train wall-clock (s)",
            "train time (s)",
            "images/s by resolution",
            "peak memory (MB)",
            "error",
        ],
    )
    for r in results["runs"]:
        speed = ", ".join(f"{res}px: {fmt(v)}" for res, v in sorted(r["img_per_s"].items())) or DASH
        err = r.get("error") or ""
        if r.get("eval_errors"):
            err = (err + "; " if err else "") + "; ".join(r["eval_errors"])
        t.rows.append(
            Row(
                r["name"],
                [
                    Cell(r["state"] + (f" ({r['failed_step']})" if r.get("failed_step") else "")),
                    Cell(fmt(r["kimg_done"])),
                    Cell(fmt(r["train_wall_s"])),
                    Cell(fmt(r["train_time_s"])),
                    Cell(speed),
                    Cell(fmt(r["peak_mem_mb"])),
                    Cell(err or ""),
                ],
                kind="failed" if r["state"] != "finished" else "model",
            )
        )
    t.notes.append(context_note(results))
    return t
