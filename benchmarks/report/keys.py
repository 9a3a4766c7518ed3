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
# The learned-feature distances on the project's own classifiers (``fd_digits_10k``,
# ``kid_cifar10cls_5k_mean``, ``precision_digits_10k``) come before the Inception/VGG rules:
# they are their own families, never in an Inception column (the values are not comparable).
_DOMAIN = r"(digits|cifar10cls)_"
_RULES: list[tuple[str, str, str | None]] = [
    (r"^swd_.*_avg$", "swd_avg", LOWER),
    (r"^swd_", "swd_level", LOWER),
    (r"^fd_", "fd", LOWER),
    (r"^kid_" + _DOMAIN, "kid_domain", LOWER),
    (r"^precision_" + _DOMAIN, "precision_domain", HIGHER),
    (r"^recall_" + _DOMAIN, "recall_domain", HIGHER),
    (r"^prc_f_score_" + _DOMAIN, "prc_f_domain", HIGHER),
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
    "fd",
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
    "precision_domain",
    "recall_domain",
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
# The metric that answers each of the benchmark's questions, best first: the first family
# with values wins. Quality also serves "time to reach final quality". Learned features of
# the data set's own classifier come first where they exist (they separate the models where
# pixel statistics do not), then Inception, then the pixel-space SWD.
QUALITY_ORDER = ("fd", "fid", "kid_domain", "kid", "swd_avg", "ndb", "kl")
COVERAGE_ORDER = ("modes", "ndb", "recall_domain", "recall", "birthday_support")
DIVERSITY_ORDER = ("msssim", "recall_domain", "recall", "kl")
# A model whose samples fall in fewer modes than this has collapsed: its other numbers
# describe a handful of images and are never marked best.
COLLAPSED_MODES = 10

_NAMES = {
    "modes": "modes covered",
    "kl": "KL(modes || uniform)",
    "ndb": "different bins (NDB)",
    "fd": "FD on the data set classifier's features",
    "fid": "FID",
    "kid": "KID",
    "kid_domain": "KID on classifier features",
    "swd_avg": "SWD",
    "msssim": "MS-SSIM",
    "precision": "precision",
    "recall": "recall",
    "precision_domain": "precision (classifier features)",
    "recall_domain": "recall (classifier features)",
    "birthday_support": "birthday support estimate",
}


def name(key: str) -> str:
    """A few words for a key's family (the key itself is always shown beside it)."""
    return _NAMES.get(family(key) or "", key)


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


_SHORT = {
    "modes": "modes",
    "kl": "KL",
    "ndb": "NDB",
    "fd": "FD",
    "fid": "FID",
    "kid": "KID",
    "kid_domain": "KID",
    "swd_avg": "SWD",
    "msssim": "MS-SSIM",
    "precision": "precision",
    "recall": "recall",
    "precision_domain": "precision",
    "recall_domain": "recall",
    "birthday_support": "support",
}


def short(key: str) -> str:
    """A word or two for a caption under a sample grid ('modes 812 · FD 12.3')."""
    return _SHORT.get(family(key) or "", key)
