"""PyTorch numerics for DCGAN / SN-DCGAN: losses, one training step, checkpoints.

Speed choices (the reference is pytorch/examples ``dcgan``): channels_last tensors,
no host sync per step (losses are summed on the device and read once per tick),
``zero_grad(set_to_none=True)``, the fake batch of the last D step reused for the
G step (as pytorch/examples does), D's parameters frozen during the G backward so
no weight gradients are computed for them, cudnn.benchmark and optional bf16
autocast on CUDA.
"""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gancore.errors import UserError
from gancore.grid import nchw_to_nhwc, to_uint8
from gancore.hardware import peak_rss_mb
from gancore.io import atomic_path
from vanilla_gan import torch_nets
from vanilla_gan.config import TrainConfig

# ----------------------------------------------------------------------------- losses


def d_loss(cfg: TrainConfig, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """D's loss on real / fake logits.

    non-saturating: BCE with targets 1 - s (one-sided label smoothing, Salimans et
    al. 2016) and 0; hinge (Miyato et al. 2018 eq. 16 / Lim & Ye 2017):
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


# ---------------------------------------------------------------------------- trainer


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError(
            "--device cuda was asked for but torch sees no CUDA device; use --device cpu (or auto)."
        )
    return torch.device(name)


class TorchTrainer:
    ext = ".pt"

    def __init__(self, cfg: TrainConfig, channels: int, device: str = "auto") -> None:
        self.cfg, self.channels = cfg, channels
        self.device = resolve_device(device)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        torch.manual_seed(cfg.seed)
        self.G, self.D = torch_nets.build_models(cfg, channels)
        self.fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.G.to(self.device, memory_format=self.fmt)
        self.D.to(self.device, memory_format=self.fmt)
        self.G_ema = None
        if cfg.ema_beta > 0:
            self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        betas = (cfg.beta1, cfg.beta2)
        self.opt_g = torch.optim.Adam(self.G.parameters(), cfg.lr_g, betas=betas, eps=cfg.adam_eps)
        self.opt_d = torch.optim.Adam(self.D.parameters(), cfg.lr_d, betas=betas, eps=cfg.adam_eps)
        self._acc = torch.zeros(3, device=self.device)
        self._nan = torch.tensor(float("nan"), device=self.device)
        use_bf16 = cfg.bf16 and self.device.type == "cuda"
        self._autocast = (
            (lambda: torch.autocast("cuda", torch.bfloat16)) if use_bf16 else contextlib.nullcontext
        )
        self._tb = None
        self.tb_dir: Path | None = None  # set by the CLI when --tensorboard

    # -- one iteration: n_dis D updates, then one G update
    def _to_images(self, reals_u8: np.ndarray) -> torch.Tensor:
        # uint8 NHWC -> float NCHW view in [-1, 1]; the NHWC storage *is* channels_last.
        x = torch.from_numpy(reals_u8).to(self.device, non_blocking=True)
        x = x.permute(0, 1, 4, 2, 3).float().mul_(2.0 / 255.0).sub_(1.0)
        return x if self.cfg.channels_last else x.contiguous()

    def step(self, reals_u8: np.ndarray, z: np.ndarray, poison: bool = False) -> None:
        cfg, G, D = self.cfg, self.G, self.D
        reals = self._to_images(reals_u8)
        zs = torch.from_numpy(z).to(self.device, non_blocking=True)
        D.requires_grad_(True)
        fake = None
        for i in range(cfg.n_dis):
            last = i == cfg.n_dis - 1
            with torch.set_grad_enabled(last), self._autocast():
                fake = G(zs[i])
            with self._autocast():
                loss_d = d_loss(cfg, D(reals[i]).float(), D(fake.detach()).float())
            if poison:
                loss_d = loss_d * self._nan
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
        D.requires_grad_(False)  # no weight gradients for D in the G step
        with self._autocast():
            loss_g = g_loss(cfg, D(fake).float())
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        if self.G_ema is not None:
            self._update_ema()
        self._acc += torch.stack([loss_d.detach(), loss_g.detach(), self._acc.new_ones(())])

    @torch.no_grad()
    def _update_ema(self) -> None:
        ema_p = list(self.G_ema.parameters())
        torch._foreach_lerp_(ema_p, list(self.G.parameters()), 1.0 - self.cfg.ema_beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)  # BN running stats and SN u, v follow G

    def pop_losses(self) -> tuple[float, float]:
        d, g, n = self._acc.tolist()
        self._acc.zero_()
        n = max(n, 1.0)
        return d / n, g / n

    @torch.no_grad()
    def generate(self, z: np.ndarray, batch: int = 256) -> np.ndarray:
        G = self.G_ema if self.G_ema is not None else self.G
        return generate(G, z, self.device, batch)

    def peak_mem_mb(self) -> float:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        return peak_rss_mb()

    def log_scalars(self, rec: dict[str, Any]) -> None:
        if self.tb_dir is None:
            return
        if self._tb is None:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.tb_dir))
        for k in ("loss_d", "loss_g", "img_per_s"):
            self._tb.add_scalar(k, rec[k], rec["nimg"])

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()

    # -- checkpoints
    def save(self, path: Path, meta: dict[str, Any]) -> None:
        obj = {
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": self.G_ema.state_dict() if self.G_ema is not None else None,
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "meta": meta,
        }
        with atomic_path(path, suffix=".pt") as tmp:
            torch.save(obj, tmp)

    def load(self, path: Path) -> dict[str, Any]:
        obj = load_checkpoint(path, self.device)
        self.G.load_state_dict(obj["G"])
        self.D.load_state_dict(obj["D"])
        if self.G_ema is not None:
            self.G_ema.load_state_dict(obj["G_ema"])
        self.opt_g.load_state_dict(obj["opt_g"])
        self.opt_d.load_state_dict(obj["opt_d"])
        torch.set_rng_state(obj["torch_rng"].cpu())
        return dict(obj["meta"])


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except (OSError, RuntimeError) as exc:
        raise UserError(f"cannot read checkpoint {path}: {exc}") from exc


@torch.no_grad()
def generate(
    G: torch.nn.Module, z: np.ndarray, device: torch.device, batch: int = 256
) -> np.ndarray:
    """uint8 NHWC images from latents, in eval mode (BN running statistics, SN u/v frozen)."""
    was_training = G.training
    G.eval()
    out = []
    for i in range(0, len(z), batch):
        x = G(torch.from_numpy(np.ascontiguousarray(z[i : i + batch])).to(device))
        out.append(to_uint8(nchw_to_nhwc(x.float().cpu().numpy())))
    G.train(was_training)
    return np.concatenate(out)


def load_for_inference(
    run_dir: str | Path, checkpoint: str | Path | None = None, device: str = "auto"
):
    """(cfg, G for sampling, D, channels, checkpoint path) from a torch run directory."""
    from vanilla_gan.rundata import read_run

    cfg, run, channels = read_run(run_dir, "torch")
    ckpt = Path(checkpoint) if checkpoint else run.latest_checkpoint()
    if ckpt is None:
        raise UserError(f"{run_dir} has no checkpoint yet (checkpoints/latest.json missing).")
    dev = resolve_device(device)
    obj = load_checkpoint(ckpt, dev)
    G, D = torch_nets.build_models(cfg, channels)
    G.load_state_dict(obj["G_ema"] if obj.get("G_ema") is not None else obj["G"])
    D.load_state_dict(obj["D"])
    return cfg, G.to(dev).eval(), D.to(dev).eval(), channels, ckpt
