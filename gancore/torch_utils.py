"""PyTorch utilities every torch trainer uses, once: device, threads, mixed precision, reals,
EMA, the skip-if-non-finite update, checkpoint files, memory.

With :mod:`gancore.tf_utils` this is one of the two ``gancore`` modules that import a
framework; only that framework's code imports it (the rest of ``gancore`` stays neutral).

Mixed-precision policy (both frameworks, ``--amp``): ``off`` (the papers' and the official
code's fp32, the default of every paper preset); ``bf16``: convolutions and matrix products of
the networks' forward and backward run in bfloat16, while the reals, the fakes handed to the
discriminator, the gradient-penalty mix, every loss, norm and reduction, the optimiser and the
EMA stay float32; ``auto``: bf16 where the device computes it natively (CUDA with bf16, or a
CPU with AVX512-BF16 / AMX), else off. fp16 is not offered: it needs loss scaling through the
penalty's double backward, and bf16 has fp32's range.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gancore.errors import UserError, file_error
from gancore.hardware import cpu_bf16_support, peak_rss_mb

AMP_MODES = ("off", "bf16", "auto")


def resolve_device(name: str, local_rank: int | None = None) -> torch.device:
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` -> a device, with a clear error otherwise."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UserError(
                f"--device {name} asked for a GPU but torch sees none; use --device cpu."
            )
        index = local_rank if local_rank is not None else 0
        if ":" in name:
            try:
                index = int(name.split(":", 1)[1])
            except ValueError:
                raise UserError(f"--device {name}: expected cuda:N with N a number.") from None
        if not 0 <= index < torch.cuda.device_count():
            raise UserError(f"--device {name}: only {torch.cuda.device_count()} GPU(s) visible.")
        return torch.device("cuda", index)
    raise UserError(f"--device must be auto, cpu, cuda or cuda:N, got {name!r}.")


def set_threads(threads: int) -> None:
    """``threads`` > 0 caps torch's intra-op threads (on a loaded CPU, fewer can be faster)."""
    if threads > 0:
        torch.set_num_threads(threads)


def amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of the policy in the module docstring, or None for fp32."""
    if mode not in AMP_MODES:
        raise UserError(f"--amp must be one of {AMP_MODES}, got {mode!r}.")
    if mode == "auto":
        native = torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_bf16_support()
        mode = "bf16" if native else "off"
    return torch.bfloat16 if mode == "bf16" else None


def autocast(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` for the policy's dtype; a no-op context for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def to_float_images(u8_nhwc: np.ndarray, device: torch.device, channels_last: bool) -> torch.Tensor:
    """uint8 NHWC -> float32 NCHW in [-1, 1] (official ``adjust_dynamic_range``)."""
    from datasets.torch_adapter import to_torch

    return to_torch(u8_nhwc, device, channels_last)


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, beta: float, buffers: bool) -> None:
    """``ema = lerp(model, ema, beta)`` on parameters (official ``setup_as_moving_average_of``).

    ``buffers``: copy the model's buffers too (BatchNorm statistics, spectral-norm vectors),
    which have no meaningful average.
    """
    torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1.0 - beta)
    if buffers:
        for b_ema, b in zip(ema.buffers(), model.buffers()):
            b_ema.copy_(b)


def gradients_and_ok(
    loss: torch.Tensor,
    params: list[torch.Tensor],
    max_abs_loss: float,
    reduce=None,
) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
    """Gradients of ``loss`` for the ``params`` that receive one, and the update decision as a
    0-dim bool tensor (no host sync): True unless the loss or any gradient is non-finite or
    the loss exceeds ``max_abs_loss`` (official ProGAN: a non-finite update is skipped).

    ``reduce``: averages gradients over processes (torchrun) before the decision, so every
    rank decides alike. Returns ``(params, grads, ok)`` with the gradient-less params left out.
    """
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    used = [(p, g) for p, g in zip(params, grads) if g is not None]
    params, grads = [p for p, _ in used], [g for _, g in used]
    if reduce is not None:
        grads = reduce(grads)
    total = torch.stack(torch._foreach_norm(grads)).sum() if grads else loss.new_zeros(())
    ok = torch.isfinite(total) & torch.isfinite(loss) & (loss.detach().abs() <= max_abs_loss)
    return params, grads, ok


def _set_grads(params: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
    for p, g in zip(params, grads):
        # The fused Adam kernels walk grad and param memory in lockstep: a grad with other
        # strides (oneDNN returns channels-last weight grads) would be applied to the wrong
        # elements. Give every grad its parameter's layout.
        p.grad = g if g.stride() == p.stride() else torch.empty_like(p).copy_(g)


def apply_if_ok(
    loss: torch.Tensor,
    params: list[torch.Tensor],
    opt: torch.optim.Optimizer,
    max_abs_loss: float,
    reduce=None,
) -> bool:
    """Gradients of ``loss``, then the update unless :func:`gradients_and_ok` says no.

    One device-to-host sync (the decision). Returns whether the update was applied.
    """
    params, grads, ok = gradients_and_ok(loss, params, max_abs_loss, reduce)
    if not bool(ok):
        return False
    _set_grads(params, grads)
    opt.step()
    for p in params:
        p.grad = None
    return True


def apply_unless_bad(
    loss: torch.Tensor,
    params: list[torch.Tensor],
    opt: TF1Adam,
    max_abs_loss: float,
    reduce=None,
) -> torch.Tensor:
    """:func:`apply_if_ok` decided on the device: the update runs with the decision as the
    fused Adam kernel's skip flag, so nothing waits for the host. Returns the decision (0-dim
    bool tensor); read it later (with the step's statistics: one sync per step) and hand it
    to ``opt.resolve``. Same result as :func:`apply_if_ok`: a skipped update changes no
    parameter, moment or step counter."""
    params, grads, ok = gradients_and_ok(loss, params, max_abs_loss, reduce)
    _set_grads(params, grads)
    opt.step(skip=~ok)
    for p in params:
        p.grad = None
    return ok


def make_adam(
    params: Iterable[torch.Tensor], lr: float, betas: tuple[float, float], eps: float
) -> torch.optim.Adam:
    """Adam with the fused kernel where the build has one (else the foreach path)."""
    params = [p for p in params if p.requires_grad]
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, betas=betas, eps=eps)


class TF1Adam(torch.optim.Optimizer):
    """Adam with the semantics of TF1's ``tf.train.AdamOptimizer`` (and Keras 3's ``Adam``).

    The official ProGAN trains with TF1's optimiser, which differs from ``torch.optim.Adam``
    in two ways this class reproduces:

    - **one step counter per optimiser** (TF1's shared ``beta1_power`` / ``beta2_power``),
      counting the updates applied, instead of one per parameter. With
      ``--no-reset-optimizer`` a block that joins after N steps therefore takes its first
      step with the bias corrections of step N + 1, as official (with beta1 0 and beta2 0.99
      about ``lr * sqrt(1 - 0.99**(N+1)) / 0.1``, 9.3 lr at N = 200, where torch's per-parameter
      counter gives lr);
    - **epsilon "hat"**: ``p -= lr_t * m / (sqrt(v) + eps)`` with
      ``lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t)``: epsilon is added to sqrt(v), not
      to the bias-corrected sqrt(v_hat) as torch does (torch's eps is TF1's
      ``eps * sqrt(1 - beta2**t)``, 10x smaller at t = 1 with beta2 0.99).

    The counter is ``param_groups[i]["step"]`` (saved in ``state_dict``); moments are the
    per-parameter ``exp_avg`` / ``exp_avg_sq``. A parameter without a gradient is left alone
    (TF1 would decay its zero moments, which changes nothing while they are zero).

    Kernels: torch's fused Adam (one pass over every parameter, 3-4x faster than a chain of
    ``torch._foreach_*`` ops on the development CPU) computes
    ``p -= lr / (1 - b1**t) * m / (sqrt(v) / sqrt(1 - b2**t) + eps')``; with
    ``eps' = eps / sqrt(1 - b2**t)`` (numerator and denominator multiplied by
    ``sqrt(1 - b2**t)``) that is TF1's update, rounded differently by an ulp or so. Every
    parameter is given the same step tensor (the shared counter). ``fused=False``, or
    parameters the kernel does not take (mixed devices or dtypes), use the ``_foreach`` form.

    ``step(skip=flag)`` (a 0-dim tensor, True/1 = skip) leaves the decision on the device;
    the host's counter advances when :meth:`resolve` is told the outcome (or, failing that,
    reads the flag at the next ``step`` / ``state_dict``).
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float,
        betas: tuple[float, float],
        eps: float,
        fused: bool = True,
    ) -> None:
        super().__init__(list(params), {"lr": lr, "betas": tuple(betas), "eps": eps, "step": 0})
        self.fused = fused
        self._pending: tuple[torch.Tensor, list[dict]] | None = None  # (skip flag, groups)
        self._step_tensors: dict[tuple, torch.Tensor] = {}

    @torch.no_grad()
    def step(self, closure=None, skip: torch.Tensor | None = None):  # type: ignore[override]
        if closure is not None:
            raise ValueError("TF1Adam does not take a closure")
        self._resolve_pending()
        applied, pending, skip_host = [], [], None
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            m, v = self._moments(params)
            grads = [p.grad for p in params]
            t = group["step"] + 1  # the counter if this update is applied
            if self.fused and _fusable(params, grads):
                self._fused(group, params, grads, m, v, t, skip)
                pending.append(group)
                continue
            if skip is not None:  # the _foreach form decides on the host (one read)
                skip_host = bool(skip) if skip_host is None else skip_host
                if skip_host:
                    continue
            self._foreach(group, params, grads, m, v, t)
            applied.append(group)
        if skip is None:
            applied += pending
        elif pending:
            self._pending = (skip, pending)
        for group in applied:
            group["step"] += 1
        return None

    def resolve(self, applied: bool) -> None:
        """The outcome of the last ``step(skip=...)``: advance the counter if it was applied."""
        if self._pending is not None:
            for group in self._pending[1] if applied else ():
                group["step"] += 1
            self._pending = None

    def _resolve_pending(self) -> None:
        if self._pending is not None:
            self.resolve(not bool(self._pending[0]))  # a host read of the flag

    def state_dict(self):  # type: ignore[override]
        self._resolve_pending()
        return super().state_dict()

    def load_state_dict(self, state_dict) -> None:  # type: ignore[override]
        self._pending = None
        super().load_state_dict(state_dict)

    def _moments(self, params: list[torch.Tensor]) -> tuple[list, list]:
        m, v = [], []
        for p in params:
            state = self.state[p]
            if not state:
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            m.append(state["exp_avg"])
            v.append(state["exp_avg_sq"])
        return m, v

    def _fused(self, group, params, grads, m, v, t: int, skip) -> None:
        (b1, b2), device = group["betas"], params[0].device
        key = (device, id(group))
        step = self._step_tensors.get(key)
        if step is None:  # float32, as torch's own step tensors
            step = self._step_tensors[key] = torch.zeros((), device=device)
        step.fill_(float(t))
        found_inf = None if skip is None else skip.to(device=device, dtype=torch.float32)
        torch._fused_adam_(
            *([_dense_view(x) for x in ts] for ts in (params, grads, m, v)),
            [],
            [step] * len(params),  # one counter shared by every parameter (TF1)
            lr=group["lr"],
            beta1=b1,
            beta2=b2,
            weight_decay=0.0,
            eps=group["eps"] / math.sqrt(1.0 - b2**t),
            amsgrad=False,
            maximize=False,
            found_inf=found_inf,
        )

    @staticmethod
    def _foreach(group, params, grads, m, v, t: int) -> None:
        b1, b2 = group["betas"]
        torch._foreach_lerp_(m, grads, 1.0 - b1)  # m = b1 m + (1 - b1) g
        torch._foreach_mul_(v, b2)
        torch._foreach_addcmul_(v, grads, grads, value=1.0 - b2)  # v = b2 v + (1 - b2) g^2
        denom = torch._foreach_sqrt(v)
        torch._foreach_add_(denom, group["eps"])
        lr_t = group["lr"] * math.sqrt(1.0 - b2**t) / (1.0 - b1**t)
        torch._foreach_addcdiv_(params, m, denom, value=-lr_t)


