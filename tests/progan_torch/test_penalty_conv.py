"""The convolutions with an explicit input gradient (``progan_torch.layers.conv2d`` inside
``explicit_input_gradients``, used by the gradient penalty): the same function and the same
first and second derivatives as ``F.conv2d``, and only the gradients a pass asks for."""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from progan_torch.layers import conv2d, explicit_input_gradients
from progan_torch.loss import gradient_penalty
from progan_torch.networks import Discriminator

CASES = [  # (C_in, C_out, k, stride, padding, H, W, bias)
    (3, 4, 3, 1, 1, 5, 6, True),
    (2, 3, 1, 1, 0, 4, 4, True),
    (3, 2, 4, 2, 1, 8, 8, True),  # the fused down-conv
    (2, 2, 4, 2, 1, 9, 7, False),  # odd sizes: rows the stride never reaches
]


@pytest.mark.parametrize("c_in,c_out,k,s,p,h,w,bias", CASES)
def test_same_values_and_first_and_second_derivatives(c_in, c_out, k, s, p, h, w, bias):
    torch.manual_seed(0)
    x = torch.randn(2, c_in, h, w, dtype=torch.float64, requires_grad=True)
    wt = torch.randn(c_out, c_in, k, k, dtype=torch.float64, requires_grad=True)
    b = torch.randn(c_out, dtype=torch.float64, requires_grad=True) if bias else None
    inputs = (x, wt) + ((b,) if bias else ())

    def ours(x, wt, b=None):
        with explicit_input_gradients():
            return conv2d(x.tanh(), wt, b, s, p)

    def ref(x, wt, b=None):
        return F.conv2d(x.tanh(), wt, b, s, p)

    torch.testing.assert_close(ours(*inputs), ref(*inputs))
    assert torch.autograd.gradcheck(ours, inputs)
    assert torch.autograd.gradgradcheck(ours, inputs)

    # the penalty's pattern: the input gradient with create_graph, then its square's gradient
    def penalty_grads(fn):
        (gx,) = torch.autograd.grad(fn(*inputs).square().sum(), x, create_graph=True)
        return torch.autograd.grad(gx.square().sum(), inputs)

    for a, r in zip(penalty_grads(ours), penalty_grads(ref)):
        torch.testing.assert_close(a, r)


