"""What each run cost: images shown, TFLOP, training seconds, GFLOP per image, warm-up.

Under an equal-compute budget every model trains for the same TFLOP (``config.json``
``config.tflop``, the budget the trainer sized its run from: FLOPs per image counted with the
PyTorch twin, the same networks in TensorFlow), so the images a model sees follow from its
cost per image; this table is where a reader sees why one model saw fewer images than another.
"""

from __future__ import annotations

from typing import Any

from benchmarks.report.headline import budget_axis
from benchmarks.report.tables import DASH, Cell, Row, Table, context_note, fmt


def gflop_per_image(run: dict[str, Any]) -> float | None:
    """TFLOP / kimg = GFLOP per image (1e12 / 1e3 / 1e9), averaged over the schedule."""
    kimg = run.get("kimg_done")
    if run.get("tflop") is None or not kimg:
        return None
    return run["tflop"] / kimg


def compute_table(results: dict[str, Any]) -> Table:
    t = Table(
        "Compute per run",
        [
            "run",
            "images shown (kimg)",
            "TFLOP",
            "GFLOP per image",
            "training time (s)",
            "images/s overall",
            "warm-up (s)",
        ],
    )
    no_tflop = (
        f"{DASH} (counted only under a compute budget)"
        if budget_axis(results) != "compute"
        else f"{DASH} (not in config.json)"
    )
    for r in results["runs"]:
        kimg, secs = r.get("kimg_done"), r.get("train_time_s")
        rate = kimg * 1000 / secs if kimg and secs else None
        gpi = gflop_per_image(r)
        t.rows.append(
            Row(
                r["name"],
                [
                    Cell(fmt(kimg)),
                    Cell(fmt(r["tflop"]) if r.get("tflop") is not None else no_tflop),
                    Cell(fmt(gpi) if gpi is not None else DASH),
                    Cell(fmt(secs)),
                    Cell(fmt(rate)),
                    Cell(fmt(r.get("warmup_s"))),
                ],
                kind="model" if r["state"] == "finished" else "failed",
            )
        )
    t.notes.append(context_note(results))
    t.notes.append(
        "images shown: the last log.jsonl tick; training time: its time_s (training seconds "
        "over every session, warm-up included); warm-up: the seconds of the steps that traced "
        "or compiled a new shape (left out of img_per_s). TFLOP: the run's compute budget; "
        "GFLOP per image = TFLOP / kimg, the training cost of one image averaged over the "
        "schedule (ProGAN's cost grows with the resolution)."
    )
    cost = cost_sentence(results)
    if cost:
        t.notes.append(cost)
    return t


def cost_sentence(results: dict[str, Any]) -> str | None:
    """Which model costs most per image, and what that did to the images it saw."""
    per: dict[str, list[tuple[float, float]]] = {}
    for r in results["runs"]:
        gpi = gflop_per_image(r)
        if gpi is not None and r["state"] == "finished":
            per.setdefault(r["label"], []).append((gpi, r["kimg_done"]))
    if len(per) < 2:
        return None
    mean = {
        m: (sum(g for g, _ in v) / len(v), sum(k for _, k in v) / len(v)) for m, v in per.items()
    }
    hi = max(mean, key=lambda m: mean[m][0])
    lo = min(mean, key=lambda m: mean[m][0])
    return (
        f"At equal compute, {hi} costs {mean[hi][0] / mean[lo][0]:.2f}x the GFLOP per image of "
        f"{lo} ({fmt(mean[hi][0])} vs {fmt(mean[lo][0])}), so it saw "
        f"{fmt(mean[hi][1])} kimg against {fmt(mean[lo][1])}."
    )
