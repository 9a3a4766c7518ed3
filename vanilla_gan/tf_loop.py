"""TensorFlow 2 / Keras 3 numerics for DCGAN / SN-DCGAN: losses, train step, checkpoints.

The whole iteration (n_dis D updates, one G update, the EMA) is one
``tf.function`` (optionally XLA-compiled with ``jit_compile``). Losses are summed
in a device variable and read once per tick. The algorithm is step-for-step the
one in ``torch_loop`` (same losses, same reuse of the last fake batch for the G
step, the same number of D forwards, hence the same number of spectral-norm
power iterations).

Checkpoints are one ``.npz`` (no pickle) holding every variable of G, D, the EMA
G and both Adam optimisers (including their iteration counters) plus the loop
position, written atomically, then committed with ``RunDir.commit_checkpoint``.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from gancore.errors import UserError  # noqa: E402
from gancore.grid import to_uint8  # noqa: E402
from gancore.hardware import peak_rss_mb  # noqa: E402
from gancore.io import atomic_path  # noqa: E402
from vanilla_gan import tf_nets  # noqa: E402
from vanilla_gan.config import TrainConfig  # noqa: E402

LEGACY_RUNTIME_FLAG = "--xla_cpu_use_thunk_runtime=false"
LEGACY_RUNTIME_TF = ("2.21.",)  # versions the flag was measured on (an unknown flag aborts XLA)


def use_legacy_xla_cpu_runtime() -> bool:
    """Ask XLA's CPU backend for its older runtime (``TrainConfig.xla_legacy_cpu_runtime``).

    XLA reads ``XLA_FLAGS`` once, at its first compilation in the process, so this works when
    called before the first XLA-compiled step. Returns whether the flag is now set.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_use_thunk_runtime" in flags:
        return LEGACY_RUNTIME_FLAG in flags.split()
    if not tf.__version__.startswith(LEGACY_RUNTIME_TF):
        return False
    os.environ["XLA_FLAGS"] = f"{flags} {LEGACY_RUNTIME_FLAG}".strip()
    return True


# ----------------------------------------------------------------------------- losses


def d_loss(cfg: TrainConfig, real, fake):
    """Same definitions as ``torch_loop.d_loss`` (non-saturating with one-sided smoothing, hinge)."""
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


# ---------------------------------------------------------------------------- trainer


