"""The ProGAN TensorFlow trainer: networks, optimisers, EMA and one training step (numerics only).

Implements :class:`gancore.train.protocol.Trainer`, the twin of :mod:`progan_torch.training`;
the loop is :mod:`gancore.train.loop`. One minibatch, in the official order (``train.py`` of
tkarras/progressive_growing_of_gans): D step on fresh reals and latents, EMA update of G_ema
from the current G (official ``Gs_update_op`` runs beside the D step, before G moves), then G
step on fresh latents. The step is one ``tf.function`` (XLA with ``--compile``) traced once per
(level, fading): the old path is evaluated only during a fade. Alpha, the learning rate and the
EMA decay are variables / tensors, so they never retrace.

Random numbers (latents, penalty mixing factors) are inputs of the step, so a parity test can
feed torch and TF the same values. Multi-device: under ``tf.distribute.MirroredStrategy`` each
replica gets a slice of the global batch; losses are divided by the replica count and Keras
sums gradients across replicas, so the update equals the single-device one with the whole batch
(minibatch stddev groups stay inside a replica, as in the official multi-GPU code).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from gancore import tf_utils as tfu
from gancore.errors import UserError, file_error
from gancore.hardware import tune_malloc
from gancore.io import atomic_write_json, read_json
from gancore.train.protocol import Randoms, SingleProcess, StepStats
from gancore.train.schema import CheckpointMeta
from gancore.train.stages import Stage
from progan_common.config import ProGANConfig
from progan_tf.loss import d_loss, fade_reals, g_loss
from progan_tf.networks import build_networks, model_variables

keras, tf = tfu.keras, tfu.tf
FORMAT = "progan_tf/2"
CKPT_PREFIX = "ckpt"
META = "meta.json"


def make_optimizer(cfg: ProGANConfig) -> keras.optimizers.Optimizer:
    """Adam(lr, beta1, beta2, eps) as the paper (0.001, 0, 0.99, 1e-8 by default).

    Keras 3's ``Adam.update_step`` (read in 3.15) is TF1's ``tf.train.AdamOptimizer``, which
    the official code uses: ``m += (g - m)(1 - b1)``, ``v += (g^2 - v)(1 - b2)``,
    ``w -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)``, i.e. epsilon "hat" added
    to sqrt(v) of the raw second moment with both bias corrections folded into the step size,
    and ``t = iterations + 1`` from ONE counter per optimiser (TF1's shared beta powers)
    that counts applied updates. torch's ``Adam`` differs in both (epsilon on the
    bias-corrected sqrt(v_hat), one counter per parameter), so progan_torch uses
    ``gancore.torch_utils.TF1Adam``, which follows this one. The update itself runs as TF1's
    fused kernel (``gancore.tf_utils.TF1Adam``)."""
    return tfu.TF1Adam(cfg.lr, beta_1=cfg.beta1, beta_2=cfg.beta2, epsilon=cfg.adam_eps)


def one_hot(labels: np.ndarray | None, num_classes: int) -> np.ndarray | None:
    if labels is None or not num_classes:
        return None
    return np.eye(num_classes, dtype=np.float32)[np.asarray(labels, dtype=np.int64)]


def generate(
    G,
    latents: np.ndarray,
    labels: np.ndarray | None = None,
    level=None,
    alpha=None,
    batch: int = 64,
) -> np.ndarray:
    """uint8 NHWC images from ``G`` at ``level``/``alpha`` (default: G's own variables);
    ``labels`` are integer class ids."""
    from gancore.grid import to_uint8

    level = int(G.level.numpy()) if level is None else int(level)
    if alpha is not None:
        G.alpha.assign(float(alpha))
    fading = level > 0 and float(G.alpha.numpy()) < 1.0

    def run(z, y):
        return tf.cast(G(z, y, level=level, fading=fading), tf.float32)

    if len(latents) > batch:  # many batches (exports): trace once; a grid runs eagerly
        run = tf.function(run)
    out = []
    for s in range(0, len(latents), batch):
        z = tf.convert_to_tensor(latents[s : s + batch])
        y = (
            None
            if labels is None
            else tf.one_hot(labels[s : s + batch], G.num_classes, dtype=tf.float32)
        )
        out.append(to_uint8(run(z, y).numpy()))
    return np.concatenate(out)


class ProGANTrainer(SingleProcess):
    """The trainer of :mod:`gancore.train.protocol` for ProGAN in TensorFlow / Keras: one
    process (MirroredStrategy spreads a minibatch over the local GPUs)."""

    checkpoint_ext = ""  # a folder: tf.train.Checkpoint files + meta.json

    def __init__(
        self,
        cfg: ProGANConfig,
        img_channels: int,
        num_classes: int = 0,
        strategy: tf.distribute.Strategy | None = None,
    ) -> None:
        self.cfg, self.img_channels, self.num_classes = cfg, img_channels, num_classes
        tfu.set_threads(cfg.threads)
        tune_malloc(cfg.malloc)
        self.strategy = strategy or tf.distribute.get_strategy()
        self.replicas = self.strategy.num_replicas_in_sync
        self.amp = tfu.set_amp(cfg.amp)
        with self.strategy.scope():
            self.G, self.D, self.G_ema = build_networks(cfg, img_channels, num_classes)
            self.opt_g, self.opt_d = make_optimizer(cfg), make_optimizer(cfg)
            self.opt_g.build(self.G.trainable_variables)
            self.opt_d.build(self.D.trainable_variables)
        self.level, self.fading, self.alpha = self.G.num_levels - 1, False, 1.0
        self.nimg, self.batch = 0, cfg.default_batch
        self._steps: dict[tuple, object] = {}
        self._sn_pairs = []  # (G_ema vector, G vector) of a spectrally normalised G
        if self.G_ema is not None and cfg.spectral_norm_g:
            ema_vars, g_vars = model_variables(self.G_ema), model_variables(self.G)
            self._sn_pairs = [(ema_vars[k], g_vars[k]) for k in g_vars if k.endswith(("_u", "_v"))]

    def nets(self) -> list[keras.Model]:
        return [m for m in (self.G, self.D, self.G_ema) if m is not None]

    # ----------------------------------------------------------------- stage
    def set_stage(self, stage: Stage) -> None:
        self.level, self.fading, self.alpha = (
            stage.level,
            stage.fading and stage.level > 0,
            stage.alpha,
        )
        self.nimg, self.batch = stage.nimg, stage.batch
        for m in self.nets():
            m.level.assign(stage.level)
            m.alpha.assign(stage.alpha if self.fading else 1.0)
        lr = stage.lr if stage.lr is not None else self.cfg.lr
        for opt in (self.opt_g, self.opt_d):
            opt.learning_rate.assign(lr)

    def reset_optimizers(self) -> None:
        """Zero Adam's moments and iteration count (official ``reset_optimizer_state``)."""
        for opt in (self.opt_g, self.opt_d):
            for v in opt.variables:
                if "learning_rate" not in v.path:
                    v.assign(tf.zeros(v.shape, v.dtype))

    # ------------------------------------------------------------------ step
    def step(self, reals: np.ndarray, labels: np.ndarray | None, randoms: Randoms) -> StepStats:
        """One minibatch from uint8 NHWC reals at the level's resolution and the randoms
        ``z_d``, ``z_g`` (latents of the D and G steps) and ``u`` (penalty mixing factors)."""
        key = (self.level, self.fading, labels is not None)
        if key not in self._steps:
            self._steps[key] = self._make_step(*key)
        y = one_hot(labels, self.num_classes)
        args = (reals, y, randoms["z_d"], randoms["z_g"], randoms["u"])
        if self.replicas > 1:
            args = tuple(self._distribute(a) for a in args)
        else:
            args = tuple(None if a is None else tf.convert_to_tensor(a) for a in args)
        beta = tf.constant(self.cfg.ema_beta_at(self.nimg, self.batch), tf.float32)
        out: StepStats = dict.fromkeys(("gp", "grad_norm"))  # None without a penalty
        out.update({k: float(v) for k, v in self._steps[key](*args, beta).items()})
        out["skipped"] = float(out.pop("bad_d") > 0 or out.pop("bad_g") > 0)
        out.pop("d_label", None)
        return out

    def _distribute(self, array: np.ndarray | None):
        if array is None:
            return None
        n = array.shape[0]
        if n % self.replicas:
            raise UserError(f"minibatch {n} is not divisible by {self.replicas} replicas (GPUs)")
        per = n // self.replicas

        def part(ctx: tf.distribute.InputContext):
            i = ctx.replica_id_in_sync_group
            return tf.convert_to_tensor(array[i * per : (i + 1) * per])

        return self.strategy.experimental_distribute_values_from_function(part)

    def _make_step(self, level: int, fading: bool, conditional: bool):
        cfg, G, D, strategy = self.cfg, self.G, self.D, self.strategy
        n_rep = float(self.replicas)

        def d_step(reals_u8, labels, z_d, u):
            reals = tfu.to_float_images(reals_u8)  # float32, as the mixed-precision policy says
            if fading:
                reals = fade_reals(reals, D.alpha)
            # fakes from the current G (float32, no gradient), outside the tape
            fakes = G(z_d, labels, level=level, fading=fading, alpha=G.alpha, training=True)
            fakes = tf.cast(fakes, tf.float32)
            with tf.GradientTape() as tape:
                loss, stats = d_loss(D, reals, fakes, labels, u, cfg, level, fading, D.alpha)
                per_replica = loss / n_rep  # recorded on the tape: the gradient starts here
            grads = tape.gradient(per_replica, D.trainable_variables)
            bad = self._apply(self.opt_d, loss, grads, D.trainable_variables)
            stats = {k: v for k, v in stats.items() if v is not None}
            return {"loss_d": loss, "bad_d": bad, **stats}

        def g_step(labels, z_g):
            with tf.GradientTape() as tape:
                fakes = G(z_g, labels, level=level, fading=fading, alpha=G.alpha, training=True)
                loss = g_loss(D, fakes, labels, cfg, level, fading, D.alpha)
                per_replica = loss / n_rep
            grads = tape.gradient(per_replica, G.trainable_variables)
            bad = self._apply(self.opt_g, loss, grads, G.trainable_variables)
            return {"loss_g": loss, "bad_g": bad}

        def step(reals, labels, z_d, z_g, u, ema_beta):
            out = strategy.run(d_step, args=(reals, labels, z_d, u))
            if self.G_ema is not None:
                tfu.ema_update(self.G_ema.trainable_variables, G.trainable_variables, ema_beta)
                for e, w in self._sn_pairs:  # power-iteration vectors are copied, not averaged
                    e.assign(w)
            out.update(strategy.run(g_step, args=(labels, z_g)))
            return {
                k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                for k, v in out.items()
            }

        # XLA only on one device: merge_call (used to skip bad steps across replicas) cannot
        # be compiled.
        return tf.function(step, jit_compile=bool(cfg.compile) and self.replicas == 1)

    def _apply(self, opt, loss, grads, variables) -> tf.Tensor:
        """Apply ``grads`` unless the loss or any gradient is non-finite or the loss exceeds
        ``max_abs_loss`` on any replica (official: skip the update). Returns 1.0 when skipped."""
        if self.replicas == 1:
            return tfu.apply_if_ok(opt, loss, grads, variables, self.cfg.max_abs_loss)
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        grads, variables = [g for g, _ in pairs], [v for _, v in pairs]
        ok = tfu.update_ok(loss, grads, self.cfg.max_abs_loss)
        ctx = tf.distribute.get_replica_context()
        bad = tf.cast(
            ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(~ok, tf.float32)) > 0, tf.float32
        )

        def cross(distribution, grads, bad):
            # A cond whose branch calls merge_call must run in cross-replica context (the
            # pattern Keras' LossScaleOptimizer uses); ``bad`` is equal on every replica.
            first = distribution.experimental_local_results(bad)[0]

            def do():
                distribution.extended.call_for_each_replica(opt.apply, args=(grads, variables))
                return tf.constant(True)

            tf.cond(first > 0, lambda: tf.constant(False), do)

        ctx.merge_call(cross, args=(grads, bad))
        return bad

    # ------------------------------------------------------------- the rest
    def generate(self, latents: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        G = self.G_ema if self.G_ema is not None else self.G
        return generate(G, latents, labels, self.level, self.alpha if self.fading else 1.0, 16)

    def state_is_finite(self) -> bool:
        variables = [v for m in self.nets() for v in m.weights]
        variables += list(self.opt_g.variables) + list(self.opt_d.variables)
        return tfu.all_finite(variables)

    def peak_mem_mb(self) -> float:
        return tfu.peak_mem_mb()

    def _checkpoint(self, generator_only: bool = False) -> tf.train.Checkpoint:
        """Networks as explicit ``{torch key: variable}`` dicts (``networks.model_variables``)."""
        parts: dict = {"G": model_variables(self.G)}
        if self.G_ema is not None:
            parts["G_ema"] = model_variables(self.G_ema)
        if not generator_only:
            parts.update(D=model_variables(self.D), opt_g=self.opt_g, opt_d=self.opt_d)
        return tf.train.Checkpoint(**parts)

    def save(self, path: Path, meta: CheckpointMeta) -> None:
        """A checkpoint folder written under a temporary name and renamed when complete."""
        path = Path(path)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        try:
            self._checkpoint().write(str(tmp / CKPT_PREFIX))
            info = {
                **asdict(meta),
                "format": FORMAT,
                "img_channels": self.img_channels,
                "num_classes": self.num_classes,
            }
            atomic_write_json(tmp / META, info)
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give it a plain folder's mode
            if path.exists():  # the same kimg written again after a resume: replace it
                shutil.rmtree(path)
            os.rename(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def load(self, path: Path, generator_only: bool = False) -> CheckpointMeta:
        meta = read_meta(path)
        try:
            status = self._checkpoint(generator_only).read(str(Path(path) / CKPT_PREFIX))
            if generator_only:
                status.expect_partial().assert_existing_objects_matched()
            else:
                status.assert_existing_objects_matched()
        except Exception as exc:  # truncated data file, missing index, other shapes
            raise file_error(path, exc, "checkpoint") from exc
        return CheckpointMeta.from_dict(meta)


def read_meta(path: str | os.PathLike) -> dict:
    """``meta.json`` of a checkpoint folder, with one-line errors for anything else."""
    path = Path(path)
    if not (path / f"{CKPT_PREFIX}.index").is_file():
        raise UserError(
            f"{path} is not a progan_tf checkpoint folder (no {CKPT_PREFIX}.index); a PyTorch "
            "run is sampled with python -m progan_torch.sample."
        )
    try:
        meta = read_json(path / META)
    except (OSError, ValueError) as exc:
        raise file_error(path / META, exc, "checkpoint metadata") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{path} is not a progan_tf checkpoint of format {FORMAT}.")
    return meta


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
