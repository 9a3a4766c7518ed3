"""The ProGAN PyTorch trainer: networks, optimisers, EMA and one training step (numerics only).

Implements :class:`gancore.train.protocol.Trainer`; the loop around it is
:mod:`gancore.train.loop`. Step order is the official ``train.py``: D step on fresh reals and
latents (n_critic 1), EMA update of G_ema from the current G, then G step on fresh latents.
The stage (level, fade flag, alpha, learning rate, images shown) is set by the loop before
every step; nothing about it is stored in a checkpoint.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from gancore import torch_utils as tu
from gancore.config import config_to_dict
from gancore.errors import UserError
from gancore.hardware import tune_malloc
from gancore.train.protocol import Randoms, StepStats
from gancore.train.schema import CheckpointMeta
from gancore.train.stages import Stage
from progan_common.config import ProGANConfig
from progan_torch.checkpoint import FORMAT, load_checkpoint
from progan_torch.distributed import DistInfo, all_reduce_mean, barrier
from progan_torch.layers import downsample2x, lerp, upsample2x
from progan_torch.loss import d_loss, g_loss
from progan_torch.networks import Discriminator, Generator, num_levels

STAT_NAMES = ("loss_d", "loss_g", "d_real", "d_fake", "gp", "grad_norm")


@dataclass
class Models:
    G: Generator
    D: Discriminator
    G_ema: Generator | None  # None with --no-ema (samples then come from G)

    @property
    def sampler(self) -> Generator:
        return self.G_ema if self.G_ema is not None else self.G

    def all(self) -> list[torch.nn.Module]:
        return [m for m in (self.G, self.D, self.G_ema) if m is not None]


def build_models(
    cfg: ProGANConfig,
    img_channels: int,
    num_classes: int,
    device: torch.device,
    channels_last: bool,
    contiguous_base: bool = True,
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
    # The 4x4 level (G's first block and D's head, with their toRGB / fromRGB) stays
    # NCHW-contiguous: its dense layers read and write that order, and mixing the two layouts
    # around them (an elementwise op between them takes a slow path): all-channels-last made
    # the whole 4x4 step 1.10x slower on the development CPU; from 8x8 up channels_last wins
    # (1.06-1.12x). python -m progan_common.bench_frameworks --compare
    # torch:channels-last-4x4,torch (contiguous_base=False) and torch:contiguous,torch.
    if not contiguous_base:
        return Models(G, D, G_ema)
    base = [G.blocks[0], G.torgb[0], D.blocks[0], D.fromrgb[0]]
    if G_ema is not None:
        base += [G_ema.blocks[0], G_ema.torgb[0]]
    for module in base:
        module.to(memory_format=torch.contiguous_format)
    return Models(G, D, G_ema)


def fade_reals(reals: torch.Tensor, level: int, alpha: float | torch.Tensor) -> torch.Tensor:
    """Official process_reals "FadeLOD": lerp(upsample(avgpool(x)), x, alpha) during a fade
    (float32: reals stay fp32 under the mixed-precision policy)."""
    if level == 0:
        return reals
    return lerp(upsample2x(downsample2x(reals)), reals, alpha)


@torch.no_grad()
def generate(
    G: Generator,
    latents: np.ndarray,
    labels: np.ndarray | None = None,
    level: int | None = None,
    alpha: float | None = None,
    batch: int = 64,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """uint8 NHWC images from ``G`` at ``level``/``alpha`` (default: G's own stage buffers),
    fading when alpha < 1. G runs in eval mode (a spectrally normalised G uses its stored
    power-iteration vectors and does not advance them), then goes back to its mode."""
    from gancore.grid import nchw_to_nhwc, to_uint8

    was_training = G.training
    G.eval()
    try:
        out = []
        for s in range(0, len(latents), batch):
            z = torch.from_numpy(np.ascontiguousarray(latents[s : s + batch])).to(device)
            y = None if labels is None else torch.from_numpy(labels[s : s + batch]).to(device)
            x = G(z, y, level, None, alpha).float().cpu().numpy()
            out.append(to_uint8(nchw_to_nhwc(x)))
    finally:
        G.train(was_training)
    return np.concatenate(out)


class ProGANTrainer:
    """The trainer of :mod:`gancore.train.protocol` for ProGAN in PyTorch."""

    checkpoint_ext = ".pt"

    def __init__(
        self,
        cfg: ProGANConfig,
        img_channels: int,
        num_classes: int = 0,
        dist: DistInfo | None = None,
        channels_last: bool = True,
        contiguous_base: bool = True,
    ) -> None:
        # channels_last (from 8x8 up, see build_models): NHWC is what cuDNN's tensor cores
        # prefer; on the 2-core development CPUs (oneDNN) it measured faster at 8..16 and
        # equal or faster at 32.
        self.cfg, self.img_channels, self.num_classes = cfg, img_channels, num_classes
        self.dist = dist or DistInfo()
        self.is_main, self.world = self.dist.is_main, self.dist.world
        self.device = tu.resolve_device(
            cfg.device, self.dist.local_rank if self.dist.active else None
        )
        tu.set_threads(cfg.threads)
        tune_malloc(cfg.malloc)
        self.channels_last, self.contiguous_base = channels_last, contiguous_base
        self.m = build_models(
            cfg, img_channels, num_classes, self.device, channels_last, contiguous_base
        )
        self.amp = tu.amp_dtype(cfg.amp, self.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # few distinct shapes per level: tune once
        self.G_fwd, self.D_fwd = self.m.G, self.m.D
        if cfg.compile:
            import torch._dynamo as dynamo

            # one graph per (level, fading) and network: raise the recompile limit accordingly
            dynamo.config.cache_size_limit = max(
                dynamo.config.cache_size_limit, 4 * num_levels(cfg.max_res) + 8
            )
            self.G_fwd, self.D_fwd = torch.compile(self.m.G), torch.compile(self.m.D)
            # the gradient penalty's double backward runs the eager D (AOTAutograd has none)
        self.level, self.fading, self.alpha = self.m.G.levels - 1, False, 1.0
        # alpha as a tensor during a fade: one compiled graph serves every alpha; allocated
        # once and refilled by set_stage (no per-step host -> device copy)
        self._alpha = torch.ones((), device=self.device)
        self.nimg, self.batch = 0, cfg.default_batch
        self.lr = cfg.lr
        # the trainable parameter lists, built once (the step would rebuild them every time)
        self._d_params = [p for p in self.m.D.parameters() if p.requires_grad]
        self._g_params = [p for p in self.m.G.parameters() if p.requires_grad]
        self.reset_optimizers()

    # ------------------------------------------------------------------ stage
    def set_stage(self, stage: Stage) -> None:
        self.level, self.fading, self.alpha = (
            stage.level,
            stage.fading and stage.level > 0,
            stage.alpha,
        )
        self.nimg, self.batch = stage.nimg, stage.batch
        for m in self.m.all():
            m.set_stage(stage.level, stage.alpha if self.fading else 1.0)
        self._alpha.fill_(float(stage.alpha) if self.fading else 1.0)
        self.lr = stage.lr if stage.lr is not None else self.cfg.lr
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = self.lr

    def reset_optimizers(self) -> None:
        """Fresh Adam state (official reset_opt_for_new_lod, at every fade start and end).

        Adam as the official TF1 ``AdamOptimizer`` (``gancore.torch_utils.TF1Adam``: one step
        counter per optimiser, epsilon added to sqrt(v)), like progan_tf's Keras Adam."""
        betas, eps = (self.cfg.beta1, self.cfg.beta2), self.cfg.adam_eps
        self.opt_g = tu.TF1Adam(self._g_params, self.lr, betas, eps)
        self.opt_d = tu.TF1Adam(self._d_params, self.lr, betas, eps)

    def local_rows(self, batch: int) -> slice:
        return self.dist.local_slice(batch)

    # ------------------------------------------------------------------- step
    def _local(self, x: np.ndarray) -> torch.Tensor:
        rows = x[self.dist.local_slice(x.shape[0])] if self.dist.active else x
        return torch.from_numpy(np.ascontiguousarray(rows)).to(self.device, non_blocking=True)

    def step(self, reals: np.ndarray, labels: np.ndarray | None, randoms: Randoms) -> StepStats:
        """One D step, EMA update and G step from this rank's uint8 reals and the GLOBAL
        batch's randoms (``z_d``, ``z_g``, ``u``: this rank takes its rows).

        One device-to-host sync per step: both skip-if-non-finite decisions stay on the
        device (``gancore.torch_utils.apply_unless_bad``: a skipped D update leaves D as it was
        for the G step, as official) and are read with the statistics."""
        cfg, dev, m = self.cfg, self.device, self.m
        level, fading = self.level, self.fading
        a = self._alpha if fading else 1.0
        # the 4x4 level runs contiguous (build_models)
        cl = self.channels_last and (level > 0 or not self.contiguous_base)
        x = tu.to_float_images(reals, dev, cl)
        if fading:
            x = fade_reals(x, level, a)
        y = None if labels is None else torch.from_numpy(np.asarray(labels)).to(dev)
        z_d, z_g, u = (self._local(randoms[k]) for k in ("z_d", "z_g", "u"))
        reduce = (lambda g: all_reduce_mean(g, self.dist)) if self.dist.active else None

        # --- D step (fakes from the current G, no gradient to G)
        with torch.no_grad(), tu.autocast(dev, self.amp):
            fakes = self.G_fwd(z_d, y, level, fading, a)
        fakes = fakes.float()
        if cl:
            fakes = fakes.contiguous(memory_format=torch.channels_last)
        with tu.autocast(dev, self.amp):
            loss_d, stats = d_loss(self.D_fwd, x, fakes, y, u, cfg, level, fading, a, m.D)
        d_ok = tu.apply_unless_bad(loss_d, self._d_params, self.opt_d, cfg.max_abs_loss, reduce)

        # --- EMA of G (official Gs update runs with the D step, before the G step)
        if m.G_ema is not None:
            beta = cfg.ema_beta_at(self.nimg, self.batch)
            # buffers: a spectrally normalised G's power-iteration vectors (no average)
            tu.ema_update(m.G_ema, m.G, beta, buffers=cfg.spectral_norm_g)

        # --- G step
        with tu.autocast(dev, self.amp):
            fakes = self.G_fwd(z_g, y, level, fading, a)
            loss_g = g_loss(self.D_fwd, fakes, y, cfg, level, fading, a)
        g_ok = tu.apply_unless_bad(loss_g, self._g_params, self.opt_g, cfg.max_abs_loss, reduce)

        given = [k for k in STAT_NAMES[2:] if stats[k] is not None]
        values = torch.stack(
            [
                loss_d.detach().float(),
                loss_g.detach().float(),
                *(stats[k] for k in given),
                d_ok.float(),
                g_ok.float(),
            ]
        ).tolist()  # the step's one device -> host copy
        ok_g = values.pop() > 0
        ok_d = values.pop() > 0
        self.opt_d.resolve(ok_d)
        self.opt_g.resolve(ok_g)
        out: StepStats = dict.fromkeys(STAT_NAMES)  # None where there is no such term
        out.update(zip(STAT_NAMES[:2] + tuple(given), values))
        out["skipped"] = float(not (ok_d and ok_g))
        return out

    # ------------------------------------------------------------- the rest
    def generate(self, latents: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        return generate(
            self.m.sampler,
            latents,
            labels,
            self.level,
            self.alpha if self.fading else 1.0,
            16,
            self.device,
        )

    def state_is_finite(self) -> bool:
        return tu.all_finite(self.m.all(), (self.opt_g, self.opt_d))

    def peak_mem_mb(self) -> float:
        return tu.peak_mem_mb(self.device)

    def save(self, path: Path, meta: CheckpointMeta) -> None:
        tu.save_file(
            {
                "format": FORMAT,
                "G": self.m.G.state_dict(),
                "D": self.m.D.state_dict(),
                "G_ema": self.m.G_ema.state_dict() if self.m.G_ema is not None else None,
                "opt_g": self.opt_g.state_dict(),
                "opt_d": self.opt_d.state_dict(),
                "meta": {
                    **asdict(meta),
                    "img_channels": self.img_channels,
                    "num_classes": self.num_classes,
                },
                "config": config_to_dict(self.cfg),
            },
            path,
        )

    def load(self, path: Path) -> CheckpointMeta:
        ckpt = load_checkpoint(path, self.device)
        try:
            self.m.G.load_state_dict(ckpt["G"])
            self.m.D.load_state_dict(ckpt["D"])
            if self.m.G_ema is not None:
                if ckpt["G_ema"] is None:
                    raise UserError(
                        f"checkpoint {path} has no EMA generator but the config asks for one."
                    )
                self.m.G_ema.load_state_dict(ckpt["G_ema"])
            self.opt_g.load_state_dict(ckpt["opt_g"])
            self.opt_d.load_state_dict(ckpt["opt_d"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise UserError(
                f"checkpoint {path} does not match this run's networks ({type(exc).__name__}); "
                "was it written by another configuration?"
            ) from exc
        return CheckpointMeta.from_dict(ckpt["meta"])

    def agree(self, flag: bool) -> bool:
        if not self.dist.active:
            return flag
        t = torch.tensor([float(flag)], device=self.device)
        return bool(all_reduce_mean([t], self.dist)[0].item() > 0)

    def barrier(self) -> None:
        barrier(self.dist)

    def close(self) -> None:
        return None
