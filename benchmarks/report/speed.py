"""Speed tables: images/s per resolution, PyTorch / TensorFlow ratios, time to final quality."""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks.report import keys as K
from benchmarks.report.tables import DASH, Cell, Row, Table, context_note, fmt, fmt_values

# "Reached final quality" = first evaluation point within this fraction of the final value.
QUALITY_TOLERANCE = 0.10


def _by_model(results: dict[str, Any]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in results["runs"]:
        out.setdefault(r["model"], {}).setdefault(r["framework"], []).append(r)
    return out


def speed_table(results: dict[str, Any]) -> Table:
    """Median images/s per resolution (mean over seeds), both frameworks and their ratio."""
    t = Table(
        "Training speed (images/s per resolution)",
        [
            "model",
            "resolution",
            "PyTorch",
            "TensorFlow",
            "PyTorch / TensorFlow",
            "peak memory PyTorch (MB)",
            "peak memory TensorFlow (MB)",
        ],
    )
    for fws in _by_model(results).values():
        label = next(iter(fws.values()))[0]["label"]
        resolutions = sorted({res for rs in fws.values() for r in rs for res in r["img_per_s"]})
        if not resolutions:
            t.rows.append(
                Row(label, [Cell(DASH)] + [Cell(f"{DASH} (no log.jsonl ticks)")] * 5, kind="failed")
            )
            continue
        for res in resolutions:
            vals = {
                fw: [r["img_per_s"][res] for r in fws.get(fw, []) if res in r["img_per_s"]]
                for fw in ("torch", "tf")
            }
            mem = {
                fw: [r["peak_mem_mb"] for r in fws.get(fw, []) if r["peak_mem_mb"] is not None]
                for fw in ("torch", "tf")
            }
            ratio = (
                statistics.fmean(vals["torch"]) / statistics.fmean(vals["tf"])
                if vals["torch"] and vals["tf"] and statistics.fmean(vals["tf"]) > 0
                else None
            )
            t.rows.append(
                Row(
                    label,
                    [
                        Cell(f"{res}x{res}"),
                        Cell(
                            fmt_values(vals["torch"], len(fws.get("torch", [])))
                            if vals["torch"]
                            else f"{DASH} (no data)"
                        ),
                        Cell(
                            fmt_values(vals["tf"], len(fws.get("tf", [])))
                            if vals["tf"]
                            else f"{DASH} (no data)"
                        ),
                        Cell(f"{ratio:.2f}x" if ratio else f"{DASH} (needs both frameworks)"),
                        Cell(fmt(max(mem["torch"])) if mem["torch"] else DASH),
                        Cell(fmt(max(mem["tf"])) if mem["tf"] else DASH),
                    ],
                )
            )
    t.notes += [
        context_note(results),
        "images/s: the log.jsonl img_per_s of the ticks at each resolution, weighted by their "
        "timed seconds. img_per_s counts timed steps only: the first step of each (resolution, "
        "fade) shape in a session traces or compiles and is logged as warmup_s instead (total "
        "per run in the compute table). ProGAN's fade and stabilise steps at one resolution "
        "are averaged together. Ratios > 1 mean PyTorch is faster. Peak memory is the largest "
        "peak_mem_mb a trainer logged (max over seeds).",
    ]
    return t


def quality_metric(results: dict[str, Any]) -> str | None:
    """The metric used for 'time to final quality': the first family with curve values."""
    keys = {
        k
        for r in results["runs"]
        for p in r["curve"]
        for k, v in p["metrics"].items()
        if v is not None
    }
    for fam in K.QUALITY_ORDER:
        cands = sorted(k for k in keys if K.family(k) == fam)
        if cands:
            return cands[0]
    return None


def time_to_quality(run: dict[str, Any], key: str) -> tuple[float, float | None] | None:
    """(kimg, training seconds) of the first evaluation point within tolerance of the final."""
    pts = [p for p in run["curve"] if p["metrics"].get(key) is not None]
    final = next((p for p in pts if p["final"]), None)
    if final is None:
        return None
    target = final["metrics"][key]
    for p in pts:
        v = p["metrics"][key]
        if (
            abs(v - target) <= QUALITY_TOLERANCE * abs(target)
            or (K.direction(key) == K.LOWER and v <= target)
            or (K.direction(key) == K.HIGHER and v >= target)
        ):
            return p["kimg"], p["time_s"]
    return final["kimg"], final["time_s"]


def quality_time_table(results: dict[str, Any]) -> Table:
    key = quality_metric(results)
    t = Table(
        "Time to reach final quality",
        ["model (framework)", "metric", "kimg", "training time (s)", "total train wall-clock (s)"],
    )
    if key is None:
        t.notes.append("No metric was scored at any evaluation point, so this cannot be computed.")
        return t
    for r in results["runs"]:
        got = time_to_quality(r, key) if r["state"] == "finished" else None
        label = f"{r['label']} ({r['framework_label']}) seed {r['seed']}"
        if got is None:
            t.rows.append(
                Row(
                    label,
                    [
                        Cell(key),
                        Cell(f"{DASH} ({r['state']})"),
                        Cell(DASH),
                        Cell(fmt(r["train_wall_s"])),
                    ],
                    kind="failed",
                )
            )
        else:
            t.rows.append(
                Row(
                    label,
                    [Cell(key), Cell(fmt(got[0])), Cell(fmt(got[1])), Cell(fmt(r["train_wall_s"]))],
                )
            )
    t.notes.append(
        f"First evaluation point whose {key} is within {QUALITY_TOLERANCE:.0%} of the "
        "run's final value (or already better); training time is log.jsonl time_s at "
        "that kimg. With few evaluation points this is coarse: it can only be one of "
        "the profile's eval_kimg values or the end."
    )
    return t
