"""vanilla_gan.torch_gemm: the CPU matrix-multiply paths compute torch's convolutions (values
and gradients), are chosen for the layers its docstring names, stay off where they must, and
leave a whole training step and the checkpoint layout as they were."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.vanilla_gan.vg_helpers import step_both
from vanilla_gan import arch, torch_gemm, torch_nets
from vanilla_gan.torch_training import TorchTrainer

CL = torch.channels_last


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-5) -> None:
    err = ((a - b).abs().max() / b.abs().max()).item()
    assert err < tol, f"relative error {err:.2e}"


def _grads(out: torch.Tensor, leaves: list[torch.Tensor], g: torch.Tensor):
    return torch.autograd.grad(out, leaves, g)


def _conv(path, cin, cout, k, s, p, bias, transposed=False):
    cls = torch_gemm.ConvTranspose2d if transposed else torch_gemm.Conv2d
    torch.manual_seed(1)
    return cls(cin, cout, k, s, p, bias=bias, path=path)


CASES = [
    # path, transposed, (cin, cout, k, s, p), input side
    ("gemm", False, (6, 10, 4, 2, 1), 8),
    ("gemm", False, (5, 7, 3, 1, 1), 6),  # the Function is general; layer_paths picks 4x4 s2
    ("gemm", True, (10, 6, 4, 2, 1), 4),
    ("gemm", True, (7, 5, 3, 2, 1), 5),
    ("dense", False, (9, 1, 4, 1, 0), 4),
    ("dense", False, (9, 3, 5, 1, 0), 5),
    ("dense", True, (12, 8, 4, 1, 0), 1),
]


@pytest.mark.parametrize("path, transposed, geom, side", CASES)
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("layout", [CL, torch.contiguous_format])
def test_paths_equal_torch_convolutions(path, transposed, geom, side, bias, layout):
    cin, cout, k, s, p = geom
    m = _conv(path, cin, cout, k, s, p, bias, transposed)
    ref = _conv(None, cin, cout, k, s, p, bias, transposed)
    ref.load_state_dict(m.state_dict())
    x = torch.randn(3, cin, side, side).contiguous(memory_format=layout).requires_grad_(True)
    y, y_ref = m(x), ref(x)
    assert y.shape == y_ref.shape
    _close(y, y_ref)
    g = torch.randn_like(y_ref)
    got = _grads(y, [x, *m.parameters()], g)
    want = _grads(y_ref, [x, *ref.parameters()], g)
    for a, b in zip(got, want):
        assert a.shape == b.shape
        _close(a, b)


@pytest.mark.parametrize("path, transposed, geom, side", [c for c in CASES if c[0] == "gemm"])
def test_gemm_outputs_and_gradients_are_channels_last(path, transposed, geom, side):
    """BatchNorm next to these layers is several times slower on strided views."""
    m = _conv(path, *geom, False, transposed)
    x = torch.randn(3, geom[0], side, side, requires_grad=True)
    y = m(x)
    (gx,) = torch.autograd.grad(y, [x], torch.randn_like(y))
    assert y.is_contiguous(memory_format=CL) and gx.is_contiguous(memory_format=CL)


def test_the_paths_are_really_taken(monkeypatch):
    """Guards the test above: with the GEMM helpers broken, a path module's output changes."""
    m = _conv("gemm", 6, 10, 4, 2, 1, False)
    x = torch.randn(2, 6, 8, 8)
    before = m(x)
    monkeypatch.setattr(torch_gemm, "_kernel_matrix", lambda w: torch.zeros_like(w).flatten(1))
    assert not torch.equal(m(x), before)


def test_only_weight_or_only_input_gradients():
    """D frozen in the G step (input gradient only), reals (weight gradient only)."""
    m = _conv("gemm", 6, 10, 4, 2, 1, False)
    ref = _conv(None, 6, 10, 4, 2, 1, False)
    x = torch.randn(2, 6, 8, 8, requires_grad=True)
    m.requires_grad_(False), ref.requires_grad_(False)
    (gx,) = torch.autograd.grad(m(x).sum(), [x])
    (gx_ref,) = torch.autograd.grad(ref(x).sum(), [x])
    _close(gx, gx_ref)
    m.requires_grad_(True), ref.requires_grad_(True)
    x = x.detach()
    (gw,) = torch.autograd.grad(m(x).sum(), [m.weight])
    (gw_ref,) = torch.autograd.grad(ref(x).sum(), [ref.weight])
    _close(gw, gw_ref)


