"""What a metric key means for the report: which way is better, which family, headline or not.

Keys come from the evaluate CLI and name their protocol (``swd_16k_avg``,
``fid_5k``, ``modes_covered_26k``); the report never renames a key, it only
decides how to sort and mark it. Unknown keys are still shown (in the full
metrics table) but never marked best.
"""

from __future__ import annotations

import re

LOWER = "lower"
HIGHER = "higher"
CLOSEST_TO_REAL = "closest to real"

# (regex on the key, family, direction). First match wins; order matters.
_RULES: list[tuple[str, str, str | None]] = [
    (r"^swd_.*_avg$", "swd_avg", LOWER),
    (r"^swd_", "swd_level", LOWER),
    (r"^fid", "fid", LOWER),
    (r"^kid", "kid", LOWER),
    (r"^(is|inception_score)(_|$)", "is", HIGHER),
    (r"^msssim.*real", "msssim_real", None),  # the data's own value: the target, not a score
    (r"^msssim", "msssim", CLOSEST_TO_REAL),
    (r"^modes_covered", "modes", HIGHER),
    (r"^kl_modes", "kl", LOWER),
    (r"^ndb_js", "ndb_js", LOWER),
    (r"^ndb_frac", "ndb_frac", LOWER),
    (r"^ndb", "ndb", LOWER),
    (r"^prc_f", "prc_f", HIGHER),
    (r"^precision", "precision", HIGHER),
    (r"^recall", "recall", HIGHER),
    (r"^birthday_support", "birthday_support", HIGHER),
    (r"^birthday_dup", "birthday_dups", LOWER),
    (r"^birthday", "birthday_other", None),
    (r"^classifier_acc", "classifier", None),
]
# Families shown in the summary table; the rest appear in the full table only.
HEADLINE = (
    "fid",
    "kid",
    "is",
    "swd_avg",
    "msssim",
    "modes",
    "kl",
    "ndb",
    "precision",
    "recall",
    "birthday_support",
)
# Families of the mode-collapse / diversity section.
DIVERSITY = (
    "modes",
    "kl",
    "ndb",
    "ndb_frac",
    "ndb_js",
    "msssim",
    "msssim_real",
    "birthday_support",
    "birthday_dups",
    "birthday_other",
)
# Preferred quality metric for "time to reach final quality", best first.
QUALITY_ORDER = ("fid", "swd_avg", "kid", "ndb", "kl")


def _is_aux(key: str) -> bool:
    """Standard deviations, counts, thresholds: numbers that describe another number."""
    return bool(re.search(r"(_std|_stderr|_count_total|_threshold|_seconds)$", key))


def family(key: str) -> str | None:
    if _is_aux(key):
        return None
    for pattern, fam, _ in _RULES:
        if re.search(pattern, key):
            return fam
    return None


def direction(key: str) -> str | None:
    if _is_aux(key):
        return None
    for pattern, _, d in _RULES:
        if re.search(pattern, key):
            return d
    return None


def is_headline(key: str) -> bool:
    return family(key) in HEADLINE


def sort_keys(keys: list[str]) -> list[str]:
    """Headline families in a fixed order, then the rest alphabetically."""
    order = {f: i for i, f in enumerate(HEADLINE + DIVERSITY)}
    return sorted(set(keys), key=lambda k: (order.get(family(k) or "", 99), k))


def better(a: float, b: float, key: str, real: float | None = None) -> bool:
    """Is ``a`` strictly better than ``b`` for ``key``? (closest-to-real needs ``real``)."""
    d = direction(key)
    if d == LOWER:
        return a < b
    if d == HIGHER:
        return a > b
    if d == CLOSEST_TO_REAL and real is not None:
        return abs(a - real) < abs(b - real)
    return False


def markable(key: str, real: float | None) -> bool:
    d = direction(key)
    return d in (LOWER, HIGHER) or (d == CLOSEST_TO_REAL and real is not None)