def _dense_view(t: torch.Tensor) -> torch.Tensor:
    """A channels-last 4-d tensor as the contiguous ``(N, H, W, C)`` view of its memory, any
    other tensor as it is. The fused kernel is elementwise over the parameter, its gradient and
    both moments, laid out alike (:func:`_fusable`, ``zeros_like``), so the order it walks them
    in does not matter; given a non-contiguous tensor it works on a contiguous copy instead
    (torch 2.14 on the CPU: one copy of each channels-last weight per step). Same update, bit
    for bit (tests/progan_torch/test_adam.py). A scratch micro-benchmark of six 128x128x3x3
    weights: 0.55 -> 0.38 ms a step; in a whole ProGAN training step the change is within the
    noise (in-process alternating windows: 0.996x at 8x8, 1.007x at 32x32)."""
    return t.permute(0, 2, 3, 1) if is_channels_last(t) else t


def is_channels_last(t: torch.Tensor) -> bool:
    """Whether a 4-d tensor is laid out channels-last (and not also plain contiguous, as a
    tensor with one channel or a 1x1 map is)."""
    return (
        t.dim() == 4
        and t.is_contiguous(memory_format=torch.channels_last)
        and not t.is_contiguous()
    )


def _fusable(params: list[torch.Tensor], grads: list[torch.Tensor]) -> bool:
    """One device and floating dtype, dense, grads laid out as their parameters (the fused
    kernel walks both in lockstep)."""
    p0 = params[0]
    if p0.device.type not in ("cpu", "cuda") or not p0.is_floating_point():
        return False
    return all(
        p.device == p0.device
        and p.dtype == p0.dtype
        and g.dtype == p.dtype
        and not g.is_sparse
        and g.stride() == p.stride()
        for p, g in zip(params, grads)
    )


