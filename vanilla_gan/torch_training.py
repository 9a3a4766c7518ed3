"""PyTorch numerics for DCGAN / SN-DCGAN: losses, the training step, checkpoints.

Implements :class:`gancore.train.protocol.Trainer`; the loop is :mod:`gancore.train.loop`.
One step is ``n_dis`` D updates then one G update (Miyato et al. 2018, Algorithm 1 with
n_dis = 1 for DCGAN), the fake batch of the last D update reused for the G update as
pytorch/examples ``dcgan`` does. Speed choices: channels_last tensors, D's parameters frozen
during the G backward (no weight gradients for D), the fused Adam kernel, two host syncs per
step (the skip-if-non-finite decision of each update; pytorch/examples syncs for its logging).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gancore import torch_utils as tu
from gancore.errors import UserError
from gancore.grid import nchw_to_nhwc, to_uint8
from gancore.hardware import tune_malloc
from gancore.train.protocol import Randoms, SingleProcess, StepStats
from gancore.train.schema import CheckpointMeta
from gancore.train.stages import Stage
from vanilla_gan import torch_nets
from vanilla_gan.config import TrainConfig

FORMAT = "vanilla_gan.torch/2"


def d_loss(cfg: TrainConfig, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """D's loss on real / fake logits.

    non-saturating: BCE with targets 1 - s (one-sided label smoothing, Salimans et al. 2016)
    and 0; hinge (Miyato et al. 2018 eq. 16 / Lim & Ye 2017):
    E[relu(1 - D(x))] + E[relu(1 + D(G(z)))].
    """
    if cfg.loss == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    t = 1.0 - cfg.label_smoothing
    real_term = (
        t * F.softplus(-real) + (1.0 - t) * F.softplus(real) if t < 1.0 else F.softplus(-real)
    )
    return real_term.mean() + F.softplus(fake).mean()


def g_loss(cfg: TrainConfig, fake: torch.Tensor) -> torch.Tensor:
    """non-saturating: -log sigmoid(D(G(z))) (Goodfellow et al. 2014); hinge: -E[D(G(z))]."""
    if cfg.loss == "hinge":
        return -fake.mean()
    return F.softplus(-fake).mean()


class TorchTrainer(SingleProcess):
    checkpoint_ext = ".pt"

    def __init__(self, cfg: TrainConfig, channels: int) -> None:
        self.cfg, self.channels = cfg, channels
        self.device = tu.resolve_device(cfg.device)
        tu.set_threads(cfg.threads)
        tune_malloc(cfg.malloc)
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True)
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        torch.manual_seed(cfg.seed)
        self.G, self.D = torch_nets.build_models(cfg, channels)
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.G.to(self.device, memory_format=fmt)
        self.D.to(self.device, memory_format=fmt)
        self.G_ema = (
            copy.deepcopy(self.G).eval().requires_grad_(False) if cfg.ema_beta > 0 else None
        )
        self.amp = tu.amp_dtype(cfg.amp, self.device)
        self.nimg = 0
        self._buffers = [*self.G.buffers(), *self.D.buffers()]
        self.reset_optimizers()

    def reset_optimizers(self) -> None:
        betas, eps = (self.cfg.beta1, self.cfg.beta2), self.cfg.adam_eps
        self.opt_g = tu.make_adam(self.G.parameters(), self.cfg.lr_g, betas, eps)
        self.opt_d = tu.make_adam(self.D.parameters(), self.cfg.lr_d, betas, eps)

    def set_stage(self, stage: Stage) -> None:
        """One stage for the whole run: only the image position (for the EMA ramp-up)."""
        self.nimg = stage.nimg

    # -- one step: n_dis D updates, then one G update
    def step(self, reals: np.ndarray, labels: np.ndarray | None, randoms: Randoms) -> StepStats:
        cfg, G, D, dev = self.cfg, self.G, self.D, self.device
        x = tu.to_float_images(reals, dev, cfg.channels_last)
        x = x.reshape(cfg.n_dis, cfg.batch, *x.shape[1:])
        z = torch.from_numpy(randoms["z"]).to(dev, non_blocking=True)
        D.requires_grad_(True)
        d_params = [p for p in D.parameters() if p.requires_grad]
        # A skipped step must leave no trace: BatchNorm's running statistics are updated by
        # the forward passes themselves, so keep a copy to restore (a few KB).
        saved = [b.detach().clone() for b in self._buffers]
        skipped, fake = False, None
        for i in range(cfg.n_dis):
            last = i == cfg.n_dis - 1
            with torch.set_grad_enabled(last), tu.autocast(dev, self.amp):
                fake = G(z[i])
            with tu.autocast(dev, self.amp):
                out_r, out_f = D(x[i]).float(), D(fake.detach()).float()
            loss_d = d_loss(cfg, out_r, out_f)
            skipped |= not tu.apply_if_ok(loss_d, d_params, self.opt_d, cfg.max_abs_loss)
        D.requires_grad_(False)  # no weight gradients for D in the G step
        with tu.autocast(dev, self.amp):
            out_g = D(fake).float()
        loss_g = g_loss(cfg, out_g)
        g_params = [p for p in G.parameters() if p.requires_grad]
        g_ok = tu.apply_if_ok(loss_g, g_params, self.opt_g, cfg.max_abs_loss)
        if skipped or not g_ok:
            with torch.no_grad():
                torch._foreach_copy_(self._buffers, saved)
        elif self.G_ema is not None:
            tu.ema_update(self.G_ema, G, cfg.ema_beta_at(self.nimg), buffers=True)
        values = torch.stack(
            [loss_d.detach(), loss_g.detach(), out_r.mean().detach(), out_f.mean().detach()]
        )
        loss_d_, loss_g_, d_real, d_fake = values.tolist()
        return {
            "loss_d": loss_d_,
            "loss_g": loss_g_,
            "d_real": d_real,
            "d_fake": d_fake,
            "gp": None,
            "grad_norm": None,
            "skipped": float(skipped or not g_ok),
        }

    @torch.no_grad()
    def generate(self, latents: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        G = self.G_ema if self.G_ema is not None else self.G
        return generate(G, latents, self.device, bn_mode=self.cfg.sample_bn)

    def state_is_finite(self) -> bool:
        nets = [m for m in (self.G, self.D, self.G_ema) if m is not None]
        return tu.all_finite(nets, (self.opt_g, self.opt_d))

    def peak_mem_mb(self) -> float:
        return tu.peak_mem_mb(self.device)

    # -- checkpoints
    def save(self, path: Path, meta: CheckpointMeta) -> None:
        tu.save_file(
            {
                "format": FORMAT,
                "G": self.G.state_dict(),
                "D": self.D.state_dict(),
                "G_ema": self.G_ema.state_dict() if self.G_ema is not None else None,
                "opt_g": self.opt_g.state_dict(),
                "opt_d": self.opt_d.state_dict(),
                "meta": vars(meta).copy(),
            },
            path,
        )

    def load(self, path: Path) -> CheckpointMeta:
        obj = load_checkpoint(path, self.device)
        try:
            self.G.load_state_dict(obj["G"])
            self.D.load_state_dict(obj["D"])
            if self.G_ema is not None:
                self.G_ema.load_state_dict(obj["G_ema"])
            self.opt_g.load_state_dict(obj["opt_g"])
            self.opt_d.load_state_dict(obj["opt_d"])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise UserError(
                f"checkpoint {path} does not match this run's networks ({type(exc).__name__}); "
                "was it written by another configuration?"
            ) from exc
        return CheckpointMeta.from_dict(obj["meta"])


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> dict:
    obj = tu.load_file(path, device)
    if obj.get("format") != FORMAT:
        raise UserError(
            f"{path} is not a vanilla_gan PyTorch checkpoint (format {obj.get('format')!r})."
        )
    return obj


@torch.no_grad()
def generate(
    G: torch.nn.Module,
    z: np.ndarray,
    device: torch.device,
    batch: int = 256,
    bn_mode: str = "running",
) -> np.ndarray:
    """uint8 NHWC images from latents.

    ``bn_mode`` "running": eval mode, BatchNorm uses its running statistics; "batch": the
    normalisation statistics of each sampling batch (pytorch/examples and Radford et al.'s
    code sample in training mode), with the running statistics left untouched.
    """
    was_training = G.training
    G.eval()
    saved = None
    if bn_mode == "batch":
        saved = copy.deepcopy(
            {k: v for k, v in G.state_dict().items() if "running" in k or "num_batches" in k}
        )
        for m in G.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.train()
    out = []
    for i in range(0, len(z), batch):
        x = G(torch.from_numpy(np.ascontiguousarray(z[i : i + batch])).to(device))
        out.append(to_uint8(nchw_to_nhwc(x.float().cpu().numpy())))
    if saved is not None:
        G.load_state_dict(saved, strict=False)
    G.train(was_training)
    return np.concatenate(out)


def load_for_inference(
    run_dir: str | Path, checkpoint: str | Path | None = None, device: str = "auto"
):
    """(cfg, G for sampling, D, channels, checkpoint path) from a torch run directory."""
    from gancore.train.session import checkpoint_for_sampling
    from vanilla_gan.rundata import read_run

    cfg, run, channels = read_run(run_dir, "torch")
    ckpt = checkpoint_for_sampling(str(run_dir), checkpoint, ("vanilla_gan.train",))
    dev = tu.resolve_device(device)
    obj = load_checkpoint(ckpt, dev)
    G, D = torch_nets.build_models(cfg, channels)
    G.load_state_dict(obj["G_ema"] if obj.get("G_ema") is not None else obj["G"])
    D.load_state_dict(obj["D"])
    return cfg, G.to(dev).eval(), D.to(dev).eval(), channels, ckpt
