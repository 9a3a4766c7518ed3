"""The protocol section: data, split, N, feature extractors and weights, seeds, skips, hardware.

Everything is read from the metric files' ``protocol`` / ``skipped`` entries and
from the harness's hardware record; a protocol that differs between runs is
listed once per variant with the runs that used it, so a mixed table is visible.
"""

from __future__ import annotations

import json
from typing import Any

from benchmarks.report.document import Bullets, Heading, Para, TableBlock
from benchmarks.report.headline import budget_text, seeds_text
from benchmarks.report.tables import Cell, Row, Table

# Per-run results, timings and cache flags inside protocol dicts: not part of the protocol.
_VOLATILE = {
    "time",
    "wall_s",
    "closest_pairs",
    "pairs_png",
    "dup_pairs_per_batch",
    "path",
    "different_bins",
}
_VOLATILE_SUFFIXES = ("_cached", "cached", "_hist", "seconds", "seconds_compute")


def _clean(proto: Any) -> Any:
    if isinstance(proto, dict):
        return {
            k: _clean(v)
            for k, v in sorted(proto.items())
            if k not in _VOLATILE
            and not k.endswith(_VOLATILE_SUFFIXES)
            and not k.startswith("seconds")
        }
    if isinstance(proto, list) and len(proto) > 6:
        return f"[{len(proto)} values]"
    return proto


def _reference(ref: dict[str, Any]) -> str:
    """A reference set in one phrase: which images, how many, which bytes."""
    part = f", {ref['part']}" if ref.get("part") else ""
    return (
        f"{ref.get('name')}:{ref.get('split')} {ref.get('res')}px, n={ref.get('n')} of "
        f"{ref.get('count')}{part}, data sha256 {ref.get('data_sha256_16', '?')}"
    )


def _describe(proto: Any) -> str:
    if not isinstance(proto, dict):
        return json.dumps(proto)
    parts = []
    for k, v in proto.items():
        if k == "reference" and isinstance(v, dict):
            parts.append(f"reference={_reference(v)}")
        else:
            parts.append(f"{k}={v if not isinstance(v, dict | list) else json.dumps(v)}")
    return "; ".join(parts)


def protocol_table(results: dict[str, Any]) -> Table:
    """One row per distinct protocol of each metric among the runs, then the floors' own."""
    variants: dict[str, dict[str, list[str]]] = {}
    sources = [(r["name"], r["details"]) for r in results["runs"] if r["details"]]
    for name, details in sources:
        for metric, proto in (details.get("protocol") or {}).items():
            variants.setdefault(metric, {}).setdefault(_describe(_clean(proto)), []).append(name)
    t = Table("Metric protocols (from the metric files)", ["metric", "protocol", "used by"])
    for metric in sorted(variants):
        for text, names in variants[metric].items():
            used = "every scored run" if len(names) == len(sources) else ", ".join(names)
            t.rows.append(Row(metric, [Cell(text), Cell(used)]))
    for res, f in sorted(results["floors"].items(), key=lambda x: int(x[0])):
        for metric, proto in sorted((f.get("details", {}).get("protocol") or {}).items()):
            t.rows.append(
                Row(
                    metric,
                    [Cell(_describe(_clean(proto))), Cell(f"real-vs-real floor {res}px")],
                    kind="floor",
                )
            )
    if any(len(v) > 1 for v in variants.values()):
        t.notes.append(
            "A metric with more than one protocol row among the runs was not computed "
            "the same way for every run: do not compare those runs directly."
        )
    t.notes.append(
        "Sample counts are capped by the images available: a key's N (swd_2k_avg) "
        "is the N actually used."
    )
    return t


def skipped_items(results: dict[str, Any]) -> list[str]:
    reasons: dict[tuple[str, str], list[str]] = {}
    for r in results["runs"]:
        for metric, why in (r.get("skipped") or {}).items():
            reasons.setdefault((metric, str(why)), []).append(r["name"])
    for res, f in results["floors"].items():
        for metric, why in (f.get("skipped") or {}).items():
            reasons.setdefault((metric, str(why)), []).append(f"real-vs-real {res}px")
    return [
        f"**{m}** skipped: {why} ({', '.join(names)})"
        for (m, why), names in sorted(reasons.items())
    ]


