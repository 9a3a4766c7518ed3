"""The report's tables, as plain data (rendered to markdown and HTML by their own modules).

Aggregation over seeds happens here: mean +- sample standard deviation over the
seeds whose run finished and produced the value, with N beside it. A cell that
has no value says why ("—" plus a reason), never a made-up number.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from benchmarks.report import keys as K
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


def mean_std(values: list[float]) -> tuple[float, float | None, int]:
    n = len(values)
    return statistics.fmean(values), (statistics.stdev(values) if n > 1 else None), n


def fmt_agg(values: list[float]) -> str:
    m, s, n = mean_std(values)
    return f"{fmt(m)} ± {fmt(s)} (n={n})" if s is not None else f"{fmt(m)} (n={n})"


def groups(results: dict[str, Any]) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """Runs grouped by (model, framework), in plan order: (label, key, runs)."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results["runs"]:
        out.setdefault((r["model"], r["framework"]), []).append(r)
    return [
        (
            f"{rs[0]['label']} ({rs[0]['framework_label']})"
            + (f" {rs[0]['res']}px" if _mixed_res(results) else ""),
            f"{m}-{fw}",
            rs,
        )
        for (m, fw), rs in out.items()
    ]


def _mixed_res(results: dict[str, Any]) -> bool:
    return len({r["res"] for r in results["runs"]}) > 1


def metric_keys(results: dict[str, Any], headline_only: bool) -> list[str]:
    """Keys the runs produced (the floor's only when no run produced any)."""
    found = [k for r in results["runs"] for k in r["metrics"]]
    if not found:
        found = [k for f in results["floors"].values() for k in f["metrics"]]
    return K.sort_keys([k for k in found if K.is_headline(k) or not headline_only])


def floor_value(results: dict[str, Any], key: str, res: int | None = None) -> float | None:
    """The real-vs-real value of ``key`` (at ``res``; at the profile's resolution by default)."""
    res = res or results["profile"]["resolution"]
    floor = results["floors"].get(res) or results["floors"].get(str(res)) or {}
    return floor.get("metrics", {}).get(key)


def real_reference(results: dict[str, Any], key: str) -> float | None:
    """What 'closest to real' compares with: the floor, else the runs' own real-pair value."""
    v = floor_value(results, key)
    if v is not None or not key.startswith("msssim_") or "real" in key:
        return v
    real_key = key.replace("msssim_", "msssim_real_", 1)
    vals = [
        r["metrics"][real_key] for r in results["runs"] if r["metrics"].get(real_key) is not None
    ]
    return statistics.fmean(vals) if vals else None


def _same_family(metrics: dict[str, float | None], key: str) -> str | None:
    fam = K.family(key)
    if fam is None or fam == "swd_level":
        return None
    same = [k for k, v in metrics.items() if v is not None and K.family(k) == fam]
    return same[0] if len(same) == 1 else None


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
        return "no estimate: the metric wrote null; see its protocol"
    return "not computed by this evaluation"


def metric_table(
    results: dict[str, Any],
    keys: list[str],
    title: str,
    with_floor: bool = True,
    with_published: bool = True,
    unmatched_published: bool = True,
) -> Table:
    """Models x frameworks rows, one column per metric key, best mean per column marked."""
    table = Table(title, ["model (framework)", "runs"] + keys)
    best: dict[str, list[int]] = {}
    means: dict[str, list[tuple[int, float]]] = {k: [] for k in keys}
    for label, _, runs in groups(results):
        done = [r for r in runs if r["state"] == "finished"]
        cells = [Cell(f"{len(done)}/{len(runs)} finished")]
        for k in keys:
            vals = [r["metrics"][k] for r in done if r["metrics"].get(k) is not None]
            if vals:
                m = statistics.fmean(vals)
                cells.append(Cell(fmt_agg(vals), value=m))
                means[k].append((len(table.rows), m))
            else:
                cells.append(Cell(f"{DASH} ({missing_reason(runs, k)})"))
        table.rows.append(Row(label, cells, kind="model" if done else "failed"))
    for k in keys:
        real = real_reference(results, k)
        if len(means[k]) < 2 or not K.markable(k, real):
            continue  # "best" of one row says nothing
        top = means[k][0][1]
        for _, m in means[k][1:]:
            if K.better(m, top, k, real):
                top = m
        best[k] = [i for i, m in means[k] if not K.better(top, m, k, real)]
        col = keys.index(k) + 1
        for i in best[k]:
            table.rows[i].cells[col].best = True
    if with_floor:
        for res, floor in sorted(results["floors"].items(), key=lambda x: int(x[0])):
            cells = [Cell("real vs real")]
            for k in keys:
                v = floor["metrics"].get(k)
                other = _same_family(floor["metrics"], k)
                why = floor.get("error") or missing_reason(
                    [{"state": "finished", "skipped": floor.get("skipped")}], k
                )
                if v is not None:
                    cells.append(Cell(fmt(v), value=v))
                elif other:
                    # Fewer real images than samples (e.g. halves of a small split): the floor
                    # exists at another N; show it under its own protocol name.
                    cells.append(Cell(f"{fmt(floor['metrics'][other])} ({other})"))
                else:
                    cells.append(Cell(f"{DASH} ({why})"))
            table.rows.append(Row(f"floor: real vs real ({res}px)", cells, kind="floor"))
    if with_published:
        _published_rows(table, results, keys, unmatched_published)
    marked = [k for k in keys if k in best]
    if marked:
        table.notes.append(
            "Best mean per column in bold (lower is better for FID/KID/SWD/KL/NDB, "
            "higher for IS/modes/precision/recall, MS-SSIM: closest to the "
            "real-vs-real value)."
        )
    table.notes.append(
        "Values: mean ± sample standard deviation over seeds (n = finished seeds with that value)."
    )
    return table


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
        first = "published" + (f"; {', '.join(loose)} (not computed here)" if loose else "")
        cells = [Cell(first)] + [Cell(placed.get(k, "")) for k in keys]
        table.rows.append(Row(f"published: {figs[0].label}", cells, kind="published"))
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
    return t
