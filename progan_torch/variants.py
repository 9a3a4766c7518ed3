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

from dataclasses import dataclass

# name -> what it switches back (shown by --help of the commands that take a variant)
VARIANTS: dict[str, str] = {
    "autograd-penalty": "the gradient penalty's second backward through torch's own double "
    "backward of each convolution, instead of explicit input gradients (fp32 only: under bf16 "
    "on a CPU whose oneDNN uses AMX torch's own path gives a wrong weight gradient)",
    "fp32-penalty": "under --amp bf16, the gradient penalty's forward in float32 (the fallback "
    "the bf16 penalty replaced)",
    "autograd-pixelnorm": "pixel norm's backward by autograd over its forward operations, "
    "instead of the hand-written one",
    "contiguous": "every tensor NCHW-contiguous, instead of channels-last from 8x8 up",
    "channels-last-4x4": "channels-last at the 4x4 level too (G's first block, D's head, their "
    "toRGB / fromRGB), instead of NCHW-contiguous there",
}


@dataclass
class Switches:
    """The process-wide switches the variants set (read by progan_torch.layers / loss)."""

    penalty: str = "explicit"  # "explicit" | "autograd" | "fp32"
    pixel_norm_backward: str = "manual"  # "manual" | "autograd"


ACTIVE = Switches()  # the defaults: what training uses


def check(name: str, amp: str) -> None:
    """ValueError (a one-line message) unless ``name`` is a variant that applies to the
    precision ``amp``."""
    if name not in VARIANTS:
        raise ValueError(f"unknown progan_torch variant {name!r}; known: {', '.join(VARIANTS)}")
    if name == "autograd-penalty" and amp != "off":
        raise ValueError(
            "the autograd-penalty variant runs in fp32 only (--amp off): torch's own double "
            "backward of a bf16 convolution is wrong on CPUs whose oneDNN uses AMX"
        )
    if name == "fp32-penalty" and amp == "off":
        raise ValueError("the fp32-penalty variant differs from the default only under --amp bf16")


def trainer_kwargs(name: str | None, amp: str) -> dict:
    """Set the switches for variant ``name`` (None: the defaults) and return the
    ``ProGANTrainer`` keyword arguments it needs (ValueError as :func:`check`)."""
    ACTIVE.penalty, ACTIVE.pixel_norm_backward = "explicit", "manual"
    if name is None:
        return {}
    check(name, amp)
    if name == "autograd-penalty":
        ACTIVE.penalty = "autograd"
    elif name == "fp32-penalty":
        ACTIVE.penalty = "fp32"
    elif name == "autograd-pixelnorm":
        ACTIVE.pixel_norm_backward = "autograd"
    elif name == "contiguous":
        return {"channels_last": False}
    elif name == "channels-last-4x4":
        return {"contiguous_base": False}
    return {}
