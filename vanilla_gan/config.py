"""One typed config per run, with the presets ``dcgan``, ``dcgan-paper``, ``sndcgan`` and ``quick``.

Framework-neutral (no torch / tensorflow import) so the CLI can parse, validate
and ``--dry-run`` before it imports the framework the user chose.

Sources of the defaults:

* DCGAN -- Radford, Metz & Chintala, ICLR 2016, section 4 "Details of adversarial
  training": minibatch 128 (we default to 64, the pytorch/examples value used as
  the speed reference), weights N(0, 0.02), LeakyReLU slope 0.2, Adam lr 2e-4,
  beta1 0.5; latent 100 (pytorch/examples ``nz``), ngf = ndf = 64.
* SN-DCGAN -- Miyato, Kataoka, Koyama & Yoshida, ICLR 2018, "Spectral
  Normalization for Generative Adversarial Networks": the "standard CNN" of
  Table 3 (latent 128, LeakyReLU slope 0.1, 3x3 stride-1 / 4x4 stride-2 conv
  pairs with 64-128-256-512 channels in D, dense -> 4x4x512 then three 4x4
  stride-2 deconvs with BN + ReLU and a 3x3 conv + tanh in G). Optimiser: Table 1
  setting C (Adam alpha 2e-4, beta1 0.5, beta2 0.999, n_dis 1), which is what the
  authors' own reproduction of the standard-CNN score uses
  (pfnet-research/chainer-gan-lib ``example.sh``: ``--algorithm stdgan
  --architecture sndcgan --n_dis 1 --adam_beta1 0.5 --adam_beta2 0.999``, default
  alpha 2e-4, batch 64; pointed to by the first author in
  pfnet-research/sngan_projection issue #40). The paper's best standard-CNN
  CIFAR-10 scores (Table 2) are with this CNN; the hinge loss is the variant the
  paper reports as "SN-GANs (hinge)".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gancore.config import check_loop_fields, ema_decay, loop_field

MODELS = ("dcgan", "sndcgan")
FRAMEWORKS = ("torch", "tf")
LOSSES = ("nonsaturating", "hinge")
LATENT_DISTS = ("normal", "uniform")  # gancore.latents.LATENT_DISTS, kept equal by a test


@dataclass
class TrainConfig:
    # --- what to train -----------------------------------------------------
    model: str = field(
        default="dcgan",
        metadata={
            "help": "architecture family: 'dcgan' (Radford et al. 2016) or 'sndcgan' "
            "(Miyato et al. 2018 standard CNN)",
            "choices": MODELS,
        },
    )
    framework: str = field(
        default="torch",
        metadata={
            "help": "'torch' (PyTorch) or 'tf' (TensorFlow 2 / Keras 3)",
            "choices": FRAMEWORKS,
        },
    )
    dataset: str = field(
        default="stacked-digits",
        metadata={
            "help": "data set name, as python -m datasets prepare takes it (stacked-digits is built in; "
            "cifar10, cifar10-cars, mnist, stacked-mnist, celeba, celebahq and folder:PATH read "
            "--data-root)"
        },
    )
    data_root: str | None = field(
        default=None,
        metadata={
            "help": "where the data set's source files are: a folder, archive or file (e.g. "
            "path/to/cifar-10-python.tar.gz); when omitted, the built-in sets need none and "
            "downloadable ones are fetched into the cache"
        },
    )
    cache_dir: str | None = field(
        default=None,
        metadata={
            "help": "folder of prepared data sets (default: $GANBENCH_CACHE, else ~/.cache/ganbench)"
        },
    )
    res: int = field(
        default=32,
        metadata={"help": "output resolution: a power of two from 16 to 256"},
    )
    mirror: bool = field(
        default=False, metadata={"help": "random horizontal flips of the real images"}
    )
    # --- architecture --------------------------------------------------------
    width: int = field(
        default=64,
        metadata={
            "help": "base channel width (ngf = ndf); DCGAN G's first layer has width*res/8 channels"
        },
    )
    z_dim: int = field(default=100, metadata={"help": "latent size (DCGAN 100, SN-DCGAN 128)"})
    latent_dist: str = field(
        default="normal",
        metadata={
            "help": "latent distribution of training, grids and samples: 'normal' N(0, I) "
            "(pytorch/examples) or 'uniform' U(-1, 1) (Radford et al. 2016, Figure 1)",
            "choices": LATENT_DISTS,
        },
    )
    lrelu_slope: float = field(
        default=0.2,
        metadata={"help": "LeakyReLU negative slope in D (DCGAN 0.2, SN-DCGAN paper 0.1)"},
    )
    sn_d: bool = field(default=False, metadata={"help": "spectral norm on every D layer"})
    sn_g: bool = field(default=False, metadata={"help": "spectral norm on every G layer too"})
    # --- objective and optimiser --------------------------------------------
    loss: str = field(
        default="nonsaturating",
        metadata={
            "help": "'nonsaturating' (Goodfellow et al. 2014 -log D trick) or 'hinge' "
            "(Miyato et al. 2018 / Lim & Ye 2017)",
            "choices": LOSSES,
        },
    )
    label_smoothing: float = field(
        default=0.0,
        metadata={
            "help": "one-sided label smoothing: real target 1 - s for D (non-saturating loss only)"
        },
    )
    lr_g: float = field(default=2e-4, metadata={"help": "Adam learning rate of G"})
    lr_d: float = field(default=2e-4, metadata={"help": "Adam learning rate of D"})
    beta1: float = field(default=0.5, metadata={"help": "Adam beta1"})
    beta2: float = field(default=0.999, metadata={"help": "Adam beta2"})
    adam_eps: float = field(default=1e-8, metadata={"help": "Adam epsilon"})
    n_dis: int = field(default=1, metadata={"help": "D updates per G update"})
    ema_beta: float = field(
        default=0.0,
        metadata={"help": "EMA decay of G's weights per G step (0 disables; e.g. 0.999)"},
    )
    # Not in Radford et al. or Miyato et al. (they sample from G itself): ProGAN's `quick` preset
    # and the CPU profiles use the same ramp-up, so that in a run of a few tens of thousands of
    # images the averaged G is not dominated by its early, untrained weights.
    ema_rampup: float = field(
        default=0.0,
        metadata={
            "help": "EMA half-life ramp-up (StyleGAN2-ADA): half-life = min(--ema-beta's, R * "
            "images shown); 0 = off, a fixed decay (needs --ema-beta > 0)"
        },
    )
    # --- schedule ------------------------------------------------------------
    batch: int = field(default=64, metadata={"help": "minibatch size"})
    kimg: float = field(
        default=1000.0,
        metadata={"help": "total training length in thousands of real images shown to D"},
    )
    seed: int = field(default=0, metadata={"help": "seed for weights, latents and data order"})
    tick_kimg: float = field(
        default=4.0, metadata={"help": "thousands of images between log lines and sample grids"}
    )
    snapshot_kimg: float = field(
        default=50.0,
        metadata={
            "help": "thousands of images between checkpoints (one is always written at the end)"
        },
    )
    keep_checkpoints: int = field(
        default=3, metadata={"help": "how many checkpoints to keep (0 keeps all)"}
    )
    grid_size: int = field(default=64, metadata={"help": "images in the fixed-latent sample grids"})
    # --- execution -----------------------------------------------------------
    device: str = field(
        default="auto",
        metadata={
            "help": "auto (a GPU when one is visible), cpu, cuda or cuda:N",
        },
    )
    threads: int = field(
        default=0,
        metadata={
            "help": "CPU threads for the framework's ops (0: the framework's default, all cores); on a "
            "shared or loaded CPU, fewer can be several times faster than oversubscribing"
        },
    )
    amp: str = field(
        default="off",
        metadata={
            "help": "mixed precision: off (fp32, as the papers), bf16 (convolutions in bfloat16; reals, "
            "losses and the optimiser in fp32), auto (bf16 where the device has native bf16: "
            "CUDA, or a CPU with AVX512-BF16/AMX)",
            "choices": ("off", "bf16", "auto"),
        },
    )
    sample_bn: str = field(
        default="running",
        metadata={
            "help": "BatchNorm statistics when drawing samples and grids: 'running' (eval mode) "
            "or 'batch' (each sampling batch's own, as Radford et al.'s code and "
            "pytorch/examples draw)",
            "choices": ("running", "batch"),
        },
    )
    channels_last: bool = field(
        default=True, metadata={"help": "torch: channels_last memory format"}
    )
    # The same functions computed by other kernels; vanilla_gan/torch_gemm.py and tf_gemm.py say
    # which layers and what was measured.
    cpu_gemm_convs: bool = field(
        default=True,
        metadata={
            "help": "float32 on a CPU (torch, and TensorFlow's plain graph; XLA keeps its own "
            "convolutions): compute D's last and G's first layer (dense layers in convolution "
            "form) and the 4x4 stride-2 convolutions at the 4x4 end with >= 256 channels as "
            "matrix multiplies (im2col + GEMM), faster than oneDNN's kernels for these shapes; "
            "the same function to float rounding. --no-cpu-gemm-convs uses the framework's "
            "convolutions throughout"
        },
    )
    # Unset (auto) by default: XLA on a GPU, the plain tf.function graph on a CPU. On the Intel
    # Xeon (AMX, 2 cores) the plain graph is faster in every measured case, in fp32: DCGAN 32x32
    # 1.16x and SN-DCGAN 32x32 1.42x XLA (python -m vanilla_gan.bench --res 32 --models
    # dcgan,sndcgan --frameworks tf-xla,tf-graph --amp off --steps 15 --rounds 3, measured as
    # tf,tf-graph --jit-compile before tf-xla existed), DCGAN 64x64 1.44x on one CPU
    # (vanilla_gan.bench_reference --frameworks tf,tf-xla) and 1.53x on both; in bf16 2.2x (XLA's
    # CPU backend runs bf16 no faster than fp32, the plain graph's oneDNN kernels natively).
    # JSON: benchmarks/results/cpu-2core-xeon/. XLA's CPU weight-gradient and transposed
    # convolutions are the slow part; the plain graph also has TF's fused BatchNorm kernel and
    # the matrix-multiply convolutions (cpu_gemm_convs). On the AMD EPYC of the earliest
    # measurements XLA was 1.3-1.5x the plain graph, before those two changes sped the plain
    # graph up (1.1-1.2x). ProGAN's TensorFlow step is a plain graph everywhere unless --compile.
    jit_compile: bool | None = field(
        default=None,
        metadata={
            "help": "tf: XLA-compile the train step (--jit-compile), or run it as a plain "
            "tf.function graph (--no-jit-compile). Unset: XLA on a GPU, the plain graph on a "
            "CPU (faster there in every measured case: 1.16-1.53x in fp32, 2.2x in bf16)"
        },
    )
    # TF 2.21's XLA CPU backend runs compiled code through its newer "thunk" runtime; on the
    # 2-core development CPU the older runtime (XLA flag xla_cpu_use_thunk_runtime=false) ran
    # DCGAN 8-12% faster at 32x32 and 64x64 and SN-DCGAN the same (same-session bench runs,
    # vanilla_gan/README.md "Speed"). Set only for the TF version it was measured on (an
    # unknown XLA flag aborts the process) and only when XLA_FLAGS does not already choose.
    xla_legacy_cpu_runtime: bool = field(
        default=True,
        metadata={
            "help": "tf + XLA on TF 2.21: use XLA's older CPU runtime (faster here); "
            "--no-xla-legacy-cpu-runtime keeps TF's default"
        },
    )
    deterministic: bool = field(
        default=False,
        metadata={
            "help": "deterministic kernels (torch.use_deterministic_algorithms / TF op determinism); "
            "slower, needed for bit-exact resume"
        },
    )
    tensorboard: bool = field(
        default=False,
        metadata={
            "help": "also write the log's scalars as TensorBoard events under RUN_DIR/tensorboard"
        },
    )
    tflop: float | None = loop_field("tflop")
    max_minutes: float | None = loop_field("max_minutes")
    max_bad_steps: int = loop_field("max_bad_steps")
    max_abs_loss: float = loop_field("max_abs_loss")
    malloc: str = loop_field("malloc")
    debug_nan_kimg: tuple[float, ...] | None = loop_field("debug_nan_kimg")

    def ema_beta_at(self, nimg: int) -> float:
        """EMA decay for the G step of the minibatch starting at image ``nimg`` (see
        ``ema_rampup``; ``ema_beta`` itself when the ramp-up is off)."""
        return ema_decay(self.ema_beta, self.ema_rampup, nimg, self.batch * self.n_dis)

    def validate(self) -> None:
        check_loop_fields(self)
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.framework not in FRAMEWORKS:
            raise ValueError(f"framework must be one of {FRAMEWORKS}, got {self.framework!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.latent_dist not in LATENT_DISTS:
            raise ValueError(f"latent_dist must be one of {LATENT_DISTS}, got {self.latent_dist!r}")
        if self.res not in (16, 32, 64, 128, 256):
            raise ValueError(f"res must be a power of two in 16..256, got {self.res}")
        for name in ("width", "z_dim", "batch", "n_dis", "grid_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.model == "sndcgan" and self.width < 8:
            raise ValueError("sndcgan needs width >= 8 (its G halves the width three times)")
        for name in ("lr_g", "lr_d"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not (0.0 <= self.beta1 < 1.0 and 0.0 <= self.beta2 < 1.0):
            raise ValueError(f"Adam betas must lie in [0, 1), got {self.beta1}, {self.beta2}")
        if not 0.0 <= self.ema_beta < 1.0:
            raise ValueError(f"ema_beta must lie in [0, 1), got {self.ema_beta}")
        if self.ema_rampup < 0:
            raise ValueError(f"ema_rampup must be >= 0 (0 = off), got {self.ema_rampup}")
        if self.ema_rampup > 0 and self.ema_beta == 0:
            raise ValueError("ema_rampup needs an EMA: set --ema-beta (e.g. 0.995) as well")
        if not 0.0 <= self.label_smoothing < 0.5:
            raise ValueError(f"label_smoothing must lie in [0, 0.5), got {self.label_smoothing}")
        if self.label_smoothing and self.loss != "nonsaturating":
            raise ValueError("label_smoothing only applies to the non-saturating loss")


# Radford et al. 2016; pytorch/examples dcgan widths.
_DCGAN: dict[str, Any] = dict(
    model="dcgan",
    z_dim=100,
    latent_dist="normal",
    width=64,
    lrelu_slope=0.2,
    sn_d=False,
    loss="nonsaturating",
    lr_g=2e-4,
    lr_d=2e-4,
    beta1=0.5,
    beta2=0.999,
    n_dis=1,
)

PRESETS: dict[str, dict[str, Any]] = {
    "dcgan": _DCGAN,
    # Radford et al. 2016 as published: Figure 1 projects a 100-d U(-1, 1) latent to 4x4 with
    # 1024 channels for 64x64 (then 512, 256, 128 to RGB), section 4 trains with minibatch 128.
    # The official dcgan_code (Newmu/dcgan_code, faces/train_uncond_dcgan.py: ngf = ndf = 128,
    # nbatch = 128, nz = 100, Z ~ uniform(-1, 1)) fixes the width of G's last / D's first
    # layer and doubles it per stage, which is arch.py's rule (width * res / 8 at 4x4): width
    # 128 gives the figure's 1024 at 64x64 and 512 at 32x32 (the code's own 32x32 SVHN model,
    # models/svhn_unsup_all_conv_dcgan_100z_gaussian_lr_0.0005_64mb, kept the rule with
    # ngf = 64: 256 at 4x4, which is the `dcgan` preset). Differences from that code, kept:
    # 4x4 kernels instead of 5x5 (pytorch/examples' layers, which every other preset uses),
    # no L2 weight decay (1e-5 there, not in the paper's text), one D then one G update per
    # minibatch (the code alternates minibatches between them).
    "dcgan-paper": dict(
        _DCGAN,
        latent_dist="uniform",
        width=128,
        batch=128,
    ),
    # Miyato et al. 2018, Table 3 standard CNN + Table 1 setting C (see module docstring).
    "sndcgan": dict(_DCGAN, model="sndcgan", z_dim=128, lrelu_slope=0.1, sn_d=True),
    # Seconds-long smoke run on CPU (tests, CI).
    "quick": dict(
        width=8, batch=16, kimg=0.128, tick_kimg=0.032, snapshot_kimg=0.064, grid_size=16
    ),
}


def preset_for(model: str, quick: bool = False) -> dict[str, Any]:
    """The model's preset, plus the ``quick`` overrides when asked."""
    values = dict(PRESETS[model])
    if quick:
        values.update(PRESETS["quick"])
    return values