class TFTrainer:
    ext = ".npz"

    def __init__(self, cfg: TrainConfig, channels: int, device: str = "auto") -> None:
        if device == "cuda" and not tf.config.list_physical_devices("GPU"):
            raise UserError(
                "--device cuda was asked for but TensorFlow sees no GPU; "
                "use --device cpu (or auto)."
            )
        self.cfg, self.channels = cfg, channels
        self._device = "/CPU:0" if device == "cpu" else None
        if cfg.jit_compile and cfg.xla_legacy_cpu_runtime:
            use_legacy_xla_cpu_runtime()
        if cfg.threads:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(cfg.threads)
                tf.config.threading.set_inter_op_parallelism_threads(cfg.threads)
            except RuntimeError:  # TF already initialised in this process: keep its pools
                pass
        if cfg.deterministic:
            tf.config.experimental.enable_op_determinism()
        keras.utils.set_random_seed(cfg.seed)
        with self._scope():
            self.G, self.D = tf_nets.build_models(cfg, channels)
            self.G_ema = None
            if cfg.ema_beta > 0:
                self.G_ema = tf_nets.build_generator(cfg, channels, name="generator_ema")
                self.G_ema.set_weights(self.G.get_weights())
            kw = dict(beta_1=cfg.beta1, beta_2=cfg.beta2, epsilon=cfg.adam_eps)
            self.opt_g = keras.optimizers.Adam(cfg.lr_g, **kw)
            self.opt_d = keras.optimizers.Adam(cfg.lr_d, **kw)
            self.opt_g.build(self.G.trainable_variables)
            self.opt_d.build(self.D.trainable_variables)
            self._acc = tf.Variable(tf.zeros(3), trainable=False)
        self._step_fn = tf.function(self._train_step, jit_compile=cfg.jit_compile)
        self._tb = None
        self.tb_dir: Path | None = None

    def _scope(self):
        return tf.device(self._device) if self._device else contextlib.nullcontext()

    def _d_update(self, real, fake, poison):
        with tf.GradientTape() as tape:
            loss = d_loss(self.cfg, self.D(real, training=True), self.D(fake, training=True))
            loss = loss + poison
        vars_ = self.D.trainable_variables
        self.opt_d.apply_gradients(zip(tape.gradient(loss, vars_), vars_))
        return loss

    def _train_step(self, reals_u8, z, poison):
        cfg = self.cfg
        reals = tf.cast(reals_u8, tf.float32) * (2.0 / 255.0) - 1.0
        for i in range(cfg.n_dis - 1):
            fake = self.G(z[i], training=True)
            self._d_update(reals[i], tf.stop_gradient(fake), poison)
        g_vars = self.G.trainable_variables
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch([v.value for v in g_vars])  # the tf.Variables behind Keras variables
            fake = self.G(z[-1], training=True)
            with tape.stop_recording():
                loss_d = self._d_update(reals[-1], tf.stop_gradient(fake), poison)
            loss_g = g_loss(cfg, self.D(fake, training=True))
        self.opt_g.apply_gradients(zip(tape.gradient(loss_g, g_vars), g_vars))
        if self.G_ema is not None:
            beta = cfg.ema_beta
            for e, v in zip(self.G_ema.trainable_variables, g_vars):
                e.assign(v + beta * (e - v))
            for e, v in zip(self.G_ema.non_trainable_variables, self.G.non_trainable_variables):
                e.assign(v)  # BN moving statistics and SN u, v follow G
        self._acc.assign_add(tf.stack([loss_d, loss_g, 1.0]))

    def step(self, reals_u8: np.ndarray, z: np.ndarray, poison: bool = False) -> None:
        with self._scope():
            self._step_fn(
                tf.convert_to_tensor(reals_u8),
                tf.convert_to_tensor(z),
                tf.constant(float("nan") if poison else 0.0),
            )

    def pop_losses(self) -> tuple[float, float]:
        d, g, n = self._acc.numpy().tolist()
        self._acc.assign(tf.zeros(3))
        n = max(n, 1.0)
        return d / n, g / n

    def generate(self, z: np.ndarray, batch: int = 256) -> np.ndarray:
        G = self.G_ema if self.G_ema is not None else self.G
        with self._scope():
            return generate(G, z, batch)

    def peak_mem_mb(self) -> float:
        return peak_rss_mb()

    def log_scalars(self, rec: dict[str, Any]) -> None:
        if self.tb_dir is None:
            return
        if self._tb is None:
            self._tb = tf.summary.create_file_writer(str(self.tb_dir))
        with self._tb.as_default():
            for k in ("loss_d", "loss_g", "img_per_s"):
                tf.summary.scalar(k, rec[k], step=rec["nimg"])
        self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()

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

    def save(self, path: Path, meta: dict[str, Any]) -> None:
        arrays = {
            f"{name}/{i:04d}": np.asarray(v.numpy())
            for name, vs in self._groups().items()
            for i, v in enumerate(vs)
        }
        arrays["meta"] = np.array(json.dumps(meta))
        with atomic_path(path, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)

    def load(self, path: Path) -> dict[str, Any]:
        data = load_checkpoint(path)
        for name, vs in self._groups().items():
            keys = sorted(k for k in data if k.startswith(name + "/"))
            if len(keys) != len(vs):
                raise UserError(
                    f"checkpoint {path} holds {len(keys)} arrays for {name}, the "
                    f"model has {len(vs)}: was it written with another config?"
                )
            for v, k in zip(vs, keys):
                v.assign(data[k])
        return json.loads(str(data["meta"]))


def load_checkpoint(path: str | Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read checkpoint {path}: {exc}") from exc


def generate(G, z: np.ndarray, batch: int = 256) -> np.ndarray:
    """uint8 NHWC images from latents, in inference mode (moving BN stats, SN u/v frozen)."""
    out = [
        to_uint8(np.asarray(G(z[i : i + batch], training=False))) for i in range(0, len(z), batch)
    ]
    return np.concatenate(out)


def load_for_inference(run_dir: str | Path, checkpoint: str | Path | None = None):
    """(cfg, G for sampling, channels, checkpoint path) from a tf run directory."""
    from vanilla_gan.rundata import read_run

    cfg, run, channels = read_run(run_dir, "tf")
    ckpt = Path(checkpoint) if checkpoint else run.latest_checkpoint()
    if ckpt is None:
        raise UserError(f"{run_dir} has no checkpoint yet (checkpoints/latest.json missing).")
    data = load_checkpoint(ckpt)
    G = tf_nets.build_generator(cfg, channels)
    name = "G_ema" if any(k.startswith("G_ema/") for k in data) else "G"
    keys = sorted(k for k in data if k.startswith(name + "/"))
    if len(keys) != len(G.weights):
        raise UserError(f"checkpoint {ckpt} does not match the run's generator config.")
    for v, k in zip(G.weights, keys):
        v.assign(data[k])
    return cfg, G, channels, ckpt
