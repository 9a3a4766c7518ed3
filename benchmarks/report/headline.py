"""What the report leads with: model entries, their statistics over seeds, the headline keys.

An *entry* is one model of the profile in one framework (its runs are the seeds). Each of the
benchmark's questions is answered with one metric key, picked from the keys the runs wrote:
``coverage`` (mode coverage), ``quality`` and ``diversity`` (orders in :mod:`keys`).
Nothing here formats a table; ``tables``, ``design`` and ``findings`` build on it.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from benchmarks.profiles import Budget
from benchmarks.report import keys as K


@dataclass
class Stat:
    """One key's values over an entry's finished seeds."""

    values: list[float]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) > 1 else None

    @property
    def n(self) -> int:
        return len(self.values)


@dataclass
class Entry:
    model: str  # the profile's model name (run-folder prefix)
    kind: str
    label: str
    framework: str
    framework_label: str
    res: int
    runs: list[dict[str, Any]]

    @property
    def finished(self) -> list[dict[str, Any]]:
        return [r for r in self.runs if r["state"] == "finished"]

    @property
    def name(self) -> str:
        return f"{self.label} ({self.framework_label})"

    def stat(self, key: str | None) -> Stat | None:
        if key is None:
            return None
        vals = [r["metrics"][key] for r in self.finished if r["metrics"].get(key) is not None]
        return Stat(vals) if vals else None

    def no_estimate(self, key: str) -> bool:
        """Did a finished run's metric write null for ``key`` (it ran, it has no estimate)?"""
        return any(key in r["metrics"] and r["metrics"][key] is None for r in self.finished)

    def collapsed(self) -> str | None:
        """Why this entry's numbers are degenerate (a seed covering < 10 modes), else None."""
        for r in self.finished:
            for k, v in r["metrics"].items():
                if K.family(k) == "modes" and v is not None and v < K.COLLAPSED_MODES:
                    return f"collapsed: seed {r['seed']} covers {v:g} modes"
        return None


def entries(results: dict[str, Any]) -> list[Entry]:
    """One entry per (model, framework), in plan order."""
    out: dict[tuple[str, str], Entry] = {}
    for r in results["runs"]:
        key = (r["model"], r["framework"])
        if key not in out:
            out[key] = Entry(
                r["model"],
                r["kind"],
                r["label"],
                r["framework"],
                r["framework_label"],
                r["res"],
                [],
            )
        out[key].runs.append(r)
    return list(out.values())


def design_entry(results: dict[str, Any], kind: str, framework: str) -> Entry | None:
    """The entry standing for ``kind`` in the 2x2 design: the model named like its kind, else
    the first of that kind at the profile's resolution (``progan-128`` stays out of it)."""
    cands = [e for e in entries(results) if e.kind == kind and e.framework == framework]
    named = [e for e in cands if e.model == kind]
    at_res = [e for e in cands if e.res == results["profile"]["resolution"]]
    return (named or at_res or [None])[0]


def seeds(results: dict[str, Any]) -> list[int]:
    return sorted({r["seed"] for r in results["runs"]})


def frameworks(results: dict[str, Any]) -> list[str]:
    return [fw for fw in ("torch", "tf") if any(r["framework"] == fw for r in results["runs"])]


def pick(
    results: dict[str, Any], order: tuple[str, ...], exclude: tuple[str, ...] = ()
) -> str | None:
    """The key of the first family in ``order`` that has values; among several keys of that
    family (another N), the one most runs have. A key that some finished run reports as null
    (no estimate: e.g. the birthday test's support when no duplicate pair was found) cannot
    rank the runs, so it is never a headline key."""
    count: dict[str, int] = {}
    for r in results["runs"]:
        if r["state"] != "finished":
            continue
        for k, v in r["metrics"].items():
            if v is not None:
                count[k] = count.get(k, 0) + 1
    null = unranked_keys(results)
    for fam in order:
        cands = [k for k in count if K.family(k) == fam and k not in exclude and k not in null]
        if cands:
            return sorted(cands, key=lambda k: (-count[k], k))[0]
    return None