@torch.no_grad()
def all_finite(
    modules: Iterable[torch.nn.Module], optimizers: Iterable[torch.optim.Optimizer]
) -> bool:
    """Every parameter, buffer and optimiser slot finite (one sync)."""
    tensors = [t for m in modules for t in (*m.parameters(), *m.buffers()) if t.is_floating_point()]
    for opt in optimizers:
        for state in opt.state.values():
            tensors += [v for v in state.values() if torch.is_tensor(v) and v.is_floating_point()]
    if not tensors:
        return True
    return bool(
        torch.isfinite(torch.stack([t.float().abs().max() for t in tensors if t.numel()])).all()
    )


def peak_mem_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return peak_rss_mb()


def save_file(obj: dict[str, Any], path: Path) -> None:
    """``torch.save`` through a temporary file renamed into place."""
    from gancore.io import atomic_path

    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(obj, tmp)


def load_file(
    path: str | Path, map_location: Any = "cpu", what: str = "checkpoint"
) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` (never unpickles code) with one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist.")
    if path.stat().st_size == 0:
        raise UserError(f"{what} {path} is empty (0 bytes): a write was interrupted.")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt, truncated or foreign: say which file, not a traceback
        raise file_error(path, exc, what) from exc
    if not isinstance(obj, dict):
        raise UserError(
            f"{what} {path} holds a {type(obj).__name__}, not a checkpoint of this project."
        )
    return obj


class FlopCounter:
    """Counts floating-point operations (multiply-add = 2) of every op run inside the block,
    backward and double backward included, using torch's per-op formulas
    (``torch.utils.flop_counter``). Works on ``meta`` tensors, so a whole training step of a
    1024x1024 model is counted in a second without computing anything.

    (torch's own ``FlopCounterMode`` tracks modules with backward hooks that refuse
    ``autograd.grad`` on leaves, which every trainer here uses; this counts ops only.)
    """

    def __init__(self) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils.flop_counter import flop_registry

        counter = self

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                out = func(*args, **kwargs)
                rule = flop_registry.get(func._overloadpacket)
                if rule is not None:
                    counter.total += rule(*args, **kwargs, out_val=out)
                return out

        self.total = 0
        self._mode = _Mode()

    def __enter__(self) -> FlopCounter:
        self._mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._mode.__exit__(*exc)
