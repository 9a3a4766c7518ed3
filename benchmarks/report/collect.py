"""Read a profile's run directories into one results structure (the report's only input).

Nothing here computes a metric or invents a number: every value is read from a
run directory (``harness.json``, ``status.json``, ``log.jsonl``, ``eval/*``,
``samples/*.png``) or from the floor folder. Whatever is missing stays ``None``
and carries a reason.
"""

from __future__ import annotations

import dataclasses
import statistics
from pathlib import Path
from typing import Any

from benchmarks.commands import RunSpec
from benchmarks.profiles import FRAMEWORK_LABELS, Profile, profile_to_dict
from benchmarks.report.kinds import GROWING
from benchmarks.runner import HARNESS_FILE, eval_points, plan, read_harness
from gancore.io import read_json
from gancore.rundir import RunDir
from gancore.train.schema import GridNames


def split_metrics(data: dict[str, Any]) -> tuple[dict[str, float | None], dict[str, Any]]:
    """A metrics file -> (flat numeric values, everything else: protocol, skipped, notes)."""
    values, details = {}, {}
    for k, v in data.items():
        if isinstance(v, bool) or not (v is None or isinstance(v, int | float)):
            details[k] = v
        else:
            values[k] = None if v is None else float(v)
    return values, details


def read_metrics(path: Path) -> tuple[dict[str, float | None], dict[str, Any]] | None:
    try:
        return split_metrics(read_json(path))
    except (OSError, ValueError):
        return None


def speed_by_res(log: list[dict[str, Any]]) -> dict[int, float]:
    """Training images/s per resolution: the ticks' ``img_per_s`` averaged with their timed
    seconds as weights (images / seconds over the resolution's ticks).

    ``img_per_s`` already leaves out the steps that traced or compiled a new shape (their
    seconds are the tick's ``warmup_s``), so a resolution with a single tick is measured
    correctly too; weighting by the timed seconds keeps a short tick from counting as much as
    a long one."""
    by_res: dict[int, list[tuple[float, float]]] = {}
    for r in log:
        if r.get("img_per_s") is None or r.get("res") is None:
            continue
        timed = (r.get("tick_s") or 0.0) - (r.get("warmup_s") or 0.0)
        by_res.setdefault(int(r["res"]), []).append((float(r["img_per_s"]), max(timed, 0.0)))
    out = {}
    for res, pts in sorted(by_res.items()):
        total = sum(w for _, w in pts)
        out[res] = (
            sum(v * w for v, w in pts) / total if total > 0 else statistics.fmean(v for v, _ in pts)
        )
    return out


def time_at_kimg(log: list[dict[str, Any]], kimg: float) -> float | None:
    """Training seconds (``time_s``) when ``kimg`` was reached, from the nearest tick at/after it."""
    best = None
    for r in log:
        if r.get("time_s") is None or r.get("kimg") is None:
            continue
        if float(r["kimg"]) >= kimg - 1e-6 and (
            best is None or float(r["kimg"]) < float(best["kimg"])
        ):
            best = r
    return float(best["time_s"]) if best else None


def sample_grids(
    run_dir: Path, log: list[dict[str, Any]], total_kimg: float
) -> list[dict[str, Any]]:
    """Every grid of ``samples/`` (names: ``gancore.train.schema.GridNames``) with its kimg and
    resolution, in training order; the reals grid is returned apart by :func:`reals_grid`."""
    out = []
    for p in sorted((run_dir / "samples").glob("*.png")):
        parsed = GridNames.parse(p.name)
        if parsed is None or parsed["kind"] == "reals":
            continue
        g: dict[str, Any] = {
            "path": str(p),
            "name": p.name,
            "final": parsed["kind"] == "final",
            "phase_index": None,
            "kimg": None,
            "res": None,
        }
        if parsed["kind"] == "phase":
            g["phase_index"], g["phase"], g["res"] = parsed["index"], parsed["phase"], parsed["res"]
            ticks = [
                float(r["kimg"])
                for r in log
                if r.get("res") == g["res"]
                and r.get("phase") == g["phase"]
                and r.get("kimg") is not None
            ]
            g["kimg"] = max(ticks) if ticks else None
        elif g["final"]:
            g["kimg"] = max(
                (float(r["kimg"]) for r in log if r.get("kimg") is not None), default=total_kimg
            )
        else:
            g["kimg"] = parsed["kimg"]
        if g["res"] is None:
            g["res"] = _res_at(log, g["kimg"])
        out.append(g)
    return sorted(
        out, key=lambda g: (g["final"], g["kimg"] is None, g["kimg"] or 0.0, g["phase_index"] or 0)
    )


