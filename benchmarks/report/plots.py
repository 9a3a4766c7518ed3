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

# One colour per model kind, one line style per framework, so a reader can tell them apart.
_COLORS = {"dcgan": "tab:blue", "sndcgan": "tab:orange", "progan": "tab:green"}
_STYLES = {"torch": "-", "tf": "--"}


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
    """Grouped bars: images/s per resolution for every model and framework (mean over seeds)."""
    series: dict[str, dict[int, list[float]]] = {}
    for r in results["runs"]:
        for res, v in r["img_per_s"].items():
            series.setdefault(f"{r['label']} {r['framework_label']}", {}).setdefault(
                int(res), []
            ).append(v)
    if not series:
        return None
    resolutions = sorted({res for s in series.values() for res in s})
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(resolutions) * len(series) / 2), 4))
    width = 0.8 / len(series)
    for i, (name, by_res) in enumerate(series.items()):
        xs = [j + i * width for j, res in enumerate(resolutions) if res in by_res]
        ys = [sum(by_res[res]) / len(by_res[res]) for res in resolutions if res in by_res]
        ax.bar(xs, ys, width=width, label=name)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(resolutions))])
    ax.set_xticklabels([f"{r}x{r}" for r in resolutions])
    ax.set_ylabel("images/s (median tick, mean over seeds)")
    ax.set_yscale("log")
    ax.set_title("Training speed per resolution")
    ax.legend(fontsize=7, framealpha=1)
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, out)


def all_plots(results: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Every figure the report embeds, by name; missing figures are simply absent."""
    figs: dict[str, Path | None] = {}
    keys = K.sort_keys([k for r in results["runs"] for p in r["curve"] for k in p["metrics"]])
    for key in keys:
        if K.is_headline(key):
            figs[f"curve_{key}"] = metric_curves(results, key, out_dir / f"curve_{key}.png")
    figs["losses"] = loss_curves(results, out_dir / "losses.png")
    figs["speed"] = speed_plot(results, out_dir / "speed.png")
    return {k: v for k, v in figs.items() if v is not None}
