"""Report figures (matplotlib, Agg backend): metric curves, losses, speed.

Each function writes one PNG into the report's ``plots/`` folder and returns its
path, or ``None`` when the runs hold nothing to draw (the report then says so).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from benchmarks.report import keys as K  # noqa: E402
from benchmarks.report import kinds  # noqa: E402
from benchmarks.report.headline import (  # noqa: E402
    budget_axis,
    budget_text,
    entries,
    real_reference,
)

# One colour per model kind, one line style and marker per framework, so a reader can tell
# them apart in every figure.
_COLORS = kinds.COLORS
_STYLES = {"torch": "-", "tf": "--"}
_MARKERS = {"torch": "o", "tf": "s"}


def _style(run: dict[str, Any], index: int) -> dict[str, Any]:
    # Extra entries of one kind (e.g. "progan-128" beside "progan") get their own colour.
    color = _COLORS.get(run["kind"]) if run["model"] == run["kind"] else None
    color = color or f"C{(index + 3) % 10}"
    return {"color": color, "linestyle": _STYLES.get(run["framework"], "-")}


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _run_label(r: dict[str, Any], seeds: int) -> str:
    label = f"{r['label']} {r['framework_label']}"
    return label + (f" s{r['seed']}" if seeds > 1 else "")


def metric_curves(results: dict[str, Any], key: str, out: Path) -> Path | None:
    """``key`` against images shown (left) and training wall-clock (right), one line per run."""
    runs = [
        r for r in results["runs"] if any(p["metrics"].get(key) is not None for p in r["curve"])
    ]
    if not runs:
        return None
    seeds = len({r["seed"] for r in results["runs"]})
    fig, (ax_k, ax_t) = plt.subplots(1, 2, figsize=(11, 4))
    for i, r in enumerate(runs):
        pts = [p for p in r["curve"] if p["metrics"].get(key) is not None]
        style = _style(r, i)
        ax_k.plot(
            [p["kimg"] for p in pts],
            [p["metrics"][key] for p in pts],
            marker="o",
            label=_run_label(r, seeds),
            **style,
        )
        tp = [p for p in pts if p["time_s"] is not None]
        if tp:
            ax_t.plot(
                [p["time_s"] / 60 for p in tp], [p["metrics"][key] for p in tp], marker="o", **style
            )
    real = results["floors"].get(results["profile"]["resolution"], {}).get("metrics", {}).get(key)
    for ax in (ax_k, ax_t):
        if real is not None:
            ax.axhline(
                real, color="gray", linestyle=":", label="real vs real" if ax is ax_k else None
            )
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    d = K.direction(key)
    ax_k.set_title(f"{key} vs images shown" + (f" ({d} is better)" if d else ""))
    ax_t.set_title(f"{key} vs training time")
    ax_k.set_xlabel("kimg (thousands of images shown)")
    ax_t.set_xlabel("training time (minutes, log.jsonl time_s)")
    ax_k.legend(fontsize=7)
    return _save(fig, out)


def loss_curves(results: dict[str, Any], out: Path) -> Path | None:
    runs = [r for r in results["runs"] if any("loss_d" in t or "loss_g" in t for t in r["log"])]
    if not runs:
        return None
    n = len(runs)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, r in zip(axes.flat, runs):
        ticks = [t for t in r["log"] if t.get("kimg") is not None]
        for name, color in (("loss_d", "tab:red"), ("loss_g", "tab:blue")):
            pts = [(t["kimg"], t[name]) for t in ticks if t.get(name) is not None]
            if pts:
                ax.plot(*zip(*pts), color=color, label=name, linewidth=1)
        # ProGAN: mark where each resolution starts, so loss jumps can be read.
        last_res = None
        for t in ticks:
            if t.get("res") != last_res and last_res is not None:
                ax.axvline(t["kimg"], color="gray", alpha=0.3)
            last_res = t.get("res")
        ax.set_title(r["name"], fontsize=9)
        ax.set_xlabel("kimg")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, framealpha=1)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return _save(fig, out)


def speed_plot(results: dict[str, Any], out: Path) -> Path | None:
    """Grouped bars: images/s per resolution for every model and framework (mean over seeds);
    colour = model kind as in every figure, hatched = TensorFlow."""
    series: dict[tuple[str, str, str], dict[int, list[float]]] = {}
    for r in results["runs"]:
        for res, v in r["img_per_s"].items():
            name = (f"{r['label']} {r['framework_label']}", r["kind"], r["framework"])
            series.setdefault(name, {}).setdefault(int(res), []).append(v)
    if not series:
        return None
    resolutions = sorted({res for s in series.values() for res in s})
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(resolutions) * len(series) / 2), 4))
    width = 0.8 / len(series)
    for i, ((name, kind, fw), by_res) in enumerate(series.items()):
        xs = [j + i * width for j, res in enumerate(resolutions) if res in by_res]
        ys = [sum(by_res[res]) / len(by_res[res]) for res in resolutions if res in by_res]
        ax.bar(
            xs,
            ys,
            width=width,
            label=name,
            color=_COLORS.get(kind, f"C{i % 10}"),
            hatch="//" if fw == "tf" else None,
            edgecolor="white" if fw == "tf" else None,
        )
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(resolutions))])
    ax.set_xticklabels([f"{r}x{r}" for r in resolutions])
    ax.set_ylabel("images/s (mean over seeds)")
    ax.set_yscale("log")
    ax.set_title("Training speed per resolution")
    ax.legend(fontsize=7, framealpha=1)
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, out)


def _budget_x(results: dict[str, Any], run: dict[str, Any], point: dict[str, Any]) -> float | None:
    """Where an evaluation point sits on the budget's axis: TFLOP, kimg or minutes."""
    axis = budget_axis(results)
    if axis == "compute":
        # Only the final point has a known compute (the budget); ProGAN's cost per image
        # changes with resolution, so an earlier point is not a fraction of it.
        return run.get("tflop") if point["final"] else None
    if axis == "time":
        return point["time_s"] / 60 if point["time_s"] is not None else None
    return point["kimg"]


