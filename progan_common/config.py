"""The one ProGAN run configuration and its presets, shared by both frameworks.

``progan_torch`` and ``progan_tf`` build their networks, losses and training
loops from :class:`ProGANConfig`; the schedule comes from :meth:`ProGANConfig.schedule`.
Values follow Karras et al. 2018 ("Progressive Growing of GANs", ICLR) and the
official code (tkarras/progressive_growing_of_gans, ``config.py``/``train.py``/
``networks.py``/``loss.py``). Each ablation of the paper's Table 1 is a switch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gancore.config import check_loop_fields, ema_decay, loop_field
from progan_common.schedule import ProgressiveSchedule

LOSSES = ("wgan-gp", "nonsaturating", "hinge")


def _h(text: str, **extra) -> dict:
    return {"help": text, **extra}


@dataclass
class ProGANConfig:
    # ------------------------------------------------------------------ data
    dataset: str = field(
        default="stacked-digits",
        metadata=_h(
            "data set name, as python -m datasets prepare takes it (stacked-digits is built in; "
            "cifar10, cifar10-cars, mnist, stacked-mnist, celeba, celebahq and folder:PATH read "
            "--data-root)"
        ),
    )
    data_root: str | None = field(
        default=None,
        metadata=_h(
            "where the data set's source files are: a folder, archive or file (e.g. "
            "path/to/cifar-10-python.tar.gz); when omitted, the built-in sets need none and "
            "downloadable ones are fetched into the cache"
        ),
    )
    cache_dir: str | None = field(
        default=None,
        metadata=_h(
            "folder of prepared data sets (default: $GANBENCH_CACHE, else ~/.cache/ganbench)"
        ),
    )
    split: str = field(
        default="train", metadata=_h("data split to train on", choices=["train", "test"])
    )
    max_res: int = field(default=32, metadata=_h("final output resolution (power of two, 8..1024)"))
    start_res: int = field(
        default=4,
        metadata=_h("first resolution trained (official lod_initial_resolution; 4 in the paper)"),
    )
    mirror: bool = field(
        default=False,
        metadata=_h("random horizontal flips of the real images"),
    )
    conditional: bool = field(
        default=False,
        metadata=_h(
            "condition on data-set labels: one-hot concatenated to the latent, AC-GAN head on D"
        ),
    )
    # --------------------------------------------------------------- network
    latent_dim: int = field(
        default=512, metadata=_h("latent size (paper 512; CIFAR-10 config 128)")
    )
    fmap_base: int = field(
        default=8192,
        metadata=_h("channels at stage s are min(fmap_base / 2**s, fmap_max) (official nf())"),
    )
    fmap_max: int = field(default=512, metadata=_h("upper bound on channels per layer"))
    normalize_latents: bool = field(
        default=True,
        metadata=_h("pixel-normalise the latent before the first dense layer (official)"),
    )
    pixelnorm: bool = field(
        default=True, metadata=_h("pixelwise feature normalisation in G (ablation switch)")
    )
    equalized_lr: bool = field(
        default=True,
        metadata=_h(
            "equalised learning rate: N(0,1) weights scaled at run time by gain/sqrt(fan_in) (ablation switch)"
        ),
    )
    mbstd_group: int = field(
        default=4,
        metadata=_h(
            "minibatch-stddev group size, min(group, batch) used (official); 0 or 1 disables "
            "the layer (ablation switch); official default 4, paper presets 16 (whole minibatch)"
        ),
    )
    # Official G_paper / D_paper default (fused_scale=True, every block from 8x8 up, and
    # no official config turns it off): the same weights and fan-in, 2.25x fewer
    # multiply-adds in those convolutions. G computes the same function either way; D's
    # fused block applies its LReLU after the 2x2 pooling (official), the unfused one
    # before it (paper Table 2, original Theano code), so this is a model choice for D.
    fused_scale: bool = field(
        default=True,
        metadata=_h(
            "fused resampling convs (official default): G's upsample+conv3x3 as one "
            "transposed conv, D's conv3x3+avgpool as one strided conv (LReLU after the pool); "
            "--no-fused-scale keeps them separate (D: LReLU before the pool, paper Table 2)"
        ),
    )
    # Spectral normalisation (Miyato et al. 2018) is not in the ProGAN paper; it makes the
    # SN-ProGAN corner of the "spectral norm x progressive growing" comparison. Every layer of
    # the network (convs, dense, toRGB / fromRGB) uses W / sigma(W), sigma from one power
    # iteration per training forward (torch's parametrizations.spectral_norm).
    #
    # How it combines with the equalised learning rate: the run-time He constant
    # c = gain / sqrt(fan_in) is not applied to a normalised layer. It could not matter
    # anyway, since sigma(c W) = c sigma(W) makes (c W) / sigma(c W) = W / sigma(W); applying
    # c *after* the normalisation instead would make every layer c-Lipschitz (~0.02 for a
    # 3x3x512 conv) and shrink the output geometrically with depth, which is no model. What
    # does still differ is the scale the weight is STORED at, because Adam's step is about
    # lr per element whatever the weight's size, so the storage scale sets how fast each
    # normalised layer turns: --equalized-lr stores N(0, 1) (relative step ~lr in every
    # layer, ProGAN's equalisation), --no-equalized-lr stores He-initialised weights
    # N(0, c^2) (relative step ~lr / c, ~50-70x larger, as in SN-GAN whose Adam settings
    # were tuned for weights at that scale). The SN presets use --no-equalized-lr for that
    # reason; --equalized-lr is the switch for the other choice.
    spectral_norm_g: bool = field(
        default=False,
        metadata=_h(
            "spectral normalisation on every layer of G (not in the ProGAN paper; SN-ProGAN)"
        ),
    )
    spectral_norm_d: bool = field(
        default=False,
        metadata=_h(
            "spectral normalisation on every layer of D (not in the ProGAN paper; SN-ProGAN)"
        ),
    )
    # ------------------------------------------------------------------ loss
    loss: str = field(
        default="wgan-gp",
        metadata=_h(
            "adversarial loss: wgan-gp (the paper: D(fake) - D(real), with --gp-lambda and "
            "--drift), nonsaturating (Goodfellow et al. 2014, G maximises log D(G(z))), hinge "
            "(Lim & Ye 2017, as SN-GAN's best); the penalty and drift terms are added to any "
            "loss whose weight is non-zero",
            choices=list(LOSSES),
        ),
    )
    label_smoothing: float = field(
        default=0.0,
        metadata=_h(
            "one-sided label smoothing s (Salimans et al. 2016) for --loss nonsaturating: "
            "reals are classified against target 1 - s, fakes against 0"
        ),
    )
    gp_lambda: float = field(
        default=10.0, metadata=_h("gradient-penalty weight lambda (0 disables the penalty)")
    )
    gp_gamma: float = field(
        default=1.0,
        metadata=_h(
            "WGAN-GP target gradient norm gamma (CIFAR-10 config: 750); penalty scaled by lambda/gamma**2"
        ),
    )
    # The official D always sees full-resolution images (reals and fakes nearest-upscaled by
    # 2**floor(lod), box-downscaled again inside D) and penalises the gradient w.r.t. that
    # full-resolution image. Our D works at the level's native resolution; for x upscaled by
    # f = max_res / res, D_full(up(x)) = D_native(x) and ||grad_full|| = ||grad_native|| / f,
    # so the official penalty is ours with target gamma * f and weight lambda / (gamma f)**2.
    # "native" penalises the native gradient against gamma itself, what reimplementations
    # that feed D native-resolution images do: at 4x4 of a 1024 model that asks for a D 256x
    # flatter per pixel than the official one. Kept to reproduce and compare those.
    gp_resolution: str = field(
        default="full",
        metadata=_h(
            "resolution the penalty's gradient is measured at: full (official: the gradient "
            "w.r.t. the image upscaled to max-res, i.e. native target gamma * max_res / res) or "
            "native (target gamma at every level, as ports that penalise D's own input)",
            choices=["full", "native"],
        ),
    )
    drift: float = field(
        default=0.001, metadata=_h("epsilon_drift * D(real)**2 keeps D's output near 0")
    )
    acgan_weight: float = field(
        default=1.0, metadata=_h("weight of the AC-GAN label loss when --conditional")
    )
    # ------------------------------------------------------------- optimiser
    lr: float = field(default=0.001, metadata=_h("Adam learning rate (paper 0.001)"))
    lr_dict: dict[int, float] = field(
        default_factory=dict,
        metadata=_h("per-resolution learning-rate overrides, e.g. '1024:0.0015'"),
    )
    beta1: float = field(default=0.0, metadata=_h("Adam beta1 (paper 0)"))
    beta2: float = field(default=0.99, metadata=_h("Adam beta2 (paper 0.99)"))
    adam_eps: float = field(default=1e-8, metadata=_h("Adam epsilon (paper 1e-8)"))
    reset_optimizer: bool = field(
        default=True,
        metadata=_h(
            "reset Adam state at the start and end of every fade (official reset_opt_for_new_lod)"
        ),
    )
    ema: bool = field(
        default=True,
        metadata=_h(
            "keep an exponential moving average of G for samples and metrics (ablation switch)"
        ),
    )
    ema_beta: float = field(
        default=0.999, metadata=_h("EMA decay per minibatch (official G_smoothing 0.999)")
    )
    # Deviation, off in every paper preset: with beta 0.999 the EMA's half-life is ~11k images
    # at batch 16, so in a run whose phases are a few thousand images (CPU runs, the `quick`
    # preset, the CPU benchmark profiles) the EMA generator is still mostly its initial weights
    # and its grids show noise while G already draws faces. StyleGAN2-ADA (Karras et al. 2020)
    # caps the half-life at `rampup * images shown`; we do the same, keeping ema_beta's
    # half-life as the ceiling.
    ema_rampup: float = field(
        default=0.0,
        metadata=_h(
            "EMA half-life ramp-up (StyleGAN2-ADA): half-life = min(ema_beta's, R * images "
            "shown); 0 = off, the paper's fixed decay; the quick preset uses 0.05"
        ),
    )
    # -------------------------------------------------------------- schedule
    growing: bool = field(
        default=True,
        metadata=_h(
            "progressive growing; --no-growing trains at max-res from the start (ablation switch)"
        ),
    )
    stabilize_kimg: float = field(
        default=800.0, metadata=_h("thousands of images per stabilisation phase (paper 800)")
    )
    fade_kimg: float = field(
        default=800.0, metadata=_h("thousands of images per fade-in phase (paper 800)")
    )
    batch_sizes: dict[int, int] = field(
        default_factory=dict,
        metadata=_h("per-resolution minibatch sizes, e.g. '4:128,8:128,16:64'"),
    )
    default_batch: int = field(
        default=16, metadata=_h("minibatch size where batch-sizes has no entry (paper 16)")
    )
    kimg: float = field(
        default=12000.0, metadata=_h("total training length in thousands of real images shown to D")
    )
    # --------------------------------------------------------------- runtime
    seed: int = field(default=0, metadata=_h("seed for weights, latents and data order"))
    device: str = field(
        default="auto", metadata=_h("auto (a GPU when one is visible), cpu, cuda or cuda:N")
    )
    amp: str = field(
        default="off",
        metadata=_h(
            "mixed precision: off (fp32, as the papers), bf16 (convolutions in bfloat16; reals, "
            "losses and the optimiser in fp32), auto (bf16 where the device has native bf16: "
            "CUDA, or a CPU with AVX512-BF16/AMX)",
            choices=["off", "bf16", "auto"],
        ),
    )
    threads: int = field(
        default=0,
        metadata=_h(
            "CPU threads for the framework's ops (0: the framework's default, all cores); on a "
            "shared or loaded CPU, fewer can be several times faster than oversubscribing"
        ),
    )
    tensorboard: bool = field(
        default=False,
        metadata=_h("also write the log's scalars as TensorBoard events under RUN_DIR/tensorboard"),
    )
    compile: bool = field(
        default=False,
        metadata=_h("torch.compile (PyTorch) / XLA jit_compile (TensorFlow) the training step"),
    )
    tick_kimg: float = field(
        default=20.0, metadata=_h("thousands of images between log lines and sample grids")
    )
    snapshot_kimg: float = field(
        default=200.0,
        metadata=_h("thousands of images between checkpoints (one is always written at the end)"),
    )
    keep_checkpoints: int = field(
        default=3, metadata=_h("how many checkpoints to keep (0 keeps all)")
    )
    grid_size: int = field(default=36, metadata=_h("images in the fixed-latent sample grids"))
    tflop: float | None = loop_field("tflop")
    max_minutes: float | None = loop_field("max_minutes")
    max_bad_steps: int = loop_field("max_bad_steps")
    max_abs_loss: float = loop_field("max_abs_loss")
    malloc: str = loop_field("malloc")
    debug_nan_kimg: tuple[float, ...] | None = loop_field("debug_nan_kimg")

    @property
    def model_name(self) -> str:
        """The model's name in run directories, the harness and reports: ``sn-progan`` when
        both networks are spectrally normalised, else ``progan``."""
        return "sn-progan" if self.spectral_norm_g and self.spectral_norm_d else "progan"

    def gp_target(self, res: int) -> float:
        """The penalty's target norm for the native-resolution gradient of a D working at
        ``res`` (see ``gp_resolution``): ``gp_gamma * max_res / res`` (official) or
        ``gp_gamma``. The penalty is ``lambda / target**2 * (||grad|| - target)**2``, which is
        the official ``lambda / gamma**2 * (||grad_full|| - gamma)**2`` exactly."""
        if self.gp_resolution == "native":
            return self.gp_gamma
        return self.gp_gamma * self.max_res / res

    def ema_beta_at(self, nimg: int, batch: int) -> float:
        """EMA decay for the minibatch of ``batch`` images starting at image ``nimg``: the
        rule both trainers share (:func:`gancore.config.ema_decay`, see ``ema_rampup``)."""
        return ema_decay(self.ema_beta, self.ema_rampup, nimg, batch)

    def validate(self) -> None:
        check_loop_fields(self)
        if self.lr <= 0 or any(v <= 0 for v in self.lr_dict.values()):
            raise ValueError(
                f"learning rates must be positive, got lr={self.lr}, lr_dict={self.lr_dict}"
            )
        if not (0.0 <= self.beta1 < 1.0 and 0.0 <= self.beta2 < 1.0) or self.adam_eps <= 0:
            raise ValueError(
                f"Adam needs betas in [0, 1) and eps > 0, got {self.beta1}, {self.beta2}, {self.adam_eps}"
            )
        if self.max_res < 8 or self.max_res > 1024 or self.max_res & (self.max_res - 1):
            raise ValueError(
                f"max_res must be a power of two between 8 and 1024, got {self.max_res}"
            )
        if self.latent_dim < 1 or self.fmap_base < 1 or self.fmap_max < 1:
            raise ValueError("latent_dim, fmap_base and fmap_max must be positive")
        if self.channels_at(self.max_res) < 1:
            raise ValueError(
                f"fmap_base {self.fmap_base} leaves 0 channels at {self.max_res}x{self.max_res} "
                f"(fmap_base / 2**stage); use fmap_base >= {self.max_res // 2}"
            )
        if self.mbstd_group < 0:
            raise ValueError(f"mbstd_group must be >= 0, got {self.mbstd_group}")
        if not 0.0 <= self.ema_beta < 1.0:
            raise ValueError(f"ema_beta must be in [0, 1), got {self.ema_beta}")
        if self.ema_rampup < 0:
            raise ValueError(f"ema_rampup must be >= 0 (0 = off), got {self.ema_rampup}")
        if self.gp_gamma <= 0 or self.gp_lambda < 0:
            raise ValueError("gp_gamma must be positive and gp_lambda non-negative")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.gp_resolution not in ("full", "native"):
            raise ValueError(f"gp_resolution must be full or native, got {self.gp_resolution!r}")
        if not 0.0 <= self.label_smoothing < 0.5:
            raise ValueError(
                f"label_smoothing must be in [0, 0.5) (0.1 is the usual value), "
                f"got {self.label_smoothing}"
            )
        if self.label_smoothing and self.loss != "nonsaturating":
            raise ValueError(
                f"label_smoothing applies to --loss nonsaturating only (got --loss {self.loss}); "
                "set --label-smoothing 0 or --loss nonsaturating"
            )
        self.schedule()  # raises ValueError for bad resolutions / batch sizes

    def schedule(self) -> ProgressiveSchedule:
        return ProgressiveSchedule(
            max_res=self.max_res,
            start_res=self.start_res,
            stabilize_kimg=self.stabilize_kimg,
            fade_kimg=self.fade_kimg,
            batch_sizes=self.batch_sizes,
            default_batch=self.default_batch,
            lr_dict=self.lr_dict,
            base_lr=self.lr,
            growing=self.growing,
        )

    def channels_at(self, res: int) -> int:
        """Official ``nf(stage)`` for the block that works at ``res`` (stage = log2(res) - 1)."""
        stage = res.bit_length() - 2
        return min(int(self.fmap_base / 2.0**stage), self.fmap_max)


# The SN-ProGAN switches and SN-GAN's training settings (sources at the presets below).
_SN_PROGAN: dict = {
    "spectral_norm_g": True,
    "spectral_norm_d": True,
    "equalized_lr": False,
    "loss": "nonsaturating",
    "label_smoothing": 0.1,
    "gp_lambda": 0.0,
    "drift": 0.0,
    "lr": 2e-4,
    "beta1": 0.5,
    "beta2": 0.999,
    "latent_dim": 128,
}

# Small widths and short phases for CPU runs, the default benchmark and tests (not a paper setting).
_QUICK: dict = {
    "max_res": 32,
    "latent_dim": 64,
    "fmap_base": 512,
    "fmap_max": 64,
    "stabilize_kimg": 20.0,
    "fade_kimg": 20.0,
    "default_batch": 16,
    "kimg": 160.0,
    "tick_kimg": 4.0,
    "snapshot_kimg": 20.0,
    "grid_size": 36,
    "ema_rampup": 0.05,  # short phases: see ema_rampup above
}

# Presets: only the values that differ from the dataclass defaults (the paper's).
# Sources: the official TF code (tkarras/progressive_growing_of_gans, config.py presets and
# train.TrainingSchedule) and, where the TF code has no setting (CIFAR-10), the original
# Theano code the paper's numbers came from (branch original-theano-version, config.py).
PRESETS: dict[str, dict] = {
    # Paper, CelebA-HQ 1024 = official config.py "preset-v1-1gpu" (and the Theano config
    # "celeb-hq-1024x1024"): 800k + 800k images per level, minibatch 16 then 14, 6, 3 at
    # 256, 512, 1024 (paper A.1), 19,000 kimg in total, so 1024x1024 is reached at
    # 12,800 kimg (8 doublings x 1,600) and trained for 6,200 more. mbstd group 16 is the
    # whole minibatch at every level (official D.mbstd_group_size = 16 -> min(16, N); the
    # Theano layer and paper section 3 take the stddev over the minibatch). Mirror on.
    # Not taken from the Theano config: its 40-kimg learning-rate ramp-up (the TF code has none).
    "celebahq": {
        "dataset": "celebahq",
        "max_res": 1024,
        "mirror": True,
        "kimg": 19000.0,
        "batch_sizes": {256: 14, 512: 6, 1024: 3},
        "default_batch": 16,
        "mbstd_group": 16,
        "tick_kimg": 160.0,
        "snapshot_kimg": 1000.0,
    },
    # Official config.py "preset-v2-1gpu": larger minibatches at low resolution, 600k + 600k
    # (the official TrainingSchedule defaults), lr 0.0015 at 1024, 12,000 kimg: 1024x1024 is
    # reached at 9,600 kimg (8 x 1,200) and trained for 2,400 more. mbstd group: the official
    # D_paper default 4.
    "celebahq-1gpu": {
        "dataset": "celebahq",
        "max_res": 1024,
        "mirror": True,
        "kimg": 12000.0,
        "stabilize_kimg": 600.0,
        "fade_kimg": 600.0,
        "batch_sizes": {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8, 512: 4},
        "default_batch": 4,
        "lr_dict": {1024: 0.0015},
        "tick_kimg": 160.0,
        "snapshot_kimg": 1000.0,
    },
    # Paper section 6.5 (CIFAR10 inception scores). The TF code has no CIFAR-10 preset, so
    # every value follows the Theano config "cifar-10-32x32": G/D fmap_base 4096 and fmap_max
    # 128 (128 channels at every level to 32x32), latent_size 128, iwass_target (gamma) 750,
    # lod_training/transition_kimg 400 + 400, minibatch 16 (minibatch_default, no
    # overrides), total_kimg 20,000, mirror_augment False, rampup_kimg 0, and the minibatch
    # stddev over the whole minibatch (mbstat_avg 'all': group 16). Changed here: fmap_base
    # was 2048 (same widths to 32x32), kimg 12,000 and mbstd group 4. Not representable:
    # its separate_funcs=False (D and G updated together from one forward; we alternate
    # D then G as the TF code does).
    "cifar10": {
        "dataset": "cifar10",
        "max_res": 32,
        "latent_dim": 128,
        "fmap_base": 4096,
        "fmap_max": 128,
        "gp_gamma": 750.0,
        "stabilize_kimg": 400.0,
        "fade_kimg": 400.0,
        "default_batch": 16,
        "mbstd_group": 16,
        "mirror": False,
        "kimg": 20000.0,
        "tick_kimg": 40.0,
        "snapshot_kimg": 400.0,
    },
    # Small widths and short phases for CPU runs, the default benchmark and tests (not a paper setting).
    "quick": dict(_QUICK),
    # ------------------------------------------------------------------------- SN-ProGAN
    # The fourth corner of the comparison: a progressive GAN with spectral normalisation on
    # both networks, trained with the non-saturating loss and one-sided label smoothing. The
    # two systems of this kind that the benchmark covers give: (i) growth 64 -> 128 -> 256 on
    # faces (reported FID 18.3 and about 15% less mode collapse than a DCGAN baseline);
    # (ii) growth 4 -> 64 on faces with fade-in in G and D. Everything else:
    # - the network, growth, fade-in of G, D and reals, Adam resets, minibatch stddev,
    #   pixel norm and the G EMA are ProGAN's (the dataclass defaults), since both describe
    #   a progressive GAN;
    # - SN-GAN (Miyato et al. 2018) for what it sets: Adam lr 2e-4, beta1 0.5, beta2 0.999
    #   with one D update per G update, its Table 1 setting C (from Radford et al. 2016, the
    #   setting of its spectral-norm accuracy figure, and the only one with n_dis = 1, the
    #   D/G alternation of ProGAN's loop; A, D, E, F take 5 D steps, B lr 1e-4); latent size
    #   128 ("d_z = 128 for all of our experiments"); no gradient penalty and no drift term
    #   (SN alone keeps D Lipschitz; both are WGAN-GP devices);
    # - weights stored at He scale (--no-equalized-lr), so that lr 2e-4 moves each normalised
    #   layer as fast as in SN-GAN (see spectral_norm_g above);
    # - label smoothing 0.1 (reals against 0.9): Salimans et al. 2016, who introduced the
    #   one-sided version;
    # - minibatch 16 and 800k + 800k images per level: the ProGAN paper (SN-GAN states no
    #   minibatch and has no growth); the run ends after one stabilisation phase at the
    #   final resolution (our choice: neither description gives a length).
    "sn-progan-faces-256": {
        **_SN_PROGAN,
        "dataset": "celebahq",
        "start_res": 64,
        "max_res": 256,
        "mirror": True,  # faces, as the ProGAN CelebA-HQ setting
        "kimg": 4000.0,  # 64 stabilise + 2 x (fade + stabilise) = 5 x 800
        "tick_kimg": 160.0,
        "snapshot_kimg": 800.0,
    },
    "sn-progan-faces-64": {
        **_SN_PROGAN,
        "dataset": "celeba",
        "start_res": 4,
        "max_res": 64,
        "mirror": True,
        "kimg": 7200.0,  # 4 stabilise + 4 x (fade + stabilise) = 9 x 800
        "tick_kimg": 160.0,
        "snapshot_kimg": 800.0,
    },
    # The quick preset's sizes, lengths and EMA ramp with the SN-ProGAN switches and
    # training settings, for CPU runs, the benchmark profiles and tests (not a paper setting).
    "sn-progan-quick": {**_SN_PROGAN, **_QUICK},
}
