"""progan_torch.variants: each switches one implementation choice back to the same-function
alternative it replaced (for progan_common.bench_frameworks --compare), and really does; the
training step computes the same values either way."""

from __future__ import annotations

import contextlib

import pytest
import torch

from gancore.latents import RandomSource
from progan_torch import loss, variants
from progan_torch.layers import pixel_norm
from progan_torch.training import ProGANTrainer
from tests.progan_torch.conftest import make_tiny
from tests.train_helpers import progan_randoms

STATS = ("loss_d", "loss_g", "d_real", "d_fake", "gp", "grad_norm")
FP32 = ("autograd-penalty", "autograd-pixelnorm", "contiguous", "channels-last-4x4")


@pytest.fixture(autouse=True)
def _defaults_afterwards():
    yield
    variants.trainer_kwargs(None, "off")  # the switches are process-wide: back to the product


def _trainer(variant: str | None, amp: str = "off", **over) -> ProGANTrainer:
    cfg = make_tiny(max_res=16, fmap_base=64, fmap_max=16, default_batch=8, amp=amp, **over)
    return ProGANTrainer(cfg, 3, 0, **variants.trainer_kwargs(variant, amp))


def _two_steps(tr: ProGANTrainer, nimg: int) -> list[dict]:
    """Two steps from image position ``nimg`` of the schedule (4x4 up to 12 images, then the
    fade into 8x8 up to 28, then 8x8)."""
    cfg = tr.cfg
    out = []
    for k in range(2):
        st = cfg.schedule().state(nimg + k * 8)
        tr.set_stage(st)
        u8, _ = RandomSource(3, seed=1).batch(st.res, st.nimg, st.batch)
        out.append(tr.step(u8, None, progan_randoms(cfg, st)))
    return out


@pytest.mark.parametrize("variant", FP32)
@pytest.mark.parametrize("nimg", [0, 13, 30], ids=["4x4", "fade-8x8", "8x8"])
def test_every_fp32_variant_computes_the_same_step(variant, nimg):
    ref = _two_steps(_trainer(None), nimg)
    got = _two_steps(_trainer(variant), nimg)
    for a, b in zip(ref, got):
        assert b["skipped"] == a["skipped"] == 0
        for k in STATS:
            assert b[k] == pytest.approx(a[k], rel=1e-4, abs=1e-5), (variant, k)


def test_the_fp32_penalty_variant_matches_the_bf16_default_within_bf16_rounding():
    ref = _two_steps(_trainer(None, "bf16"), 13)
    got = _two_steps(_trainer("fp32-penalty", "bf16"), 13)
    for a, b in zip(ref, got):
        for k in STATS:
            assert abs(b[k] - a[k]) <= 0.02 + 0.03 * abs(a[k]), (k, a[k], b[k])


def _conv_output_dtypes(tr: ProGANTrainer) -> set[torch.dtype]:
    seen: set[torch.dtype] = set()
    hooks = [
        m.register_forward_hook(lambda _m, _i, o: seen.add(o.dtype))
        for m in tr.m.D.modules()
        if type(m).__name__.endswith(("Conv2d", "ConvDown2d"))
    ]
    try:
        _two_steps(tr, 30)
    finally:
        for h in hooks:
            h.remove()
    return seen


def test_the_variants_really_switch(monkeypatch):
    entered = []
    real = loss.explicit_input_gradients

    @contextlib.contextmanager
    def counting():
        entered.append(1)
        with real():
            yield

    monkeypatch.setattr(loss, "explicit_input_gradients", counting)
    _two_steps(_trainer(None), 30)
    assert entered, "the default penalty takes the explicit input gradients"
    entered.clear()
    _two_steps(_trainer("autograd-penalty"), 30)
    assert not entered

    x = torch.randn(2, 4, 3, 3, requires_grad=True)
    variants.trainer_kwargs(None, "off")
    assert type(pixel_norm(x).grad_fn).__name__.startswith("_PixelNorm")
    variants.trainer_kwargs("autograd-pixelnorm", "off")
    assert not type(pixel_norm(x).grad_fn).__name__.startswith("_PixelNorm")

    # bf16: D's convolutions all run in bf16, except the penalty's under fp32-penalty
    assert _conv_output_dtypes(_trainer(None, "bf16")) == {torch.bfloat16}
    assert _conv_output_dtypes(_trainer("fp32-penalty", "bf16")) == {
        torch.bfloat16,
        torch.float32,
    }


def _layouts(module: torch.nn.Module) -> set[bool]:
    """For every 4-d parameter: is it channels-last (and not also plain contiguous)?"""
    return {
        p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
        for p in module.parameters()
        if p.dim() == 4 and p.shape[-1] > 1
    }


def test_the_layout_variants():
    default = _trainer(None).m
    assert _layouts(default.G.blocks[0]) == {False} and _layouts(default.G.blocks[1]) == {True}
    contiguous = _trainer("contiguous").m
    assert _layouts(contiguous.G) == {False} and _layouts(contiguous.D) == {False}
    everywhere = _trainer("channels-last-4x4").m
    assert _layouts(everywhere.G) == {True} and _layouts(everywhere.D) == {True}


@pytest.mark.parametrize(
    "name, amp, message",
    [
        ("fast", "off", "unknown progan_torch variant 'fast'"),
        ("autograd-penalty", "bf16", "fp32 only"),
        ("fp32-penalty", "off", "only under --amp bf16"),
    ],
)
def test_bad_variants_are_refused(name, amp, message):
    """A refused variant changes no switch: those set before stay as they were."""
    variants.trainer_kwargs("autograd-pixelnorm", "off")
    before = variants.Switches(**vars(variants.ACTIVE))
    assert before != variants.Switches()
    with pytest.raises(ValueError, match=message):
        variants.trainer_kwargs(name, amp)
    assert variants.ACTIVE == before
