"""Public PyTorch ProGANs driven step by step for :mod:`progan_torch.bench_reference`.

Nothing here is imported by training code, and no peer code enters this repository: each peer
is loaded from wherever the user installed or cloned it. Each class times the peer's own
training step at a fixed width (the compared configuration: the same channel count at
every resolution) and states the compatibility shims it needs under torch 2.x in ``SHIMS``;
a shim never changes what the step computes.

- ``pro-gan-pth`` (akanimax, PyPI 3.4): ``ProGAN.optimize_discriminator``, its EMA update,
  ``ProGAN.optimize_generator`` (one D and one G step per minibatch).
- ``gan-zoo`` (facebookresearch/pytorch_GAN_zoo, ``PGAN``): ``ProgressiveGAN.optimizeParameters``
  (D step with WGAN-GP and the epsilon drift term, G step, EMA of G), with the repository's
  PGAN defaults: minibatch-stddev on, epsilonD 0.001, lambdaGP 10, equalized learning rate.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from gancore.errors import UserError
from gancore.hardware import git_commit


def nchw(u8: np.ndarray) -> torch.Tensor:
    """uint8 NHWC -> NCHW-contiguous float in [-1, 1], as the peers' own loaders give."""
    return torch.from_numpy(u8).permute(0, 3, 1, 2).contiguous().float() / 127.5 - 1.0


class ProGanPth:
    name = "pro-gan-pth 3.4 (batch_repeats=1)"
    phases = ("stabilize", "fade")
    full_res_reals = True  # it downsamples full-resolution reals itself
    SHIMS = (
        "ConvTranspose2d._output_padding called with torch 1.10's signature: forwarded with "
        "torch 2.x's extra num_spatial_dims argument",
        "Adam betas=(0, 0.99) (an int and a float, refused by torch 2.x) given as (0.0, 0.99)",
    )

    def __init__(self, max_res: int, channels: int, latent: int, peer_dir: Path | None = None):
        # The package imports torch.utils.tensorboard, which loads TensorFlow when installed;
        # TF and torch in one process abort with an LLVM option clash here, and a torch
        # benchmark has no use for TF, so make ``import tensorflow`` fail (tensorboard then
        # uses its own stub).
        sys.modules.setdefault("tensorflow", None)
        try:
            from pro_gan_pytorch import custom_layers, gan, networks
            from pro_gan_pytorch.custom_layers import update_average
            from pro_gan_pytorch.losses import WganGP
        except ImportError as exc:  # pragma: no cover - depends on the user's environment
            raise UserError(
                f"the reference package pro-gan-pth is not importable ({exc}).\n"
                "Install it without its pinned dependencies into a separate folder and put "
                "that on PYTHONPATH:\n  pip install --no-deps --target /tmp/refpkg/site "
                "pro-gan-pth==3.4\n  PYTHONPATH=/tmp/refpkg/site python -m "
                "progan_torch.bench_reference"
            ) from exc
        base = torch.nn.ConvTranspose2d._output_padding

        def output_padding(
            self, inp, size, stride, padding, kernel, num_spatial_dims=2, dilation=None
        ):
            return base(self, inp, size, stride, padding, kernel, num_spatial_dims, dilation)

        custom_layers.EqualizedConvTranspose2d._output_padding = output_padding
        # The package sizes stages with a module-level nf(stage); the compared
        # configuration is the same width everywhere.
        networks.nf = lambda stage, **_: channels
        depth = max_res.bit_length() - 1
        g = networks.Generator(depth=depth, num_channels=3, latent_size=latent)
        d = networks.Discriminator(depth=depth, num_channels=3, latent_size=latent)
        self.model = gan.ProGAN(g, d, device=torch.device("cpu"), use_ema=True)
        self.update_average = update_average
        self.loss = WganGP()
        self.latent = latent
        self.commit = None
        self.reset()

    def prepare(self, res: int) -> None:
        """Nothing to grow: the networks are built for ``max_res``."""

    def reset(self) -> None:
        adam = dict(lr=0.001, betas=(0.0, 0.99), eps=1e-8)
        self.g_opt = torch.optim.Adam(self.model.gen.parameters(), **adam)
        self.d_opt = torch.optim.Adam(self.model.dis.parameters(), **adam)

    def step(self, reals: np.ndarray, res: int, alpha: float) -> None:
        depth = res.bit_length() - 1
        m, x = self.model, nchw(reals)
        z = torch.randn(len(x), self.latent)
        m.optimize_discriminator(self.loss, self.d_opt, z, x, depth, alpha)
        self.update_average(m.gen_shadow, m.gen, beta=m.ema_beta)
        m.optimize_generator(self.loss, self.g_opt, z, x, depth, alpha)