def unranked_keys(results: dict[str, Any], families: tuple[str, ...] | None = None) -> set[str]:
    """Keys some finished run reports as null (no estimate), optionally of ``families`` only."""
    return {
        k
        for r in results["runs"]
        if r["state"] == "finished"
        for k, v in r["metrics"].items()
        if v is None and (families is None or K.family(k) in families)
    }


def picks(results: dict[str, Any]) -> dict[str, str | None]:
    """The headline key of each question: coverage, quality, diversity (each a different key)."""
    coverage = pick(results, K.COVERAGE_ORDER)
    quality = pick(results, K.QUALITY_ORDER, exclude=(coverage or "",))
    diversity = pick(results, K.DIVERSITY_ORDER, exclude=(coverage or "", quality or ""))
    return {"coverage": coverage, "quality": quality, "diversity": diversity}


def real_reference(results: dict[str, Any], key: str) -> tuple[float | None, str]:
    """What 'closest to real' compares with, and its name: for MS-SSIM the runs' own real-pair
    value (``msssim_real_<P>_pairs``, the same pairs protocol), else the floor's same key."""
    if key.startswith("msssim_") and "real" not in key:
        real_key = key.replace("msssim_", "msssim_real_", 1)
        vals = [
            r["metrics"][real_key]
            for r in results["runs"]
            if r["state"] == "finished" and r["metrics"].get(real_key) is not None
        ]
        if vals:
            return statistics.fmean(vals), real_key
    res = results["profile"]["resolution"]
    floor = results["floors"].get(res) or results["floors"].get(str(res)) or {}
    v = floor.get("metrics", {}).get(key)
    return v, f"the real-vs-real floor's {key}"


def num_modes(results: dict[str, Any]) -> int | None:
    """How many modes the data set has (the modes metric's protocol), for 'N of 1000'."""
    for r in results["runs"]:
        n = ((r.get("details") or {}).get("protocol") or {}).get("modes", {}).get("num_modes")
        if n:
            return int(n)
    return None


def budget_text(results: dict[str, Any]) -> str:
    """The budget in words (``Budget.describe``): 'equal training compute: 28 TFLOP per model'."""
    b = results.get("budget") or results["profile"].get("budget") or {}
    try:
        return Budget(**b).describe()
    except (TypeError, ValueError):
        kimg = results["profile"].get("kimg")
        return f"equal images shown: {kimg:g} kimg per model" if kimg else "budget not recorded"


def budget_axis(results: dict[str, Any]) -> str:
    b = results.get("budget") or results["profile"].get("budget") or {}
    return b.get("axis", "images")


def seeds_text(results: dict[str, Any]) -> str:
    s = seeds(results)
    if len(s) == 1:
        return f"1 seed (seed {s[0]}): single values, no spread"
    return (
        f"{len(s)} seeds ({', '.join(map(str, s))}): mean ± sample standard deviation over the "
        "seeds that finished"
    )


def budget_phrase(results: dict[str, Any]) -> str:
    """The budget inside a sentence: 'equal training compute (28 TFLOP per model)'."""
    head, _, tail = budget_text(results).partition(": ")
    return f"{head} ({tail})" if tail else head


def budget_short(results: dict[str, Any]) -> str:
    """The axis in two words, for sentences that follow the setup: 'equal compute'."""
    return {"compute": "equal compute", "images": "equal images", "time": "equal time"}.get(
        budget_axis(results), "equal budget"
    )


def ranked(ents: list[Entry], key: str, real: float | None) -> list[Entry]:
    """Entries with a value for ``key``, best first (ties keep plan order)."""
    import functools

    have = [e for e in ents if e.stat(key) is not None]

    def cmp(a: Entry, b: Entry) -> int:
        ma, mb = a.stat(key).mean, b.stat(key).mean  # type: ignore[union-attr]
        return -1 if K.better(ma, mb, key, real) else 1 if K.better(mb, ma, key, real) else 0

    return sorted(have, key=functools.cmp_to_key(cmp))
