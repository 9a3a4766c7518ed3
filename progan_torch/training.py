"""One ProGAN training step and what it needs: devices, models, optimisers, data, randoms.

The loop around it (ticks, grids, checkpoints, resume) is :mod:`progan_torch.loop`.
Step order is the official ``train.py``: D step on fresh reals and latents (n_critic 1),
EMA update of G_ema, then G step on fresh latents.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from gancore.errors import UserError
from gancore.latents import RandomSource, step_randoms  # noqa: F401 (re-exported for callers)
from progan_common.config import ProGANConfig
from progan_torch.distributed import DistInfo, all_reduce_mean
from progan_torch.layers import downsample2x, lerp, upsample2x
from progan_torch.loss import d_loss, g_loss
from progan_torch.networks import Discriminator, Generator, num_levels


# ------------------------------------------------------------------------------ devices
def resolve_device(name: str, dist: DistInfo | None = None) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(
                f"--device {name} requested but CUDA is not available; use --device cpu"
            )
        if dist is not None and dist.active:
            return torch.device("cuda", dist.local_rank)
    return torch.device(name)


def amp_dtype(cfg: ProGANConfig, device: torch.device) -> torch.dtype | None:
    """bf16 autocast on CUDA by default, off on CPU (cfg.amp 'auto')."""
    mode = cfg.amp
    if mode == "auto":
        mode = "bf16" if device.type == "cuda" else "off"
    if mode == "off":
        return None
    if mode == "fp16":
        # fp16 needs dynamic loss scaling through the double backward of the penalty;
        # bf16 has fp32's range and needs none, so we support that instead.
        raise UserError("--amp fp16 is not supported by progan_torch; use --amp bf16 (or off)")
    return torch.bfloat16


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


# ------------------------------------------------------------------------------- models
@dataclass
class Models:
    G: Generator
    D: Discriminator
    G_ema: Generator | None  # None with --no-ema (samples then come from G)

    @property
    def sampler(self) -> Generator:
        return self.G_ema if self.G_ema is not None else self.G

    def set_stage(self, level: int, alpha: float) -> None:
        for m in (self.G, self.D, self.G_ema):
            if m is not None:
                m.set_stage(level, alpha)


def build_models(
    cfg: ProGANConfig,
    img_channels: int,
    num_classes: int,
    device: torch.device,
    channels_last: bool = True,
) -> Models:
    """Networks for ``cfg.max_res`` seeded from ``cfg.seed`` (identical on every rank)."""
    torch.manual_seed(cfg.seed)
    G = Generator(cfg, img_channels, num_classes)
    D = Discriminator(cfg, img_channels, num_classes)
    G_ema = copy.deepcopy(G).requires_grad_(False).eval() if cfg.ema else None
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for m in (G, D, G_ema):
        if m is not None:
            m.to(device=device, memory_format=fmt)
    return Models(G, D, G_ema)


def make_optimizer(module: nn.Module, cfg: ProGANConfig, lr: float) -> torch.optim.Adam:
    """Adam(lr, betas (0, 0.99), eps 1e-8) as the paper; fused kernel where available."""
    params = [p for p in module.parameters() if p.requires_grad]
    kw = dict(lr=lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.adam_eps)
    try:
        return torch.optim.Adam(params, fused=True, **kw)
    except (RuntimeError, TypeError):  # old torch / unsupported device: the foreach path
        return torch.optim.Adam(params, **kw)


# -------------------------------------------------------------------------------- data
class DatasetSource:
    """Reals from a prepared data set through the position-indexed :class:`ImageStream`."""

    def __init__(self, ds, seed: int, mirror: bool, conditional: bool = False) -> None:
        from datasets.stream import ImageStream

        self.stream = ImageStream(ds, seed=seed, mirror=mirror)
        self.channels = ds.channels
        self.conditional = conditional
        self.num_classes = 0
        if conditional:
            if ds.labels is None:
                raise UserError(f"--conditional needs labels, but data set {ds.name!r} has none")
            self.num_classes = int(ds.labels.max()) + 1

    def batch(self, res: int, start: int, count: int) -> tuple[np.ndarray, np.ndarray | None]:
        images, labels = self.stream.batch(res, start, count)
        return images, (labels if self.conditional else None)


def to_device_reals(u8_nhwc: np.ndarray, device: torch.device, channels_last: bool) -> torch.Tensor:
    from datasets.torch_adapter import to_torch

    return to_torch(u8_nhwc, device, channels_last)


def fade_reals(reals: torch.Tensor, level: int, alpha: float | torch.Tensor) -> torch.Tensor:
    """Official process_reals "FadeLOD": lerp(upsample(avgpool(x)), x, alpha) during a fade."""
    if level == 0 or not isinstance(alpha, torch.Tensor) and alpha >= 1.0:
        return reals
    return lerp(upsample2x(downsample2x(reals)), reals, alpha)


# -------------------------------------------------------------------------------- step
class StepRunner:
    """Optimisers plus the per-minibatch update; holds no schedule or run-directory logic."""

    def __init__(
        self,
        models: Models,
        cfg: ProGANConfig,
        device: torch.device,
        dist: DistInfo | None = None,
        channels_last: bool = True,
    ) -> None:
        self.m, self.cfg, self.device = models, cfg, device
        self.dist = dist or DistInfo()
        self.channels_last = channels_last
        self.amp = amp_dtype(cfg, device)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # few distinct shapes per level: tune once
        self.g_params = [p for p in models.G.parameters() if p.requires_grad]
        self.d_params = [p for p in models.D.parameters() if p.requires_grad]
        self.ema_pairs = None
        if models.G_ema is not None:
            self.ema_pairs = (list(models.G_ema.parameters()), list(models.G.parameters()))
        self.G_fwd, self.D_fwd = models.G, models.D
        if cfg.compile:
            import torch._dynamo as dynamo

            # one graph per (level, fading) and network: raise the recompile limit accordingly
            dynamo.config.cache_size_limit = max(
                dynamo.config.cache_size_limit, 4 * num_levels(cfg.max_res) + 8
            )
            self.G_fwd, self.D_fwd = torch.compile(models.G), torch.compile(models.D)
            # the gradient penalty's double backward runs the eager D (AOTAutograd has none)
        self.opt_g = self.opt_d = None
        self.reset_optimizers(cfg.lr)

    def reset_optimizers(self, lr: float) -> None:
        """Fresh Adam state (official reset_opt_for_new_lod, at every fade start and end)."""
        self.opt_g = make_optimizer(self.m.G, self.cfg, lr)
        self.opt_d = make_optimizer(self.m.D, self.cfg, lr)

    def set_lr(self, lr: float) -> None:
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = lr

    def _apply(self, loss: torch.Tensor, params: list[torch.Tensor], opt) -> bool:
        """Gradients (averaged over ranks), then the update unless any is non-finite."""
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        used = [(p, g) for p, g in zip(params, grads) if g is not None]
        reduced = all_reduce_mean([g for _, g in used], self.dist)
        # One sync per step: the official optimiser likewise skips non-finite updates.
        # Decided on the reduced gradients so every rank takes the same decision.
        finite = bool(torch.isfinite(torch.stack(torch._foreach_norm(reduced)).sum()))
        if not finite:
            return False
        for (p, _), g in zip(used, reduced):
            # The fused Adam kernel (torch 2.15 CPU) walks grad and param memory in lockstep:
            # a grad with other strides (oneDNN returns channels-last weight grads) gets
            # applied to the wrong elements. Give every grad its parameter's layout.
            p.grad = g if g.stride() == p.stride() else torch.empty_like(p).copy_(g)
        opt.step()
        for p, _ in used:
            p.grad = None
        return True

    def _local(self, x: np.ndarray | torch.Tensor | None, batch: int):
        if x is None:
            return None
        return x[self.dist.local_slice(batch)] if self.dist.active else x

    def train_step(
        self,
        reals: torch.Tensor,
        labels: torch.Tensor | None,
        z_d: np.ndarray,
        z_g: np.ndarray,
        u: np.ndarray,
        level: int,
        alpha: float,
        ema_beta: float | None = None,
    ) -> dict[str, float]:
        """One D step, EMA update and G step.

        ``reals``: this rank's raw reals at resolution 4 * 2**level, float NCHW in [-1, 1]
        (faded here). ``z_d``, ``z_g``, ``u``: the GLOBAL batch's randoms (this rank takes its
        rows). ``ema_beta``: this step's EMA decay (``cfg.ema_beta_at``; default
        ``cfg.ema_beta``). Returns the losses and which updates were skipped as non-finite.
        """
        dev, cfg = self.device, self.cfg
        n = z_d.shape[0]
        a = alpha if alpha >= 1.0 or level == 0 else torch.tensor(alpha, device=dev)
        z_d = torch.from_numpy(self._local(z_d, n)).to(dev, non_blocking=True)
        z_g = torch.from_numpy(self._local(z_g, n)).to(dev, non_blocking=True)
        u = torch.from_numpy(self._local(u, n)).to(dev, non_blocking=True)
        reals = fade_reals(reals, level, a)

        # --- D step (fakes from the current G, no gradient to G)
        with torch.no_grad(), autocast(dev, self.amp):
            fakes = self.G_fwd(z_d, labels, level, a)
        with autocast(dev, self.amp):
            fakes = fakes.float()
            if self.channels_last:
                fakes = fakes.contiguous(memory_format=torch.channels_last)
            loss_d, stats = d_loss(self.D_fwd, reals, fakes, labels, u, cfg, level, a, self.m.D)
        d_ok = self._apply(loss_d, self.d_params, self.opt_d)

        # --- EMA of G (official Gs update runs with the D step, before the G step)
        if self.ema_pairs is not None:
            with torch.no_grad():
                beta = cfg.ema_beta if ema_beta is None else ema_beta
                torch._foreach_lerp_(self.ema_pairs[0], self.ema_pairs[1], 1.0 - beta)

        # --- G step
        with autocast(dev, self.amp):
            loss_g = g_loss(self.D_fwd, self.G_fwd(z_g, labels, level, a), labels, cfg, level, a)
        g_ok = self._apply(loss_g, self.g_params, self.opt_g)

        names = ["loss_d", "loss_g", *stats]
        values = torch.stack([loss_d.detach().float(), loss_g.detach().float(), *stats.values()])
        out = dict(zip(names, values.tolist()))  # one device->host copy for all statistics
        out.update(d_skipped=float(not d_ok), g_skipped=float(not g_ok))
        return out
