"""Build ``reports/<profile>/``: report.md, report.html, results.csv, results.json, plots/.

Input is the run directories alone (through :func:`benchmarks.report.collect.collect`),
so ``make report PROFILE=...`` can rebuild everything at any time without retraining.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from benchmarks.profiles import Profile
from benchmarks.report import keys as K
from benchmarks.report import render_html, render_md
from benchmarks.report.channels import channel_panel
from benchmarks.report.collect import collect
from benchmarks.report.compute import compute_table
from benchmarks.report.design import design_table
from benchmarks.report.document import (
    Bullets,
    Document,
    GridPanel,
    Heading,
    Image,
    ImageRow,
    Para,
    Pre,
    Section,
    TableBlock,
)
from benchmarks.report.findings import findings
from benchmarks.report.first_screen import first_screen, sample_panel
from benchmarks.report.headline import budget_text, picks, seeds, seeds_text
from benchmarks.report.plots import all_plots
from benchmarks.report.protocol import protocol_section
from benchmarks.report.published import FIGURES
from benchmarks.report.speed import quality_time_table, speed_table
from benchmarks.report.tables import (
    floor_table,
    metric_keys,
    metric_table,
    published_table,
    runs_table,
)
from gancore.io import atomic_write_json, atomic_write_text


def build_report(profile: Profile, runs_dir: Path, reports_dir: Path) -> dict[str, Path]:
    """Write every report file; returns their paths by kind."""
    results = collect(profile, runs_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    p = picks(results)
    plots = all_plots(results, reports_dir / "plots", headline=p["coverage"] or p["quality"])
    doc = document(results, plots, channel_panel(results, reports_dir / "channels"))
    out = {
        "md": reports_dir / "report.md",
        "html": reports_dir / "report.html",
        "csv": reports_dir / "results.csv",
        "json": reports_dir / "results.json",
    }
    atomic_write_text(out["md"], render_md.render(doc, reports_dir))
    atomic_write_text(out["html"], render_html.render(doc))
    write_csv(results, out["csv"])
    atomic_write_json(out["json"], results_json(results))
    return out


def document(
    results: dict[str, Any], plots: dict[str, Path], channels: GridPanel | None = None
) -> Document:
    """First screen (findings, samples, headline plot), then the digits per colour channel
    (stacked data sets), then the tables, then the details."""
    p = results["profile"]
    runs = results["runs"]
    doc = Document(f"Benchmark report: {p['name']}")
    doc.add(first_screen(results, plots))
    if channels is not None:
        doc.add(
            Section(
                "Digits per colour channel",
                "channels",
                [
                    Para(
                        "Each stacked sample is three digits, one per colour channel; here "
                        "every grid is split into its channels, so each cell shows one digit."
                    ),
                    channels,
                ],
            )
        )
    picked = [k for k in picks(results).values() if k]
    doc.add(
        Heading("The 2x2 design"),
        Para(
            "What spectral normalisation and progressive growing each buy over a plain DCGAN, "
            "with and without the other, per framework."
        ),
        TableBlock(design_table(results, picked)),
        Heading("Results"),
        TableBlock(
            metric_table(results, metric_keys(results, headline_only=True), "Final metrics")
        ),
    )
    failed = [r for r in runs if r["state"] not in ("finished",)]
    if failed:
        doc.add(Heading("Failed and unfinished runs"))
        for r in failed:
            doc.add(
                Para(
                    f"**{r['name']}**: {r['state']}"
                    + (f" in step {r['failed_step']}" if r.get("failed_step") else "")
                    + f" — {r.get('error') or 'no error recorded'}"
                )
            )
            if r.get("stderr_tail"):
                doc.add(Pre(r["stderr_tail"]))
        doc.add(
            Para(
                "Full logs: `<run>/logs/*.err` and `*.out`. Re-running the same command "
                "resumes unfinished runs from their last checkpoint."
            )
        )
    _speed(doc, results, plots)
    _diversity(doc, results)
    _curves(doc, plots)
    _samples(doc, results)
    all_keys = metric_keys(results, headline_only=False)
    if all_keys:
        doc.add(
            Heading("All metrics"),
            TableBlock(
                metric_table(
                    results, all_keys, "Every metric key the evaluation wrote", with_published=False
                )
            ),
        )
    if results["floors"]:
        doc.add(TableBlock(floor_table(results)))
    doc.add(Heading("Setup"), Para(f"{p['description']}".strip() or f"Profile {p['name']}."))
    states = [r["state"] for r in runs]
    doc.add(
        Bullets(
            [
                f"Data set **{p['dataset']}** at {p['resolution']}x{p['resolution']}"
                + (
                    ""
                    if len({r["res"] for r in runs}) <= 1
                    else " (per-model resolutions: "
                    + ", ".join(sorted({f"{r['model']} {r['res']}px" for r in runs}))
                    + ")"
                ),
                f"Budget: **{budget_text(results)}**, the same for every model.",
                f"Seeds: {seeds_text(results)}; runs: {states.count('finished')} finished, "
                f"{states.count('failed')} failed, "
                f"{len(runs) - states.count('finished') - states.count('failed')} not finished / "
                f"not run, of {len(runs)}.",
                f"Run directories: `{results['runs_dir']}`. Every number in this report was read "
                "from them, except the rows marked *published*.",
            ]
        ),
        Heading("All runs"),
        TableBlock(runs_table(results)),
        Heading("Published figures"),
        TableBlock(published_table(results)),
    )
    doc.add(*protocol_section(results))
    return doc


def _diversity(doc: Document, results: dict[str, Any]) -> None:
    pngs = [
        Image(Path(path), f"{r['name']}: {Path(path).stem}")
        for r in results["runs"]
        for path in r["extra_pngs"]
    ]
    doc.add(Heading("Mode collapse and diversity: how to read them"))
    doc.add(
        Para(
            "Modes covered / KL: classes of the generated samples (stacked digits: 1000 "
            "digit triples). NDB: number of statistically different k-means bins (lower is "
            "better). MS-SSIM between generated pairs should match the real-pair value; "
            "higher means less diverse. Birthday paradox: the closest pairs among a sample; "
            "near-duplicates hint at a small support (null: no duplicate found, the support is "
            "larger than the test resolves)."
        )
    )
    if pngs:
        doc.add(ImageRow(pngs, "Closest pairs (birthday paradox test) and other metric figures"))


def _speed(doc: Document, results: dict[str, Any], plots: dict[str, Path]) -> None:
    doc.add(
        Heading("Speed and compute"),
        TableBlock(speed_table(results)),
        TableBlock(compute_table(results)),
    )
    if any(len(r["curve"]) > 1 for r in results["runs"]):
        # With the final point only, "time to final quality" is the whole run: nothing to show.
        doc.add(TableBlock(quality_time_table(results)))
    if "speed" in plots:
        doc.add(Image(plots["speed"], "Images/s per resolution (log scale)", plot=True))
    hw = results.get("hardware") or {}
    doc.add(
        Para(
            f"Measured on: {hw.get('gpu') or hw.get('cpu', 'unknown hardware')}"
            f" ({hw.get('cpu_count', '?')} CPU cores). For scale, the official ProGAN README "
            "quotes CelebA-HQ 1024 training at "
            + next(f.value_text() for f in FIGURES if f.family == "time")
            + " (published, not measured here)."
        )
    )


def _curves(doc: Document, plots: dict[str, Path]) -> None:
    doc.add(Heading("Curves"))
    curves = [k for k in plots if k.startswith("curve_")]
    if not curves:
        doc.add(
            Para(
                "Only the final checkpoint was scored, so there are no curves: the final "
                "values are in the tables and the first screen's plot. Curves need intermediate "
                "evaluation points (eval_kimg), which a profile can set on an images budget."
            )
        )
    for k in curves:
        doc.add(Image(plots[k], f"{k[6:]} vs images shown and vs training time", plot=True))
    if "losses" in plots:
        doc.add(
            Image(
                plots["losses"],
                "Discriminator and generator losses (grey lines: resolution changes)",
                plot=True,
            )
        )
    else:
        doc.add(Para("No loss values in any log.jsonl."))


def _samples(doc: Document, results: dict[str, Any]) -> None:
    """The first screen shows the first seed; here come the other seeds and the growth."""
    all_seeds = seeds(results)
    growth = [r for r in results["runs"] if r["growth"] and r["seed"] == all_seeds[0]]
    if len(all_seeds) < 2 and not growth:
        return
    doc.add(Heading("Growth, and the other seeds' samples" if len(all_seeds) > 1 else "Growth"))
    p = picks(results)
    for seed in all_seeds[1:]:
        doc.add(sample_panel(results, [p["coverage"], p["quality"]], seed=seed))
    for r in growth:
        doc.add(
            ImageRow(
                [Image(Path(g["path"]), _growth_caption(g)) for g in r["growth"]],
                f"Growth sequence: {r['name']}",
            )
        )


def _growth_caption(g: dict[str, Any]) -> str:
    """End-of-phase grids are named by their phase (the log's ticks only bracket its end)."""
    size = f"{g['res']}x{g['res']}"
    if g.get("phase"):
        return f"{size}, end of {g['phase']} phase"
    if g["final"]:
        return f"{size}, end of training ({g['kimg']:g} kimg)" if g["kimg"] is not None else size
    return f"{size} at {g['kimg']:g} kimg" if g["kimg"] is not None else size


def results_json(results: dict[str, Any]) -> dict[str, Any]:
    runs = [{k: v for k, v in r.items() if k != "log"} for r in results["runs"]]
    return {
        **results,
        "findings": findings(results),
        "headline_keys": picks(results),
        "runs": runs,
        "floors": {str(k): v for k, v in results["floors"].items()},
        "published": [
            {
                "model": f.model,
                "dataset": f.dataset,
                "family": f.family,
                "value": f.value,
                "source": f.source,
                "protocol": f.protocol,
                "verified": f.verified,
            }
            for f in FIGURES
        ],
    }


def write_csv(results: dict[str, Any], path: Path) -> None:
    """One row per run (final metrics) plus one per real-vs-real floor."""
    keys = metric_keys(results, headline_only=False)
    # Keys only the floor wrote (another N or K) get their own columns, never the models'.
    keys += K.sort_keys(
        [k for f in results["floors"].values() for k in f["metrics"] if k not in keys]
    )
    resolutions = sorted({res for r in results["runs"] for res in r["img_per_s"]})
    cols = (
        [
            "row",
            "model",
            "label",
            "framework",
            "seed",
            "res",
            "state",
            "failed_step",
            "error",
            "kimg_done",
            "tflop",
            "train_wall_s",
            "train_time_s",
            "warmup_s",
            "peak_mem_mb",
        ]
        + [f"img_per_s_{res}" for res in resolutions]
        + keys
        + ["skipped"]
    )
    rows = []
    for r in results["runs"]:
        row = {c: r.get(c) for c in cols}
        row["row"] = r["name"]
        row.update({f"img_per_s_{res}": v for res, v in r["img_per_s"].items()})
        row.update({k: r["metrics"].get(k) for k in keys})
        row["skipped"] = json.dumps(r.get("skipped") or {}) if r.get("skipped") else ""
        rows.append(row)
    for res, f in sorted(results["floors"].items(), key=lambda x: int(x[0])):
        row = {"row": f"real-vs-real-{res}", "state": "floor", "res": res, "error": f.get("error")}
        row.update({k: f["metrics"].get(k) for k in keys})
        rows.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow({c: ("" if row.get(c) is None else row.get(c)) for c in cols})
    tmp.replace(path)
