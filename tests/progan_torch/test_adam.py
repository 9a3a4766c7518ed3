"""``gancore.torch_utils.TF1Adam`` is the official optimiser (TF1's AdamOptimizer, transcribed in
``tests/progan_common/official_adam.py``): one step counter per optimiser, epsilon added to
sqrt(v), a parameter joining late takes the bias corrections of the optimiser's step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gancore.torch_utils import TF1Adam, apply_if_ok, apply_unless_bad
from tests.progan_common.official_adam import TF1Adam as RefAdam
from tests.progan_common.official_adam import first_move_in_lr

LR, B1, B2, EPS = 1e-3, 0.0, 0.99, 1e-8
JOIN = 30  # the second parameter gets its first gradient at this step


def _grads(step: int, rng) -> dict[str, np.ndarray | None]:
    return {
        "a": rng.standard_normal((3, 4)) * 10.0 ** rng.uniform(-6, 0, (3, 4)),
        "b": rng.standard_normal(5) if step >= JOIN else None,
    }


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "foreach"])
@pytest.mark.parametrize("betas", [(0.0, 0.99), (0.5, 0.999)])
def test_matches_the_tf1_transcription_with_a_late_parameter(betas, fused):
    rng = np.random.default_rng(0)
    init = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
    ref = {k: v.copy() for k, v in init.items()}
    params = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in init.items()}  # float64
    opt = TF1Adam(params.values(), LR, betas, EPS, fused=fused)
    official = RefAdam(LR, *betas, EPS)
    for step in range(JOIN + 5):
        grads = _grads(step, rng)
        for k, p in params.items():
            p.grad = None if grads[k] is None else torch.tensor(grads[k])
        if step == JOIN:
            b_before = params["b"].detach().clone()
        opt.step()
        official.apply(ref, grads)
        for k in params:
            np.testing.assert_allclose(params[k].detach().numpy(), ref[k], rtol=1e-12, atol=1e-15)
        if step == JOIN:  # the late parameter's first move uses the shared counter (JOIN + 1)
            move = (b_before - params["b"].detach()).abs().numpy() / LR
            expect = first_move_in_lr(JOIN + 1, *betas, grads["b"], EPS)
            np.testing.assert_allclose(move, expect, rtol=1e-9)
    assert opt.param_groups[0]["step"] == JOIN + 5 == official.t


def test_late_parameter_moves_more_than_with_torch_adam():
    """The figure that motivated this optimiser: with beta1 0 / beta2 0.99 a parameter joining
    after 200 steps moves sqrt(1 - 0.99**201) / 0.1 = 9.31 lr (official), not 1 lr (torch)."""
    moves = {}
    for name, cls in (("tf1", TF1Adam), ("torch", torch.optim.Adam)):
        a, b = torch.nn.Parameter(torch.ones(4)), torch.nn.Parameter(torch.ones(4))
        opt = cls([a, b], lr=LR, betas=(B1, B2), eps=EPS)
        for _ in range(200):
            a.grad, b.grad = torch.ones(4), None
            opt.step()
        a.grad, b.grad = torch.ones(4), torch.full((4,), 0.5)
        opt.step()
        moves[name] = float((1.0 - b.detach()).mean()) / LR
    assert moves["tf1"] == pytest.approx(np.sqrt(1 - 0.99**201) / 0.1, rel=1e-4)
    assert moves["tf1"] == pytest.approx(9.313, abs=1e-3)
    assert moves["torch"] == pytest.approx(1.0, rel=1e-4)  # float32 weights near 1


def test_state_dict_round_trip_continues_exactly():
    rng = np.random.default_rng(1)
    w0 = torch.tensor(rng.standard_normal(6))
    grads = [torch.tensor(rng.standard_normal(6)) for _ in range(8)]

    def run(split: int | None):
        p = torch.nn.Parameter(w0.clone())
        opt = TF1Adam([p], LR, (0.5, 0.999), EPS)
        for i, g in enumerate(grads):
            if i == split:
                state = opt.state_dict()
                p = torch.nn.Parameter(p.detach().clone())
                opt = TF1Adam([p], LR, (0.5, 0.999), EPS)
                opt.load_state_dict(state)
            p.grad = g
            opt.step()
        return p.detach(), opt.param_groups[0]["step"]

    (a, ta), (b, tb) = run(None), run(4)
    assert ta == tb == 8
    assert torch.equal(a, b)


def test_fused_and_foreach_forms_agree_in_float32():
    """The fused kernel's rearranged formula (eps / sqrt(1 - b2**t)) is TF1's update to
    rounding: 50 float32 steps of both forms stay within a few ulps."""
    gen = torch.Generator().manual_seed(2)
    w0 = torch.randn(64, 9, generator=gen)
    grads = [torch.randn(64, 9, generator=gen) * 10.0 ** (i % 5 - 4) for i in range(50)]
    out = {}
    for fused in (True, False):
        p = torch.nn.Parameter(w0.clone())
        opt = TF1Adam([p], LR, (B1, B2), EPS, fused=fused)
        for g in grads:
            p.grad = g.clone()
            opt.step()
        out[fused] = p.detach()
    torch.testing.assert_close(out[True], out[False], rtol=2e-6, atol=1e-7)
    assert not torch.equal(out[True], w0)


def test_channels_last_weights_update_in_place_without_copies():
    """Channels-last conv weights (ProGAN's from 8x8 up) take the fused kernel through
    contiguous views of their memory: the same update as NCHW weights, bit for bit, their
    layout kept, and no copy of a weight, gradient or moment inside the step."""
    from torch.profiler import profile

    gen = torch.Generator().manual_seed(3)
    w0, b0 = torch.randn(8, 6, 3, 3, generator=gen), torch.randn(8, generator=gen)
    grads = [
        (torch.randn(8, 6, 3, 3, generator=gen), torch.randn(8, generator=gen)) for _ in range(5)
    ]
    out, copies = {}, {}
    for fmt in (torch.contiguous_format, torch.channels_last):
        w = torch.nn.Parameter(w0.clone(memory_format=fmt))
        b = torch.nn.Parameter(b0.clone())
        opt = TF1Adam([w, b], LR, (0.5, B2), EPS, fused=True)
        laid_out = [(gw.clone(memory_format=fmt), gb.clone()) for gw, gb in grads]
        with profile() as prof:
            for gw, gb in laid_out:
                w.grad, b.grad = gw, gb
                opt.step()
        assert w.is_contiguous(memory_format=fmt)
        assert opt.state[w]["exp_avg"].stride() == w.stride()
        copies[fmt] = sum(e.name in ("aten::clone", "aten::copy_") for e in prof.events())
        out[fmt] = (w.detach().contiguous(), opt.state[w]["exp_avg_sq"].contiguous())
    for a, c in zip(out[torch.contiguous_format], out[torch.channels_last]):
        assert torch.equal(a, c)
    assert copies[torch.channels_last] == copies[torch.contiguous_format] == 0
    assert not torch.equal(out[torch.channels_last][0], w0)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "foreach"])
def test_a_skip_decided_on_the_device_changes_nothing(fused):
    """``step(skip=flag)``: a flagged update leaves parameters, moments and the shared counter
    as they were (the official skip of a non-finite update); an unflagged one is a plain
    step; the counter follows ``resolve`` (or a read of the flag at ``state_dict``)."""
    w0 = torch.tensor([1.0, -2.0, 3.0])
    p, ref = torch.nn.Parameter(w0.clone()), torch.nn.Parameter(w0.clone())
    opt, ref_opt = TF1Adam([p], LR, (0.5, B2), EPS, fused=fused), TF1Adam([ref], LR, (0.5, B2), EPS)
    p.grad = torch.tensor([float("nan"), 1.0, float("inf")])
    opt.step(skip=torch.tensor(True))
    opt.resolve(False)
    assert torch.equal(p.detach(), w0) and opt.param_groups[0]["step"] == 0
    assert all(not torch.any(v != 0) for v in opt.state[p].values())
    for i in range(3):
        p.grad = ref.grad = torch.tensor([0.5, -1.0, 2.0]) * (i + 1)
        opt.step(skip=torch.tensor(False))
        ref_opt.step()
        if i == 0:
            opt.resolve(True)
    assert opt.state_dict()["param_groups"][0]["step"] == 3 == ref_opt.param_groups[0]["step"]
    assert torch.equal(p.detach(), ref.detach())


@pytest.mark.parametrize("case", ["finite", "nan", "too_large"])
def test_apply_unless_bad_is_apply_if_ok(case):
    """The device-side decision gives bit for bit the host-side one."""
    results = []
    for fn in (apply_if_ok, apply_unless_bad):
        torch.manual_seed(0)
        net = torch.nn.Linear(4, 3)
        opt = TF1Adam(net.parameters(), LR, (B1, B2), EPS)
        x = torch.randn(8, 4)
        if case == "nan":
            x[0, 0] = float("nan")
        loss = net(x).square().mean()
        limit = 1e-6 if case == "too_large" else 1e4
        ok = fn(loss, list(net.parameters()), opt, limit)
        ok = bool(ok)
        opt.resolve(ok)
        assert ok == (case == "finite")
        results.append(
            [*(t.detach().clone() for t in net.parameters()), opt.param_groups[0]["step"]]
        )
    for a, b in zip(*results):
        assert torch.equal(torch.as_tensor(a), torch.as_tensor(b))