def test_spectral_norm_gradients_flow_through_sigma():
    from torch.nn.utils.parametrizations import spectral_norm

    torch.manual_seed(0)
    m = spectral_norm(torch_gemm.Conv2d(6, 10, 4, 2, 1, path="gemm"))
    ref = spectral_norm(torch_gemm.Conv2d(6, 10, 4, 2, 1, path=None))
    ref.load_state_dict(m.state_dict())
    m.eval(), ref.eval()  # frozen u, v: both see the same W / sigma
    x = torch.randn(2, 6, 8, 8)
    _close(m(x), ref(x))
    ga = torch.autograd.grad(m(x).square().sum(), [m.parametrizations.weight.original])
    gb = torch.autograd.grad(ref(x).square().sum(), [ref.parametrizations.weight.original])
    _close(ga[0], gb[0])


@pytest.mark.parametrize("path", ["gemm", "dense"])
def test_torch_kernels_where_the_path_does_not_apply(monkeypatch, path):
    """bf16 autocast, float64 and non-CPU (here meta) tensors take the nn modules' own forward:
    the matrix-multiply helpers are never called there."""
    geom = (6, 10, 4, 2, 1) if path == "gemm" else (6, 10, 4, 1, 0)
    side = 8 if path == "gemm" else 4
    m = _conv(path, *geom, True)
    x = torch.randn(2, 6, side, side)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y_ref = F.conv2d(x, m.weight, m.bias, geom[3], geom[4])
    monkeypatch.setattr(torch_gemm, "_kernel_matrix", lambda w: pytest.fail("path taken"))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = m(x)
    assert y.dtype == torch.bfloat16 and torch.equal(y, y_ref)
    assert m.double()(x.double()).dtype == torch.float64
    with torch.device("meta"):
        mm = _conv(path, *geom, True)
        assert mm(torch.randn(2, 6, side, side)).device.type == "meta"


def test_double_backward_is_refused_not_wrong():
    m = _conv("gemm", 6, 10, 4, 2, 1, False)
    x = torch.randn(2, 6, 8, 8, requires_grad=True)
    (gx,) = torch.autograd.grad(m(x).square().sum(), [x], create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|double backward"):
        gx.sum().backward()


def _paths(model) -> list[tuple[int, int, str | None]]:
    return [(m.in_channels, m.out_channels, m.path) for m in model.modules() if hasattr(m, "path")]


def test_which_layers_take_which_path(make_config):
    """DCGAN 64x64 (width 64): G's first and D's last layer dense, the 512 <-> 256 layers at
    the 4x4 end GEMM, the rest torch's; at 32x32 the 4x4 end has 256 <-> 128: dense only."""
    with torch.device("meta"):
        G, D = torch_nets.build_models(make_config("dcgan", res=64, width=64), 3)
        G32, D32 = torch_nets.build_models(make_config("dcgan", res=32, width=64), 3)
        Goff, Doff = torch_nets.build_models(
            make_config("dcgan", res=64, width=64, cpu_gemm_convs=False), 3
        )
    assert _paths(G) == [
        (100, 512, "dense"),
        (512, 256, "gemm"),
        (256, 128, None),
        (128, 64, None),
        (64, 3, None),
    ]
    assert _paths(D) == [(3, 64, None), (64, 128, None), (128, 256, None), (256, 512, "gemm"),
                         (512, 1, "dense")]  # fmt: skip
    assert [p for *_, p in _paths(G32)] == ["dense", None, None, None]
    assert [p for *_, p in _paths(D32)] == [None, None, None, "dense"]
    assert {p for *_, p in _paths(Goff) + _paths(Doff)} == {None}


@pytest.mark.parametrize("model", ["dcgan", "sndcgan"])
def test_a_training_step_and_checkpoint_layout_are_unchanged(make_config, monkeypatch, model):
    """Every conv layer of a tiny model on the GEMM paths (threshold lowered) against torch's
    kernels: same state_dict keys, same losses and weights after two steps to float rounding."""
    monkeypatch.setattr(arch, "GEMM_MIN_CHANNELS", 1)
    on = TorchTrainer(make_config(model, res=32), 3)
    off = TorchTrainer(make_config(model, res=32, cpu_gemm_convs=False), 3)
    assert {p for *_, p in _paths(on.G) + _paths(on.D)} > {"gemm"}
    assert on.G.state_dict().keys() == off.G.state_dict().keys()
    assert on.D.state_dict().keys() == off.D.state_dict().keys()
    step_both(on, off)
    for net_on, net_off in ((on.G, off.G), (on.D, off.D)):
        for p, q in zip(net_on.state_dict().values(), net_off.state_dict().values()):
            if p.dtype.is_floating_point and q.abs().max() > 0:
                _close(p, q, 1e-4)
