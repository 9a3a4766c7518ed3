"""The benchmark's 2x2 design: which model kind has progressive growing, which spectral norm.

The question the report answers is what each of the two ingredients buys over a plain DCGAN,
so every kind is a cell of growing x spectral normalisation. A kind not listed here (a future
model) is still shown in every table, just not in the design table or its effects.
"""

from __future__ import annotations

# kind -> (progressive growing, spectral normalisation)
DESIGN: dict[str, tuple[bool, bool]] = {
    "dcgan": (False, False),
    "sndcgan": (False, True),
    "progan": (True, False),
    "sn-progan": (True, True),
}
ORDER = tuple(DESIGN)  # DCGAN, SN-DCGAN, ProGAN, SN-ProGAN: the reading order everywhere
LABELS = {"dcgan": "DCGAN", "sndcgan": "SN-DCGAN", "progan": "ProGAN", "sn-progan": "SN-ProGAN"}
GROWING = tuple(k for k, (g, _) in DESIGN.items() if g)

# The four effects of the 2x2 design: (what changes, held fixed, from kind, to kind).
EFFECTS: tuple[tuple[str, str, str, str], ...] = (
    ("spectral norm", "without growing", "dcgan", "sndcgan"),
    ("spectral norm", "with growing", "progan", "sn-progan"),
    ("growing", "without spectral norm", "dcgan", "progan"),
    ("growing", "with spectral norm", "sndcgan", "sn-progan"),
)

# One colour per kind in every plot, so a reader can follow a model from figure to figure.
COLORS = {
    "dcgan": "tab:blue",
    "sndcgan": "tab:orange",
    "progan": "tab:green",
    "sn-progan": "tab:red",
}


def label(kind: str) -> str:
    return LABELS.get(kind, kind)


def sort_key(kind: str) -> int:
    return ORDER.index(kind) if kind in ORDER else len(ORDER)