def domain_items(results: dict[str, Any]) -> list[str]:
    """The learned-feature distances (``fd_digits_*`` ...): which classifier, how accurate on
    held-out data, which weights; never comparable with Inception FID."""
    seen: dict[tuple[Any, ...], list[str]] = {}
    for r in results["runs"]:
        for metric, proto in ((r.get("details") or {}).get("protocol") or {}).items():
            if metric.endswith("_domain") and isinstance(proto, dict):
                key = (
                    proto.get("extractor"),
                    proto.get("classifier_heldout_accuracy"),
                    proto.get("weights_sha256_16"),
                    proto.get("layer"),
                )
                seen.setdefault(key, [])
                if metric not in seen[key]:
                    seen[key].append(metric)
    items = []
    for (extractor, acc, sha, layer), metrics in seen.items():
        acc_text = f"{acc:.2%}" if isinstance(acc, int | float) else "not recorded"
        items.append(
            f"Learned-feature distances ({', '.join(sorted(metrics))}): the project's "
            f"**{extractor}** classifier, held-out accuracy {acc_text}, weights sha256 "
            f"{sha or '?'}" + (f", features: {layer}" if layer else "") + ". Comparable only at "
            "the same extractor, weights and N; **not comparable with Inception FID**."
        )
    if len(seen) > 1:
        items.append(
            "More than one classifier (or weights) among the runs: compare the learned-feature "
            "distances only between runs that share one."
        )
    return items


def protocol_section(results: dict[str, Any]) -> list[object]:
    p = results["profile"]
    ev = p["evaluation"]
    blocks: list[object] = [Heading("Protocol")]
    blocks.append(
        Bullets(
            [
                f"Data set: {p['dataset']}"
                + (f" from {p['data_root']}" if p.get("data_root") else "")
                + f", {p['resolution']}x{p['resolution']}; split and reference N per metric below.",
                "Models: "
                + ", ".join(
                    f"{m['name']} ({m['kind']}, {m['res']}px"
                    + (f", preset {m['preset']}" if m.get("preset") else "")
                    + (f", batch {m['batch']}" if m.get("batch") else "")
                    + (f", args {json.dumps(m['args'])}" if m.get("args") else "")
                    + ")"
                    for m in p["models"]
                ),
                *(
                    f"Why {m['name']} trains this way: {m['why']}"
                    for m in p["models"]
                    if m.get("why")
                ),
                f"Training budget, the axis every comparison is made on: {budget_text(results)} "
                "(each run's images shown, TFLOP and training seconds: the compute table).",
                f"Seeds: {seeds_text(results)}. Checkpoints every {p['snapshot_kimg']:g} kimg; "
                + (
                    f"intermediate evaluations at {', '.join(f'{k:g}' for k in p['eval_kimg'])} kimg."
                    if p["eval_kimg"]
                    else "no intermediate evaluations (the final checkpoint only)."
                ),
                f"Samples exported per evaluation point: {ev['num_samples']} (each metric uses up to its "
                "own N, named in its key); sample i of seed S uses the latent "
                "numpy.random.default_rng([S, i]), identical in both frameworks.",
                "Real-vs-real floor: "
                + (
                    f"disjoint halves of the {ev.get('floor_split', 'train')} split "
                    "scored like samples"
                    if ev.get("floor_split", "train") == "train"
                    else f"the {ev.get('floor_split')} split scored against train"
                )
                + (
                    ", capped at the same N." if ev.get("floor") else " (disabled in this profile)."
                ),
                f"Metrics requested: {', '.join(ev['metrics'])}.",
                *domain_items(results),
            ]
        )
    )
    blocks.append(TableBlock(protocol_table(results)))
    skipped = skipped_items(results)
    requested = [m.lower() for m in ev["metrics"]]
    not_requested = [m for m in ("fid", "kid", "isc") if m not in requested]
    items = list(skipped)
    if not_requested:
        items.append(
            f"Not requested by this profile: {', '.join(not_requested)} "
            "(Inception metrics need InceptionV3 weights, which cannot be downloaded "
            "on machines without internet)."
        )
    blocks += [
        Heading("Skipped metrics", 3),
        Bullets(items) if items else Para("Nothing was skipped."),
    ]
    hw = results.get("hardware") or {}
    blocks.append(Heading("Hardware and software", 3))
    if hw:
        blocks.append(Bullets([f"{k}: {v}" for k, v in sorted(hw.items())]))
    else:
        blocks.append(Para("— (no hardware.json: the harness has not run this profile here)"))
    others = {
        json.dumps(r["hardware"], sort_keys=True) for r in results["runs"] if r.get("hardware")
    }
    if len(others) > 1:
        blocks.append(
            Para(
                "Runs were made on more than one machine (see each run's harness.json); "
                "compare speeds only between runs on the same hardware."
            )
        )
    return blocks