class GanZoo:
    name = "facebookresearch/pytorch_GAN_zoo PGAN"
    phases = ("stabilize",)  # its updateAlpha needs the GPU's DataParallel wrapper (below)
    full_res_reals = False  # optimizeParameters takes reals at the current scale
    SHIMS = (
        "ProgressiveGAN.getOptimizerD/G: Adam betas=[0, 0.99] (an int and a float, refused by "
        "torch 2.x) given as (0.0, 0.99); same parameters, learning rate and epsilon",
    )

    def __init__(self, max_res: int, channels: int, latent: int, peer_dir: Path | None = None):
        if peer_dir is None or not (Path(peer_dir) / "models" / "progressive_gan.py").is_file():
            raise UserError(
                "--peer-dir must be a checkout of facebookresearch/pytorch_GAN_zoo (git clone "
                "https://github.com/facebookresearch/pytorch_GAN_zoo /tmp/pytorch_GAN_zoo)"
            )
        # Appended, not prepended: the clone's top-level datasets.py must not shadow this
        # project's datasets package; its models package must then be the one found.
        sys.path.append(str(Path(peer_dir).resolve()))
        import torch.optim as optim
        from models.progressive_gan import ProgressiveGAN

        found = Path(sys.modules["models"].__file__).resolve()
        if Path(peer_dir).resolve() not in found.parents:
            raise UserError(f"'import models' found {found}, not the GAN zoo clone's package")

        def adam(attr: str):
            def make(self):
                params = [p for p in getattr(self, attr).parameters() if p.requires_grad]
                return optim.Adam(params, betas=(0.0, 0.99), lr=self.config.learningRate)

            return make

        ProgressiveGAN.getOptimizerD = adam("netD")
        ProgressiveGAN.getOptimizerG = adam("netG")
        self.channels = channels
        # pgan_config.py defaults except the widths and latent size of the reference setting.
        self.model = ProgressiveGAN(
            dimLatentVector=latent,
            depthScale0=channels,
            useGPU=False,
            lossMode="WGANGP",
            lambdaGP=10.0,
            epsilonD=0.001,
            miniBatchStdDev=True,
            baseLearningRate=0.001,
        )
        self.res = 4
        self.commit = git_commit(Path(peer_dir))

    def prepare(self, res: int) -> None:
        """Grow to ``res`` as its trainer does (``addScale`` per doubling). Alpha stays 0, the
        stabilising phase: its ``updateAlpha`` reaches ``avgG.module``, which exists only when
        a GPU wraps the networks in DataParallel."""
        if res < self.res:
            raise UserError("gan-zoo rows must come in increasing resolution")
        while self.res < res:
            self.model.addScale(self.channels)
            self.res *= 2
        assert self.model.getOriginalG().alpha == 0 and self.model.getOriginalD().alpha == 0

    def reset(self) -> None:
        self.model.optimizerD = self.model.getOptimizerD()
        self.model.optimizerG = self.model.getOptimizerG()

    def step(self, reals: np.ndarray, res: int, alpha: float) -> None:
        self.model.optimizeParameters(nchw(reals))


PEERS = {"pro-gan-pth": ProGanPth, "gan-zoo": GanZoo}
