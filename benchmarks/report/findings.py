"""The first screen's sentences: what the run found, one sentence per question, from the data.

The benchmark asks how much spectral normalisation and progressive growing buy over a plain
DCGAN in quality, diversity and mode coverage at equal compute, and whether the answer depends
on the framework. Every number here is read from the same entries and effects the tables show
(``headline``, ``design``); a sentence whose inputs are missing says what is missing.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from benchmarks.profiles import FRAMEWORK_LABELS
from benchmarks.report import keys as K
from benchmarks.report import kinds
from benchmarks.report.design import Effect, effects, signed
from benchmarks.report.headline import (
    Entry,
    budget_axis,
    budget_phrase,
    budget_short,
    design_entry,
    entries,
    frameworks,
    num_modes,
    picks,
    ranked,
    real_reference,
    seeds,
    unranked_keys,
)
from benchmarks.report.tables import fmt, fmt_stat


def findings(results: dict[str, Any]) -> list[str]:
    p = picks(results)
    out = [
        setup_sentence(results),
        coverage_sentence(results, p["coverage"]),
        quality_sentence(results, p["quality"]),
        diversity_sentence(results, p["diversity"]),
        ingredient_sentence(results, "spectral norm", [p["coverage"], p["quality"]]),
        ingredient_sentence(results, "growing", [p["coverage"], p["quality"]]),
        framework_sentence(results, p["coverage"] or p["quality"]),
        sn_progan_sentence(results, p["coverage"]),
    ]
    return [s for s in out if s]


def _value(e: Entry, key: str) -> str:
    return fmt_stat(e.stat(key), len(e.runs))  # type: ignore[arg-type]


def pct(x: float) -> str:
    """A relative change: one decimal below 10%, whole percents above."""
    return f"{x:+.1%}" if abs(x) < 0.1 else f"{x:+.0%}"


def _key_intro(key: str, results: dict[str, Any]) -> str:
    total = num_modes(results) if K.family(key) == "modes" else None
    d = K.direction(key)
    return (
        f"`{key}`"
        + (f" of {total}" if total else f", {K.name(key)}" if K.name(key) != key else "")
        + (f", {d} is better" if d in (K.LOWER, K.HIGHER) else "")
    )


def setup_sentence(results: dict[str, Any]) -> str:
    runs, p = results["runs"], results["profile"]
    done = sum(r["state"] == "finished" for r in runs)
    models = len({r["model"] for r in runs})
    n_seeds, n_fw = len(seeds(results)), len(frameworks(results))
    pairs = len({(r["model"], r["framework"]) for r in runs})
    # "4 models x 2 frameworks" only where every model runs in every framework
    grid = (
        f"{models} models x {n_fw} frameworks"
        if pairs == models * n_fw
        else f"{models} models in {pairs} model-framework pairs"
    )
    text = (
        f"**Setup**: {len(runs)} runs ({grid}; {n_seeds} seed{'s' if n_seeds > 1 else ''}), "
        f"{p['dataset']} {p['resolution']}x"
        f"{p['resolution']}, **{budget_phrase(results)}**; {done} finished"
    )
    bad = [f"{r['name']} ({r['state']})" for r in runs if r["state"] != "finished"]
    text += f", not finished: {', '.join(bad)}" if bad else ""
    if budget_axis(results) == "images":
        text += "; equal images are not equal compute (cost per image: the compute table)"
    return text + "."


def _best_sentence(
    results: dict[str, Any],
    key: str | None,
    lead: str,
    what: str,
    say_collapsed: bool = False,
    families: tuple[str, ...] = (),
) -> str:
    if key is None:
        unranked = sorted(unranked_keys(results, families))
        if unranked:  # written, but without an estimate for some runs (see headline.pick)
            return (
                f"**{lead}**: no key ranks every model (no estimate for some runs in "
                + ", ".join(f"`{k}`" for k in unranked)
                + "; the tables show what was measured)."
            )
        return f"**{lead}**: not measured (the evaluation wrote no {what} metric)."
    real, _ = real_reference(results, key)
    ents = entries(results)
    order = [e for e in ranked(ents, key, real) if not e.collapsed()]
    text = f"**{lead}** ({_key_intro(key, results)}, {budget_short(results)})"
    if not order:
        return text + f": every model collapsed (fewer than {K.COLLAPSED_MODES} modes)."
    best = order[0]
    text += f": best {best.name} {_value(best, key)}"
    base = design_entry(results, "dcgan", best.framework)
    if base is not None and base.name != best.name and base.stat(key) is not None:
        b, v = base.stat(key).mean, best.stat(key).mean  # type: ignore[union-attr]
        same = "" if len(frameworks(results)) < 2 else " in the same framework"
        if K.direction(key) == K.HIGHER and b > 0:
            text += f", {v / b:.2f}x the plain DCGAN's {_value(base, key)}{same}"
        else:
            rel = f" ({pct((v - b) / abs(b))})" if b else ""
            text += f" vs the plain DCGAN's {_value(base, key)}{rel}{same}"
    elif len(order) > 1:
        text += f", ahead of {order[1].name} at {_value(order[1], key)}"
    collapsed = [e.name for e in ents if e.collapsed()]
    if collapsed and say_collapsed:
        text += f". Collapsed (< {K.COLLAPSED_MODES} modes): {', '.join(collapsed)}"
    return text + "."


def coverage_sentence(results: dict[str, Any], key: str | None) -> str:
    return _best_sentence(
        results,
        key,
        "Mode coverage",
        "modes, NDB, recall or birthday",
        say_collapsed=True,
        families=K.COVERAGE_ORDER,
    )


def quality_sentence(results: dict[str, Any], key: str | None) -> str:
    return _best_sentence(results, key, "Quality", "FD, FID, KID or SWD", families=K.QUALITY_ORDER)


def diversity_sentence(results: dict[str, Any], key: str | None) -> str:
    if key is None or K.direction(key) != K.CLOSEST_TO_REAL:
        return _best_sentence(
            results, key, "Diversity", "MS-SSIM or recall", families=K.DIVERSITY_ORDER
        )
    real, name = real_reference(results, key)
    ents = [e for e in entries(results) if e.stat(key) is not None]
    if real is None or not ents:
        return f"**Diversity** (`{key}`): no real-pair value to compare with."
    order = ranked(ents, key, real)
    text = (
        f"**Diversity** (`{key}`, MS-SSIM of sample pairs, real pairs {fmt(real)}: closest "
        f"is best): closest {order[0].name} {_value(order[0], key)}"
    )
    if len(order) > 1:
        text += f", farthest {order[-1].name} {_value(order[-1], key)}"
    return text + "."


def _verdict(eff: Effect, key: str, results: dict[str, Any]) -> str:
    real, _ = real_reference(results, key)
    ups = [K.better(b, a, key, real) for a, b in eff.means.values()]
    downs = [K.better(a, b, key, real) for a, b in eff.means.values()]
    if not K.direction(key) or (K.direction(key) == K.CLOSEST_TO_REAL and real is None):
        return ""
    return " (better)" if all(ups) else " (worse)" if all(downs) else " (mixed)"


def ingredient_sentence(results: dict[str, Any], what: str, keys: list[str | None]) -> str:
    """Both effects of one ingredient (with and without the other), on each headline key."""
    keys = [k for k in dict.fromkeys(keys) if k]
    if not keys:
        return ""
    fws = frameworks(results)
    parts = []
    for k in keys:
        for eff in effects(results, k):
            if eff.what != what:
                continue
            move = f"{eff.held} ({kinds.label(eff.src)} → {kinds.label(eff.dst)})"
            if not eff.means:
                missing = [
                    kinds.label(kind)
                    for kind in (eff.src, eff.dst)
                    if not any(e.kind == kind for e in entries(results))
                ]
                why = f"no {' or '.join(missing)} run" if missing else "no value for both"
                parts.append((move, f": {why}"))
                continue
            vals = " / ".join(signed(d) if (d := eff.delta(fw)) is not None else "—" for fw in fws)
            parts.append((move, f" {K.short(k)} {vals}{_verdict(eff, k, results)}"))
    moves: dict[str, list[str]] = {}
    for move, text in parts:
        if text not in moves.setdefault(move, []):  # "no SN-ProGAN run" once, not per key
            moves[move].append(text)
    body = "; ".join(f"{move}{','.join(texts)}" for move, texts in moves.items())
    order = " / ".join(FRAMEWORK_LABELS[fw] for fw in fws)
    return f"**{what.capitalize()}** ({budget_short(results)}, {order}): {body}."


def framework_sentence(results: dict[str, Any], key: str | None) -> str:
    fws = frameworks(results)
    if key is None:
        return ""
    if len(fws) < 2:
        return f"**Frameworks**: only {FRAMEWORK_LABELS[fws[0]]} ran; nothing to compare."
    real, _ = real_reference(results, key)
    pairs: list[tuple[str, Entry, Entry]] = []
    for model in dict.fromkeys(r["model"] for r in results["runs"]):
        es = {e.framework: e for e in entries(results) if e.model == model}
        if all(fw in es and es[fw].stat(key) for fw in fws):
            pairs.append((es[fws[0]].label, es[fws[0]], es[fws[1]]))
    if not pairs:
        return f"**Frameworks** (`{key}`): no model has a value in both frameworks."
    text = f"**Frameworks** (`{key}`, PyTorch − TensorFlow): "
    if len(seeds(results)) == 1:
        diffs = ", ".join(
            f"{lab} {signed(a.stat(key).mean - b.stat(key).mean)}" for lab, a, b in pairs
        )
        text += f"one seed: no spread to compare against; differences {diffs}"
    else:
        agree, differ, unknown = [], [], []
        for lab, a, b in pairs:
            sa, sb = a.stat(key), b.stat(key)
            d = sa.mean - sb.mean
            if sa.std is None or sb.std is None:
                unknown.append(f"{lab} ({signed(d)})")
                continue
            se2 = 2 * math.sqrt(sa.std**2 / sa.n + sb.std**2 / sb.n)
            (agree if abs(d) <= se2 else differ).append(
                f"{lab} ({signed(d)}, 2 SE = {fmt(se2, 2)})"
            )
        bits = []
        if agree:
            bits.append(
                "within seed spread (|difference| ≤ 2 standard errors) for " + ", ".join(agree)
            )
        if differ:
            bits.append("beyond seed spread for " + ", ".join(differ))
        if unknown:
            bits.append("one finished seed, no spread, for " + ", ".join(unknown))
        text += "; ".join(bits)
    ranks = {
        fw: [e.label for e in ranked([p[1] if fw == fws[0] else p[2] for p in pairs], key, real)]
        for fw in fws
    }
    if len(pairs) > 1:
        if ranks[fws[0]] == ranks[fws[1]]:
            text += f"; same ranking in both: {' > '.join(ranks[fws[0]])}"
        else:
            text += "; the rankings differ: " + "; ".join(
                f"{FRAMEWORK_LABELS[fw]} {' > '.join(ranks[fw])}" for fw in fws
            )
    return text + "."


def sn_progan_sentence(results: dict[str, Any], key: str | None) -> str:
    """SN-ProGAN's mode coverage relative to DCGAN's at equal budget, as a number."""
    lead = "**SN-ProGAN vs DCGAN**"
    missing = [k for k in ("sn-progan", "dcgan") if not any(e.kind == k for e in entries(results))]
    if missing:
        return f"{lead}: {' and '.join(kinds.label(k) for k in missing)} not in this profile."
    if key is None:
        return f"{lead}: no mode-coverage metric in this evaluation."
    pairs = {}
    for fw in frameworks(results):
        sn, dc = design_entry(results, "sn-progan", fw), design_entry(results, "dcgan", fw)
        if sn and dc and sn.stat(key) and dc.stat(key):
            pairs[fw] = (sn.stat(key).mean, dc.stat(key).mean)
    if not pairs:
        return f"{lead} (`{key}`): no framework has a value for both."
    sn = statistics.fmean(a for a, _ in pairs.values())
    dc = statistics.fmean(b for _, b in pairs.values())
    text = f"{lead} (`{key}`, {budget_short(results)}): {fmt(sn)} vs {fmt(dc)} {K.short(key)}"
    rel = [pct((a - b) / abs(b)) for a, b in pairs.values() if b]
    if dc:
        text += f" ({pct((sn - dc) / abs(dc))}"
        if len(pairs) > 1 and len(rel) == len(pairs):
            text += "; " + ", ".join(f"{FRAMEWORK_LABELS[fw]} {r}" for fw, r in zip(pairs, rel))
        text += ")"
    total = num_modes(results) if K.family(key) == "modes" else None
    if total:
        miss_sn, miss_dc = total - sn, total - dc
        text += f"; modes missed {fmt(miss_sn)} vs {fmt(miss_dc)}"
        if miss_dc:
            change = (miss_sn - miss_dc) / miss_dc
            word = "less" if change < 0 else "more"
            text += f": {abs(change):.1%} {word} mode collapse than DCGAN"
    if len(pairs) > 1:
        text += " (means over frameworks)"
    return text + "."
