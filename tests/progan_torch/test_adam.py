"""``gancore.torch_utils.TF1Adam`` is the official optimiser (TF1's AdamOptimizer, transcribed in
``tests/progan_common/official_adam.py``): one step counter per optimiser, epsilon added to
sqrt(v), a parameter joining late takes the bias corrections of the optimiser's step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gancore.torch_utils import TF1Adam
from tests.progan_common.official_adam import TF1Adam as RefAdam
from tests.progan_common.official_adam import first_move_in_lr

LR, B1, B2, EPS = 1e-3, 0.0, 0.99, 1e-8
JOIN = 30  # the second parameter gets its first gradient at this step


def _grads(step: int, rng) -> dict[str, np.ndarray | None]:
    return {
        "a": rng.standard_normal((3, 4)) * 10.0 ** rng.uniform(-6, 0, (3, 4)),
        "b": rng.standard_normal(5) if step >= JOIN else None,
    }


@pytest.mark.parametrize("betas", [(0.0, 0.99), (0.5, 0.999)])
def test_matches_the_tf1_transcription_with_a_late_parameter(betas):
    rng = np.random.default_rng(0)
    init = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
    ref = {k: v.copy() for k, v in init.items()}
    params = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in init.items()}  # float64
    opt, official = TF1Adam(params.values(), LR, betas, EPS), RefAdam(LR, *betas, EPS)
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
