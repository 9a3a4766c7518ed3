"""TensorFlow 2 / Keras 3 numerics for DCGAN / SN-DCGAN: losses, the training step, checkpoints.

Implements :class:`gancore.train.protocol.Trainer`, step for step the algorithm of
:mod:`vanilla_gan.torch_training` (same losses, the last fake batch reused for the G update,
the same number of D forwards, hence of spectral-norm power iterations). The whole step
(n_dis D updates, the G update, the EMA) is one ``tf.function``, XLA-compiled by default on a
GPU and a plain graph on a CPU (``resolve_jit_compile``); the skip-if-non-finite decisions are
made in the graph and the statistics read once per step.

Checkpoints are one ``.npz`` (no pickle) holding every variable of G, D, the EMA G and both
Adam optimisers (their iteration counters included) and the loop metadata.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gancore import tf_utils as tfu
from gancore.errors import UserError, file_error
from gancore.grid import to_uint8
from gancore.hardware import tune_malloc
from gancore.io import atomic_path
from gancore.train.protocol import Randoms, SingleProcess, StepStats
from gancore.train.schema import CheckpointMeta
from gancore.train.stages import Stage
from vanilla_gan import tf_nets
from vanilla_gan.config import TrainConfig

keras, tf = tfu.keras, tfu.tf
FORMAT = "vanilla_gan.tf/2"


def d_loss(cfg: TrainConfig, real, fake):
    """Same definitions as ``torch_training.d_loss`` (non-saturating with one-sided
    smoothing, hinge)."""
    if cfg.loss == "hinge":
        return tf.reduce_mean(tf.nn.relu(1.0 - real)) + tf.reduce_mean(tf.nn.relu(1.0 + fake))
    t = 1.0 - cfg.label_smoothing
    real_term = tf.nn.softplus(-real)
    if t < 1.0:
        real_term = t * real_term + (1.0 - t) * tf.nn.softplus(real)
    return tf.reduce_mean(real_term) + tf.reduce_mean(tf.nn.softplus(fake))


def g_loss(cfg: TrainConfig, fake):
    if cfg.loss == "hinge":
        return -tf.reduce_mean(fake)
    return tf.reduce_mean(tf.nn.softplus(-fake))


def resolve_jit_compile(flag: bool | None, gpu: bool) -> bool:
    """``--jit-compile`` as given, or when unset: XLA on a GPU, the plain graph on a CPU (see
    ``TrainConfig.jit_compile`` for the measurements)."""
    if flag is not None:
        return flag
    return gpu


class TFTrainer(SingleProcess):
    checkpoint_ext = ".npz"

    def __init__(self, cfg: TrainConfig, channels: int, fused_bn: bool | None = None) -> None:
        """``fused_bn``: BatchNorm through TF's fused kernel or op by op (the same function);
        None, the default, fuses it exactly when the step is not XLA-compiled. Set only to
        measure that choice (``vanilla_gan.bench --frameworks tf-graph-opbn,tf-xla-fusedbn``)."""
        self.cfg, self.channels = cfg, channels
        tfu.select_device(cfg.device)
        tfu.set_threads(cfg.threads)  # before anything that starts TF's runtime (has_gpu)
        tune_malloc(cfg.malloc)
        if cfg.deterministic:
            tf.config.experimental.enable_op_determinism()
        policy = tfu.set_amp(cfg.amp)
        gpu = tfu.has_gpu()
        self.jit_compile = resolve_jit_compile(cfg.jit_compile, gpu)
        if self.jit_compile and cfg.xla_legacy_cpu_runtime:
            tfu.use_legacy_xla_cpu_runtime()  # read at XLA's first compilation: still in time
        keras.utils.set_random_seed(cfg.seed)
        # TF's fused BatchNorm kernel in a plain graph; XLA fuses the op-by-op form itself. The
        # matrix-multiply convolutions (vanilla_gan/tf_gemm.py): a plain graph on a CPU, fp32.
        gemm = cfg.cpu_gemm_convs and not self.jit_compile and policy is None and not gpu
        self.fused_bn = (not self.jit_compile) if fused_bn is None else fused_bn
        self.G, self.D = tf_nets.build_models(cfg, channels, fused_bn=self.fused_bn, gemm=gemm)
        self.G_ema = None
        if cfg.ema_beta > 0:
            self.G_ema = tf_nets.build_generator(cfg, channels, name="generator_ema")
            self.G_ema.set_weights(self.G.get_weights())
        kw = dict(beta_1=cfg.beta1, beta_2=cfg.beta2, epsilon=cfg.adam_eps)
        self.opt_g = keras.optimizers.Adam(cfg.lr_g, **kw)
        self.opt_d = keras.optimizers.Adam(cfg.lr_d, **kw)
        self.opt_g.build(self.G.trainable_variables)
        self.opt_d.build(self.D.trainable_variables)
        self._step_fn = tf.function(self._train_step, jit_compile=self.jit_compile)
        self.nimg = 0

    def set_stage(self, stage: Stage) -> None:
        """One stage for the whole run: only the image position (for the EMA ramp-up)."""
        self.nimg = stage.nimg

    def reset_optimizers(self) -> None:
        for opt in (self.opt_g, self.opt_d):
            for v in opt.variables:
                if "learning_rate" not in v.path:
                    v.assign(tf.zeros(v.shape, v.dtype))

    def _d_update(self, real, fake):
        with tf.GradientTape() as tape:
            out_r = tf.cast(self.D(real, training=True), tf.float32)
            out_f = tf.cast(self.D(fake, training=True), tf.float32)
            loss = d_loss(self.cfg, out_r, out_f)
        vars_ = self.D.trainable_variables
        skipped = tfu.apply_if_ok(
            self.opt_d, loss, tape.gradient(loss, vars_), vars_, self.cfg.max_abs_loss
        )
        return loss, skipped, tf.reduce_mean(out_r), tf.reduce_mean(out_f)

    def _train_step(self, reals_u8, z, ema_beta):
        cfg = self.cfg
        reals = tfu.to_float_images(reals_u8)
        # A skipped step must leave no trace: BatchNorm's moving statistics are updated by the
        # forward passes themselves, so keep their values to restore.
        state = self.G.non_trainable_variables + self.D.non_trainable_variables
        saved = [tf.identity(v) for v in state]
        skipped = tf.constant(0.0)
        for i in range(cfg.n_dis - 1):
            fake = tf.cast(self.G(z[i], training=True), tf.float32)
            skipped = tf.maximum(skipped, self._d_update(reals[i], tf.stop_gradient(fake))[1])
        g_vars = self.G.trainable_variables
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch([v.value for v in g_vars])  # the tf.Variables behind Keras variables
            fake = tf.cast(self.G(z[-1], training=True), tf.float32)
            with tape.stop_recording():
                loss_d, bad_d, d_real, d_fake = self._d_update(reals[-1], tf.stop_gradient(fake))
            loss_g = g_loss(cfg, tf.cast(self.D(fake, training=True), tf.float32))
        bad_g = tfu.apply_if_ok(
            self.opt_g, loss_g, tape.gradient(loss_g, g_vars), g_vars, cfg.max_abs_loss
        )
        bad = tf.maximum(tf.maximum(skipped, bad_d), bad_g)

        def restore():
            for v, value in zip(state, saved):
                v.assign(value)
            return tf.constant(0.0)

        tf.cond(bad > 0, restore, lambda: tf.constant(0.0))
        if self.G_ema is not None:

            def ema():
                tfu.ema_update(self.G_ema.trainable_variables, g_vars, ema_beta)
                for e, v in zip(self.G_ema.non_trainable_variables, self.G.non_trainable_variables):
                    e.assign(v)  # BN moving statistics and SN u, v follow G
                return tf.constant(0.0)

            tf.cond(bad_g > 0, lambda: tf.constant(0.0), ema)
        return tf.stack(
            [loss_d, loss_g, d_real, d_fake, tf.maximum(tf.maximum(skipped, bad_d), bad_g)]
        )

    def step(self, reals: np.ndarray, labels: np.ndarray | None, randoms: Randoms) -> StepStats:
        cfg = self.cfg
        x = reals.reshape(cfg.n_dis, cfg.batch, *reals.shape[1:])
        # the decay as a tensor: a ramping value never retraces the step
        beta = tf.constant(cfg.ema_beta_at(self.nimg), tf.float32)
        out = self._step_fn(tf.convert_to_tensor(x), tf.convert_to_tensor(randoms["z"]), beta)
        loss_d, loss_g, d_real, d_fake, skipped = out.numpy().tolist()
        return {
            "loss_d": loss_d,
            "loss_g": loss_g,
            "d_real": d_real,
            "d_fake": d_fake,
            "gp": None,
            "grad_norm": None,
            "skipped": skipped,
        }

    def generate(self, latents: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        G = self.G_ema if self.G_ema is not None else self.G
        return generate(G, latents, bn_mode=self.cfg.sample_bn)

    def state_is_finite(self) -> bool:
        return tfu.all_finite([v for group in self._groups().values() for v in group])

    def peak_mem_mb(self) -> float:
        return tfu.peak_mem_mb()

    # -- checkpoints
    def _groups(self) -> dict[str, list]:
        groups = {
            "G": self.G.weights,
            "D": self.D.weights,
            "opt_g": self.opt_g.variables,
            "opt_d": self.opt_d.variables,
        }
        if self.G_ema is not None:
            groups["G_ema"] = self.G_ema.weights
        return groups

    def save(self, path: Path, meta: CheckpointMeta) -> None:
        arrays = {
            f"{name}/{i:04d}": np.asarray(v.numpy())
            for name, vs in self._groups().items()
            for i, v in enumerate(vs)
        }
        arrays["meta"] = np.array(json.dumps({**vars(meta), "format": FORMAT}))
        with atomic_path(path, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)

    def load(self, path: Path) -> CheckpointMeta:
        data, meta = load_checkpoint(path)
        for name, vs in self._groups().items():
            keys = sorted(k for k in data if k.startswith(name + "/"))
            if len(keys) != len(vs) or any(
                data[k].shape != tuple(v.shape) for k, v in zip(keys, vs)
            ):
                raise UserError(
                    f"checkpoint {path} does not match this run's {name} "
                    f"({len(keys)} arrays for {len(vs)} variables): was it written by another "
                    "configuration?"
                )
            for v, k in zip(vs, keys):
                v.assign(data[k])
        return CheckpointMeta.from_dict(meta)


def load_checkpoint(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, metadata) of a ``.npz`` checkpoint, with one-line errors for damaged files."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist.")
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
        meta = json.loads(str(data.pop("meta")))
    except Exception as exc:  # truncated zip, not a zip, no meta: say which file
        raise file_error(path, exc, "checkpoint") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{path} is not a vanilla_gan TensorFlow checkpoint.")
    return data, meta


def generate(G, z: np.ndarray, batch: int = 256, bn_mode: str = "running") -> np.ndarray:
    """uint8 NHWC images from latents (``bn_mode`` as ``torch_training.generate``)."""
    saved = None
    if bn_mode == "batch":
        saved = [v.numpy() for v in G.non_trainable_variables]
    training = bn_mode == "batch"
    out = [
        to_uint8(np.asarray(tf.cast(G(z[i : i + batch], training=training), tf.float32)))
        for i in range(0, len(z), batch)
    ]
    if saved is not None:
        for v, a in zip(G.non_trainable_variables, saved):
            v.assign(a)
    return np.concatenate(out)


def load_for_inference(run_dir: str | Path, checkpoint: str | Path | None = None):
    """(cfg, G for sampling, channels, checkpoint path) from a tf run directory."""
    from gancore.train.session import checkpoint_for_sampling
    from vanilla_gan.rundata import read_run

    cfg, run, channels = read_run(run_dir, "tf")
    ckpt = checkpoint_for_sampling(str(run_dir), checkpoint, ("vanilla_gan.train",))
    data, _ = load_checkpoint(ckpt)
    G = tf_nets.build_generator(cfg, channels)
    name = "G_ema" if any(k.startswith("G_ema/") for k in data) else "G"
    keys = sorted(k for k in data if k.startswith(name + "/"))
    if len(keys) != len(G.weights):
        raise UserError(f"checkpoint {ckpt} does not match the run's generator config.")
    for v, k in zip(G.weights, keys):
        v.assign(data[k])
    return cfg, G, channels, ckpt