_AXIS_LABEL = {
    "compute": "training compute (TFLOP)",
    "images": "images shown (kimg)",
    "time": "training time (minutes)",
}


def headline_plot(results: dict[str, Any], key: str, out: Path) -> Path | None:
    """``key`` against the budget's axis (left) and against training wall-clock (right).

    Under an equal budget with only final evaluations every run sits at the same x, so the
    left panel becomes a dot plot: one row per model and framework, a dot per seed."""
    runs = [
        r for r in results["runs"] if any(p["metrics"].get(key) is not None for p in r["curve"])
    ]
    if not runs:
        return None
    pts = {
        r["name"]: [
            (_budget_x(results, r, p), p["time_s"], p["metrics"][key])
            for p in r["curve"]
            if p["metrics"].get(key) is not None
        ]
        for r in runs
    }
    xs = {round(x, 6) for v in pts.values() for x, _, _ in v if x is not None}
    fig, (ax_b, ax_t) = plt.subplots(1, 2, figsize=(10, 3.4), gridspec_kw={"width_ratios": [3, 2]})
    real, real_name = real_reference(results, key)
    by_name = {r["name"]: r for r in runs}
    if len(xs) <= 1:
        ents = [e for e in entries(results) if any(r["name"] in pts for r in e.runs)]
        for y, e in enumerate(ents):
            for r in e.runs:
                for _, _, v in pts.get(r["name"], []):
                    ax_b.scatter(v, y, **_dot(r))
        ax_b.set_yticks(range(len(ents)), [e.name for e in ents], fontsize=8)
        ax_b.invert_yaxis()
        ax_b.set_xlabel(key + (f" ({K.direction(key)} is better)" if K.direction(key) else ""))
        ax_b.set_title(f"at {budget_text(results)}", fontsize=9)
        if real is not None:
            ax_b.axvline(real, color="gray", linestyle=":", label=f"real ({real_name})")
            ax_b.legend(fontsize=7, loc="best")
    else:
        for name, v in pts.items():
            line = [(x, y) for x, _, y in v if x is not None]
            if line:
                ax_b.plot(*zip(*line), **_line(by_name[name]), label=_label(by_name[name]))
        ax_b.set_xlabel(_AXIS_LABEL[budget_axis(results)])
        ax_b.set_ylabel(key)
        ax_b.set_title(f"{key} vs {_AXIS_LABEL[budget_axis(results)]}", fontsize=9)
        if real is not None:
            ax_b.axhline(real, color="gray", linestyle=":")
        ax_b.legend(fontsize=7)
    for name, v in pts.items():
        line = [(t / 60, y) for _, t, y in v if t is not None]
        if line:
            ax_t.plot(*zip(*line), **_line(by_name[name]))
    ax_t.set_xlabel("training time (minutes, log.jsonl time_s)")
    ax_t.set_ylabel(key)
    ax_t.set_title("vs wall-clock on this machine", fontsize=9)
    if real is not None:
        ax_t.axhline(real, color="gray", linestyle=":")
    for ax in (ax_b, ax_t):
        ax.grid(alpha=0.3)
    return _save(fig, out)


def _label(r: dict[str, Any]) -> str:
    return f"{r['label']} {r['framework_label']} s{r['seed']}"


def _line(r: dict[str, Any]) -> dict[str, Any]:
    color = _COLORS.get(r["kind"], "tab:gray")
    return {
        "color": color,
        "linestyle": _STYLES.get(r["framework"], "-"),
        "marker": _MARKERS.get(r["framework"], "o"),
    }


def _dot(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "color": _COLORS.get(r["kind"], "tab:gray"),
        "marker": _MARKERS.get(r["framework"], "o"),
        "s": 36,
        "zorder": 3,
    }


def all_plots(
    results: dict[str, Any], out_dir: Path, headline: str | None = None
) -> dict[str, Path]:
    """Every figure the report embeds, by name; missing figures are simply absent."""
    figs: dict[str, Path | None] = {}
    if headline:
        figs["headline"] = headline_plot(results, headline, out_dir / "headline.png")
    keys = K.sort_keys([k for r in results["runs"] for p in r["curve"] for k in p["metrics"]])
    for key in keys:
        # A curve needs two points: with only the final evaluation (always so under a compute
        # budget) the values are in the tables and the headline plot, not in a row of dots.
        if K.is_headline(key) and any(
            sum(p["metrics"].get(key) is not None for p in r["curve"]) > 1 for r in results["runs"]
        ):
            figs[f"curve_{key}"] = metric_curves(results, key, out_dir / f"curve_{key}.png")
    figs["losses"] = loss_curves(results, out_dir / "losses.png")
    figs["speed"] = speed_plot(results, out_dir / "speed.png")
    return {k: v for k, v in figs.items() if v is not None}