def reals_grid(run_dir: Path) -> str | None:
    p = run_dir / "samples" / GridNames.REALS
    return str(p) if p.exists() else None


def _res_at(log: list[dict[str, Any]], kimg: float | None) -> int | None:
    if kimg is None or not log:
        return None
    ticks = [r for r in log if r.get("res") is not None and r.get("kimg") is not None]
    if not ticks:
        return None
    before = [r for r in ticks if float(r["kimg"]) <= kimg + 1e-6] or ticks[:1]
    return int(before[-1]["res"])


def growth_sequence(grids: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One grid per resolution: how ProGAN looked at the end of each level.

    Uses the end-of-phase grids when the trainer wrote them (the last phase at each
    resolution), else the last grid at each resolution; ``final.png`` stands for the
    highest resolution, since training may stabilise there long after the last phase grid.
    """
    phased = [g for g in grids if g["phase_index"] is not None]
    pool = (
        sorted(phased, key=lambda g: g["phase_index"])
        if phased
        else [g for g in grids if not g["final"]]
    )
    last: dict[int, dict[str, Any]] = {}
    for g in pool:
        if g["res"] is not None:
            last[g["res"]] = g
    final = next((g for g in grids if g["final"]), None)
    if final is not None and final["res"] is not None and (not last or final["res"] >= max(last)):
        last[final["res"]] = final
    return [last[r] for r in sorted(last)]


def final_grid(grids: list[dict[str, Any]]) -> dict[str, Any] | None:
    finals = [g for g in grids if g["final"]]
    return finals[-1] if finals else (grids[-1] if grids else None)


def collect_run(run: RunSpec, profile: Profile) -> dict[str, Any]:
    rd = RunDir(run.run_dir)
    harness = read_harness(run.run_dir)
    status = rd.status() if run.run_dir.exists() else {"state": "missing"}
    log = rd.read_log() if run.run_dir.exists() else []
    planned = harness.get("kimg") or profile.kimg or (log[-1]["kimg"] if log else float("nan"))
    rec: dict[str, Any] = {
        "name": run.name,
        "model": run.model.name,
        "label": run.model.label,
        "kind": run.model.kind,
        "framework": run.framework,
        "framework_label": FRAMEWORK_LABELS[run.framework],
        "seed": run.seed,
        "res": run.model.res,
        "run_dir": str(run.run_dir),
        "trainer_state": status.get("state"),
    }
    if not run.run_dir.exists() or not (run.run_dir / HARNESS_FILE).exists() and not log:
        rec.update(state="not run", error="no run directory: the harness has not run it yet")
    else:
        rec["state"] = harness.get("state") or status.get("state")
        rec["error"] = harness.get("error") or (
            status.get("error") if status.get("state") == "failed" else None
        )
    rec["failed_step"] = harness.get("failed_step")
    rec["stderr_tail"] = harness.get("stderr_tail")
    rec["eval_errors"] = harness.get("eval_errors")
    rec["hardware"] = harness.get("hardware")
    rec["train_wall_s"] = harness.get("train_wall_s")
    rec["eval_wall_s"] = harness.get("eval_wall_s")
    rec["train_time_s"] = max(
        (float(r["time_s"]) for r in log if r.get("time_s") is not None), default=None
    )
    rec["kimg_done"] = max(
        (float(r["kimg"]) for r in log if r.get("kimg") is not None), default=None
    )
    rec["img_per_s"] = speed_by_res(log)
    rec["warmup_s"] = sum(float(r.get("warmup_s") or 0.0) for r in log) if log else None
    rec["planned_kimg"] = harness.get("kimg")
    rec["tflop"] = _config_tflop(run.run_dir)
    mems = [float(r["peak_mem_mb"]) for r in log if r.get("peak_mem_mb") is not None]
    rec["peak_mem_mb"] = max(mems) if mems else None
    rec["metrics"], rec["details"], rec["curve"] = {}, {}, []
    for folder, kimg in eval_points(profile):
        got = read_metrics(run.run_dir / "eval" / folder / "metrics.json")
        if got is None:
            continue
        values, details = got
        point = _point_info(run.run_dir / "eval" / folder, kimg, planned)
        rec["curve"].append(
            {
                "kimg": point["kimg"],
                "time_s": time_at_kimg(log, point["kimg"]),
                "metrics": values,
                "final": kimg is None,
            }
        )
        if kimg is None:
            rec["metrics"], rec["details"] = values, details
    rec["curve"].sort(key=lambda p: p["kimg"])
    rec["skipped"] = dict(rec["details"].get("skipped") or {})
    grids = sample_grids(run.run_dir, log, planned) if run.run_dir.exists() else []
    rec["grids"] = grids
    rec["final_grid"] = final_grid(grids)
    rec["reals_grid"] = reals_grid(run.run_dir)
    rec["growth"] = growth_sequence(grids) if run.model.kind in GROWING else []
    rec["extra_pngs"] = sorted(str(p) for p in (run.run_dir / "eval" / "final").glob("*.png"))
    rec["log"] = log  # for the loss plots; dropped from results.json
    return rec


def _config_tflop(run_dir: Path) -> float | None:
    """The run's training-compute budget (``config.json`` ``config.tflop``; set under a
    compute budget only, where the trainer sized the run from it)."""
    try:
        v = read_json(run_dir / "config.json").get("config", {}).get("tflop")
    except (OSError, ValueError, AttributeError):
        return None
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _point_info(folder: Path, kimg: float | None, total: float) -> dict[str, Any]:
    p = folder / "point.json"
    try:
        info = read_json(p) if p.exists() else {}
    except (OSError, ValueError):
        info = {}
    return {"kimg": float(info.get("kimg", kimg if kimg is not None else total))}


def collect_floors(runs_dir: Path) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for d in sorted((runs_dir / "_floor").glob("res-*")):
        try:
            res = int(d.name.split("-", 1)[1])
        except ValueError:
            continue
        got = read_metrics(d / "metrics.json")
        harness = read_harness(d)
        if got is None:
            out[res] = {
                "metrics": {},
                "details": {},
                "skipped": {},
                "error": harness.get("error", "no metrics.json"),
            }
        else:
            out[res] = {
                "metrics": got[0],
                "details": got[1],
                "skipped": dict(got[1].get("skipped") or {}),
                "error": None,
            }
    return out


def collect(profile: Profile, runs_dir: Path) -> dict[str, Any]:
    """Everything the report shows, read from ``runs_dir`` (``runs/<profile>``)."""
    runs_dir = Path(runs_dir)
    plan_path = runs_dir / "plan.json"
    runs = plan(profile, runs_dir)
    if plan_path.exists():
        # The seeds/models the harness actually ran (e.g. --seeds 3 on the command line).
        names = {r["name"] for r in read_json(plan_path).get("runs", [])}
        seeds = sorted({int(r["seed"]) for r in read_json(plan_path).get("runs", [])})
        if seeds:
            runs = plan(dataclasses.replace(profile, seeds=tuple(seeds)), runs_dir)
        runs = [r for r in runs if r.name in names] or runs
    hw_path = runs_dir / "hardware.json"
    budget = dataclasses.asdict(profile.budget)
    if plan_path.exists():
        budget = read_json(plan_path).get("budget") or budget  # what the harness ran with
    return {
        "profile": profile_to_dict(profile),
        "budget": budget,
        "runs_dir": str(runs_dir),
        "runs": [collect_run(r, profile) for r in runs],
        "floors": collect_floors(runs_dir),
        "hardware": read_json(hw_path) if hw_path.exists() else None,
    }
