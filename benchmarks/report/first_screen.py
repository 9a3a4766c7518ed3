"""The report's first screen: what the run found in words, every model's samples, one plot.

A reader who opens the report sees, before any table: one sentence per question of the
benchmark (``findings``), the final sample grids of all models side by side with their
headline numbers and the real images beside them, and the headline metric against the
budget's axis and against wall-clock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.report import keys as K
from benchmarks.report import kinds
from benchmarks.report.document import Bullets, GridPanel, Image, Section
from benchmarks.report.findings import findings
from benchmarks.report.headline import budget_text, frameworks, picks, seeds
from benchmarks.report.tables import fmt

ANCHOR = "at-a-glance"


def first_screen(results: dict[str, Any], plots: dict[str, Path]) -> Section:
    p = picks(results)
    blocks: list[object] = [Bullets(findings(results), css_class="findings")]
    blocks.append(sample_panel(results, [p["coverage"], p["quality"]]))
    if "headline" in plots:
        key = p["coverage"] or p["quality"]
        blocks.append(
            Image(
                plots["headline"],
                f"{key} at {budget_text(results)} (left) and against training wall-clock "
                "(right); colour: model, marker: framework (circle PyTorch, square TensorFlow)",
                plot=True,
            )
        )
    return Section("At a glance", ANCHOR, blocks)


def model_order(results: dict[str, Any]) -> list[str]:
    """Model names in the design's reading order (DCGAN, SN-DCGAN, ProGAN, SN-ProGAN, others)."""
    names = list(dict.fromkeys(r["model"] for r in results["runs"]))
    kind = {r["model"]: r["kind"] for r in results["runs"]}
    return sorted(names, key=lambda m: (kinds.sort_key(kind[m]), names.index(m)))


def _caption(run: dict[str, Any], keys: list[str | None]) -> str:
    head = f"{run['label']} · {run['framework_label']}"
    if run["state"] != "finished":
        return f"{head}\n{run['state']}"
    nums = [
        f"{K.short(k)} {fmt(run['metrics'][k])}"
        for k in dict.fromkeys(keys)
        if k and run["metrics"].get(k) is not None
    ]
    return head + ("\n" + " · ".join(nums) if nums else "")


def sample_panel(
    results: dict[str, Any], keys: list[str | None], seed: int | None = None
) -> GridPanel:
    """Rows: frameworks; columns: the real images, then every model (same order in each row).
    ``seed``: whose grids (default: the first seed)."""
    seed = seeds(results)[0] if seed is None else seed
    models = model_order(results)
    prof = results["profile"]
    reals = next(
        (
            r["reals_grid"]
            for r in results["runs"]
            if r.get("reals_grid") and r["res"] == prof["resolution"]
        ),
        next((r["reals_grid"] for r in results["runs"] if r.get("reals_grid")), None),
    )
    real_cap = f"Real images\n{prof['dataset']} {prof['resolution']}x{prof['resolution']}"
    images: list[Image | None] = []
    for row, fw in enumerate(frameworks(results)):
        if row == 0:
            images.append(
                Image(
                    Path(reals) if reals else None,
                    real_cap if reals else real_cap + "\n(no reals.png)",
                )
            )
        else:
            images.append(None)
        for m in models:
            run = next(
                (
                    r
                    for r in results["runs"]
                    if r["model"] == m and r["framework"] == fw and r["seed"] == seed
                ),
                None,
            )
            if run is None:
                images.append(None)
                continue
            grid = run.get("final_grid")
            images.append(
                Image(Path(grid["path"]), _caption(run, keys))
                if grid
                else Image(None, _caption(run, keys) + "\n(no sample grid)")
            )
    n_seeds = len(seeds(results))
    title = (
        f"Final samples, seed {seed}"
        + (f" (of {n_seeds}; the numbers under each grid are this seed's)" if n_seeds > 1 else "")
        + "; a model's PyTorch and TensorFlow runs draw the same latents"
    )
    return GridPanel(images, columns=len(models) + 1, title=title)