class _CountConvBackward(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.masks = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.convolution_backward.default:
            self.masks.append(list(args[-1]))
        return func(*args, **(kwargs or {}))


def test_asking_for_the_input_gradient_computes_no_weight_gradient():
    x = torch.randn(2, 3, 6, 6, requires_grad=True)
    layer = torch.nn.Parameter(torch.randn(4, 3, 3, 3))
    with explicit_input_gradients():
        y = conv2d(x, layer * 0.5, None, 1, 1)
    with _CountConvBackward() as mode:
        torch.autograd.grad(y.sum(), x, create_graph=True)
    assert mode.masks == []  # the input gradient is a transposed convolution; no weight term
    with explicit_input_gradients():
        y = conv2d(x, layer * 0.5, None, 1, 1)
    with _CountConvBackward() as mode:
        torch.autograd.grad(y.sum(), layer)
    assert mode.masks == [[False, True, False]]


def test_outside_the_block_it_is_the_builtin_convolution():
    x, w = torch.randn(1, 2, 4, 4, requires_grad=True), torch.randn(3, 2, 3, 3)
    assert conv2d(x, w, None, 1, 1).grad_fn.name() == "ConvolutionBackward0"
    with explicit_input_gradients():
        assert conv2d(x, w, None, 1, 1).grad_fn.name() != "ConvolutionBackward0"
        with torch.no_grad():
            assert conv2d(x, w, None, 1, 1).grad_fn is None
    assert conv2d(x, w, None, 1, 1).grad_fn.name() == "ConvolutionBackward0"


def test_under_autocast_it_runs_in_the_autocast_dtype_like_the_builtin_one():
    """Inside the block under bf16 autocast: the explicit path, bf16 in and out, the same
    values as ``F.conv2d`` under autocast (it casts the same way), float32 gradients for
    float32 leaves."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 6, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, requires_grad=True)
    b = torch.randn(4, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref = F.conv2d(x, w, b, 1, 1)
        with explicit_input_gradients():
            got = conv2d(x, w, b, 1, 1)
    assert got.dtype == ref.dtype == torch.bfloat16
    assert "ConvolutionBackward" not in got.grad_fn.name()
    torch.testing.assert_close(got, ref, rtol=0, atol=0)
    grads = torch.autograd.grad(got.float().square().sum(), (x, w, b))
    refs = torch.autograd.grad(ref.float().square().sum(), (x, w, b))
    for g, r in zip(grads, refs):
        assert g.dtype == torch.float32
        torch.testing.assert_close(g, r, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("channels_last", [False, True])
def test_a_whole_discriminator_penalty_is_unchanged(tiny_cfg, channels_last, monkeypatch):
    """D's parameter gradients of the penalty, explicit vs built-in, at a fused level."""
    import progan_torch.loss as loss_module

    cfg = tiny_cfg()
    torch.manual_seed(1)
    D = Discriminator(cfg, 3, 0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    D.to(memory_format=fmt)
    level = D.levels - 1
    mixed = torch.randn(8, 3, 4 * 2**level, 4 * 2**level).contiguous(memory_format=fmt)
    params = [p for p in D.parameters() if p.requires_grad]

    def grads():
        gp, _ = gradient_penalty(lambda x: D(x, level, False, 1.0), mixed, 1.0, 10.0)
        return torch.autograd.grad(gp.mean(), params, allow_unused=True)

    with _CountConvBackward() as mode:
        ours = grads()
    explicit_masks = list(mode.masks)
    monkeypatch.setattr(loss_module, "explicit_input_gradients", contextlib.nullcontext)
    with _CountConvBackward() as mode:
        builtin = grads()
    # the explicit path really ran: its weight gradients are asked for alone
    assert [False, True, True] in explicit_masks and explicit_masks != mode.masks
    assert sum(g is not None for g in ours) >= 8  # every layer of the level's path
    for a, b in zip(ours, builtin):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_a_whole_discriminator_penalty_under_bf16_is_the_float32_one_rounded(tiny_cfg):
    """Under bf16 autocast the penalty runs in bf16 through the explicit path (the trainer's
    --amp bf16): D's parameter gradients within bf16 rounding of the float32 ones, the whole
    gradient and every layer's. (Through torch's own double backward they are not, on CPUs
    whose oneDNN uses AMX: tests/progan_torch/test_amp.py.)"""
    cfg = tiny_cfg(fmap_base=128, fmap_max=32)
    torch.manual_seed(2)
    D = Discriminator(cfg, 3, 0)
    level = D.levels - 1
    mixed = torch.randn(8, 3, 4 * 2**level, 4 * 2**level)
    params = [p for p in D.parameters() if p.requires_grad]

    def grads(bf16: bool):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            gp, _ = gradient_penalty(lambda x: D(x, level, False, 1.0), mixed, 1.0, 10.0)
        return torch.autograd.grad(gp.mean(), params, allow_unused=True)

    ref, got = grads(False), grads(True)
    pairs = [(a, b) for a, b in zip(got, ref) if b is not None]
    assert len(pairs) >= 8 and all(a is not None and a.dtype == torch.float32 for a, _ in pairs)
    flat_a, flat_b = (
        torch.cat([a.flatten() for a, _ in pairs]),
        torch.cat([b.flatten() for _, b in pairs]),
    )
    assert ((flat_a - flat_b).norm() / flat_b.norm()).item() < 0.05
    for a, b in pairs:
        if b.norm() > 1e-3 * flat_b.norm():
            assert ((a - b).norm() / b.norm()).item() < 0.1
