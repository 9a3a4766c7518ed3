"""Same-function alternatives to progan_torch's implementation choices, for measuring them.

Each choice below computes the same function as the alternative it replaced (the tests check
values and gradients against each other); it was kept because it was faster. A variant switches
one choice back, for the whole process, so that what a choice buys is measured by a repository
command rather than quoted::

    python -m progan_common.bench_frameworks --compare torch:autograd-penalty,torch --res 8,16,32

(``progan_common.bench_frameworks`` runs each side in its own worker process and reports the
second side's speed over the first's, per round, in alternating windows.) Nothing in training
uses a variant: the defaults are the product.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class Variant:
    what: str  # what it switches back (shown by --help of the commands that take a variant)
    switches: dict = field(default_factory=dict)  # Switches fields it sets
    trainer: dict = field(default_factory=dict)  # ProGANTrainer keyword arguments
    fp32: bool | None = None  # True: fp32 only (--amp off); False: under --amp bf16 only
    why: str = ""  # why it is restricted to that precision


VARIANTS: dict[str, Variant] = {
    "autograd-penalty": Variant(
        "the gradient penalty's second backward through torch's own double backward of each "
        "convolution, instead of explicit input gradients",
        switches={"penalty": "autograd"},
        fp32=True,
        why="torch's own double backward of a bf16 convolution is wrong on CPUs whose oneDNN "
        "uses AMX",
    ),
    "fp32-penalty": Variant(
        "under --amp bf16, the gradient penalty's forward in float32 (the fallback the bf16 "
        "penalty replaced)",
        switches={"penalty": "fp32"},
        fp32=False,
        why="in fp32 it is the default",
    ),
    "autograd-pixelnorm": Variant(
        "pixel norm's backward by autograd over its forward operations, instead of the "
        "hand-written one",
        switches={"pixel_norm_backward": "autograd"},
    ),
    "contiguous": Variant(
        "every tensor NCHW-contiguous, instead of channels-last from 8x8 up",
        trainer={"channels_last": False},
    ),
    "channels-last-4x4": Variant(
        "channels-last at the 4x4 level too (G's first block, D's head, their toRGB / "
        "fromRGB), instead of NCHW-contiguous there",
        trainer={"contiguous_base": False},
    ),
}


@dataclass
class Switches:
    """The process-wide switches the variants set (read by progan_torch.layers / loss)."""

    penalty: str = "explicit"  # "explicit" | "autograd" | "fp32"
    pixel_norm_backward: str = "manual"  # "manual" | "autograd"


ACTIVE = Switches()  # the defaults: what training uses


def check(name: str, amp: str) -> Variant:
    """The variant ``name``; ValueError (a one-line message) unless it exists and applies to
    the precision ``amp``."""
    if name not in VARIANTS:
        raise ValueError(f"unknown progan_torch variant {name!r}; known: {', '.join(VARIANTS)}")
    v = VARIANTS[name]
    if v.fp32 is not None and v.fp32 != (amp == "off"):
        where = "in fp32 only (--amp off)" if v.fp32 else "only under --amp bf16"
        raise ValueError(f"the {name} variant runs {where}: {v.why}")
    return v


def trainer_kwargs(name: str | None, amp: str) -> dict:
    """Set the switches for variant ``name`` (None: the defaults) and return the
    ``ProGANTrainer`` keyword arguments it needs (ValueError as :func:`check`)."""
    v = check(name, amp) if name is not None else Variant("the product")
    for f in fields(Switches):  # the defaults, then the variant's own
        setattr(ACTIVE, f.name, v.switches.get(f.name, f.default))
    return dict(v.trainer)
