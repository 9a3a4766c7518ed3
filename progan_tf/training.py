"""The ProGAN training step and its state: networks, optimisers, EMA, schedule position.

One minibatch, in the official order (``train.py`` of tkarras/progressive_growing_of_gans):
D step on fresh reals and latents, EMA update of G_ema from the *current* G
(official ``Gs_update_op`` runs beside the D step, before G moves), then G step on
fresh latents. The step is one ``tf.function`` (``jit_compile`` when ``cfg.compile``),
traced once per resolution level; alpha and the learning rate are variables. Like the
official graph (which always evaluates ``lerp(old, new, alpha)`` from ``lod``), the step
keeps the old path during stabilisation too (alpha = 1 makes it a no-op): that costs a
1x1 conv and a resampling per network but halves the traces (one per resolution).

Random numbers (latents, GP mixing factors) are inputs of the step, so a parity test
can feed torch and TF the same values; the training loop draws them with numpy from
a key ``(seed, nimg)``, which makes the "RNG state" a pure function of the schedule
position and resume exact.

Multi-device: under ``tf.distribute.MirroredStrategy`` each replica gets a slice of
the global batch; losses are divided by the replica count and Keras sums gradients
across replicas, so the update equals the single-device one with the whole batch
(minibatch stddev groups stay inside a replica, as in the official multi-GPU code).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from gancore import latents
from gancore.latents import RandomSource  # noqa: F401 (re-exported for callers)
from progan_common.config import ProGANConfig
from progan_common.schedule import ScheduleState
from progan_tf.loss import d_loss, fade_reals, g_loss
from progan_tf.networks import build_networks


def resolve_amp(cfg: ProGANConfig) -> str | None:
    """Keras mixed-precision policy name, or None. ``auto``: bf16 on GPU, off on CPU."""
    has_gpu = bool(tf.config.list_logical_devices("GPU"))
    if cfg.amp == "off" or (cfg.amp == "auto" and not has_gpu):
        return None
    if cfg.amp in ("auto", "bf16"):
        return "mixed_bfloat16"
    return "mixed_float16"


def make_optimizer(cfg: ProGANConfig, loss_scale: bool) -> keras.optimizers.Optimizer:
    """Adam(lr, beta1 0, beta2 0.99, eps 1e-8) as the paper; Keras' epsilon sits where the
    official ``tf.train.AdamOptimizer``'s does (on the bias-corrected denominator)."""
    opt = keras.optimizers.Adam(cfg.lr, beta_1=cfg.beta1, beta_2=cfg.beta2, epsilon=cfg.adam_eps)
    return keras.optimizers.LossScaleOptimizer(opt) if loss_scale else opt


def ema_update(g_ema: keras.Model, g: keras.Model, beta: float) -> None:
    """Official ``Gs.setup_as_moving_average_of(G, beta)``: ``ema = lerp(w, ema, beta)``."""
    for e, w in zip(g_ema.trainable_variables, g.trainable_variables, strict=True):
        e.assign(w + (e - w) * beta)


class Trainer:
    """Networks, optimisers and the compiled step; the training loop lives in ``train.py``."""

    def __init__(
        self,
        cfg: ProGANConfig,
        img_channels: int,
        num_classes: int = 0,
        strategy: tf.distribute.Strategy | None = None,
    ) -> None:
        self.cfg, self.img_channels, self.num_classes = cfg, img_channels, num_classes
        self.strategy = strategy or tf.distribute.get_strategy()
        self.replicas = self.strategy.num_replicas_in_sync
        self.amp = resolve_amp(cfg)
        if self.amp:
            keras.mixed_precision.set_global_policy(self.amp)
        with self.strategy.scope():
            self.G, self.D, self.G_ema = build_networks(cfg, img_channels, num_classes)
            scale = self.amp == "mixed_float16"
            self.opt_g = make_optimizer(cfg, scale)
            self.opt_d = make_optimizer(cfg, scale)
            self.opt_g.build(self.G.trainable_variables)
            self.opt_d.build(self.D.trainable_variables)
            # Schedule position and the optimiser-reset key, saved with the checkpoint.
            self.nimg = tf.Variable(0, dtype=tf.int64, trainable=False, name="nimg")
            self.opt_key = tf.Variable([-1, -1], dtype=tf.int32, trainable=False, name="opt_key")
        self._steps: dict[tuple, tf.types.experimental.PolymorphicFunction] = {}

    # ----------------------------------------------------------------- state
    def nets(self) -> list[keras.Model]:
        return [m for m in (self.G, self.D, self.G_ema) if m is not None]

    def set_schedule_state(self, state: ScheduleState) -> bool:
        """Level, alpha and lr from the schedule; reset Adam when the official key changes.

        Returns True when the optimisers were reset.
        """
        for m in self.nets():
            m.level.assign(state.level)
            m.alpha.assign(state.alpha)
        for opt in (self.opt_g, self.opt_d):
            _inner(opt).learning_rate.assign(state.lr)
        key = list(state.optimizer_key)
        old = [int(v) for v in self.opt_key.numpy()]
        reset = old != [-1, -1] and old != key and self.cfg.reset_optimizer
        if reset:
            self.reset_optimizers()
        self.opt_key.assign(key)
        return reset

    def reset_optimizers(self) -> None:
        """Zero Adam's moments and iteration count (official ``reset_optimizer_state``)."""
        for opt in (self.opt_g, self.opt_d):
            inner = _inner(opt)
            for v in inner.variables:
                if v is not inner._learning_rate and "learning_rate" not in v.path:
                    v.assign(tf.zeros(v.shape, v.dtype))

    # ------------------------------------------------------------------ step
    def train_step(
        self,
        reals: np.ndarray,
        labels: np.ndarray | None,
        z_d: np.ndarray,
        z_g: np.ndarray,
        u: np.ndarray,
        level: int,
        fading: bool | None = None,
        ema_beta: float | None = None,
    ) -> dict[str, float]:
        """One minibatch from outside-supplied data and random numbers.

        ``reals``: float NHWC in [-1, 1] at the level's resolution, *not yet faded*;
        ``labels``: one-hot (N, classes) or None; ``z_d``/``z_g``: latents for the D and G
        steps; ``u``: (N,) GP mixing factors. ``fading`` None (the loop's choice) evaluates
        the fade whenever level > 0 (one trace per level); False skips the old path.
        ``ema_beta``: this step's EMA decay (``cfg.ema_beta_at``; default ``cfg.ema_beta``),
        passed as a tensor so a changing value never retraces. Returns the losses as floats.
        """
        fading = level > 0 if fading is None else bool(fading) and level > 0
        key = (int(level), fading, labels is not None)
        if key not in self._steps:
            self._steps[key] = self._make_step(*key)
        args = (reals, labels, z_d, z_g, u)
        if self.replicas > 1:
            args = tuple(self._distribute(a) for a in args)
        else:
            args = tuple(None if a is None else tf.convert_to_tensor(a) for a in args)
        beta = tf.constant(self.cfg.ema_beta if ema_beta is None else ema_beta, tf.float32)
        out = self._steps[key](*args, beta)
        return {k: float(v) for k, v in out.items()}

    def _distribute(self, array: np.ndarray | None):
        if array is None:
            return None
        n = array.shape[0]
        if n % self.replicas:
            raise ValueError(f"batch {n} is not divisible by {self.replicas} replicas")
        per = n // self.replicas

        def part(ctx: tf.distribute.InputContext):
            i = ctx.replica_id_in_sync_group
            return tf.convert_to_tensor(array[i * per : (i + 1) * per])

        return self.strategy.experimental_distribute_values_from_function(part)

    def _make_step(self, level: int, fading: bool, conditional: bool):
        cfg, G, D, strategy = self.cfg, self.G, self.D, self.strategy
        n_rep = float(self.replicas)
        dtype = keras.mixed_precision.global_policy().compute_dtype

        def d_step(reals, labels, z_d, u):
            reals = tf.cast(reals, dtype)
            if fading:
                reals = fade_reals(reals, D.alpha)
            with tf.GradientTape() as tape:
                loss, stats = d_loss(G, D, cfg, reals, labels, z_d, u, level, fading)
                scaled = _scale(self.opt_d, loss / n_rep)
            grads = tape.gradient(scaled, D.trainable_variables)
            bad = self._apply(self.opt_d, grads, D.trainable_variables)
            return {"loss_d": loss, "bad_d": bad, **stats}

        def g_step(labels, z_g):
            with tf.GradientTape() as tape:
                loss = g_loss(G, D, cfg, labels, z_g, level, fading)
                scaled = _scale(self.opt_g, loss / n_rep)
            grads = tape.gradient(scaled, G.trainable_variables)
            bad = self._apply(self.opt_g, grads, G.trainable_variables)
            return {"loss_g": loss, "bad_g": bad}

        def step(reals, labels, z_d, z_g, u, ema_beta):
            out = strategy.run(d_step, args=(reals, labels, z_d, u))
            if self.G_ema is not None:
                ema_update(self.G_ema, G, ema_beta)  # cross-replica context: all copies
            out.update(strategy.run(g_step, args=(labels, z_g)))
            return {
                k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                for k, v in out.items()
            }

        # XLA only on one device: merge_call (used to skip bad steps across replicas) cannot
        # be compiled.
        return tf.function(step, jit_compile=bool(cfg.compile) and self.replicas == 1)

    def _apply(self, opt, grads, variables) -> tf.Tensor:
        """Apply ``grads`` unless any is non-finite anywhere (official: skip the update).

        Returns 1.0 when skipped. With fp16 the LossScaleOptimizer does the skipping
        (and lowers its scale); we only count.
        """
        # Blocks of other levels get no gradient; Adam leaves them (and their moments) alone.
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        grads, variables = [g for g, _ in pairs], [v for _, v in pairs]
        bad = tf.add_n(
            [
                tf.reduce_sum(tf.cast(~tf.math.is_finite(tf.cast(g, tf.float32)), tf.float32))
                for g in grads
            ]
        )
        ctx = tf.distribute.get_replica_context()
        bad = tf.cast(ctx.all_reduce(tf.distribute.ReduceOp.SUM, bad) > 0, tf.float32)
        if isinstance(opt, keras.optimizers.LossScaleOptimizer):
            opt.apply(grads, variables)
            return bad
        if self.replicas == 1:

            def do():
                opt.apply(grads, variables)
                return tf.constant(True)

            tf.cond(bad > 0, lambda: tf.constant(False), do)
            return bad

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


def _inner(opt):
    return getattr(opt, "inner_optimizer", opt)


def _scale(opt, loss: tf.Tensor) -> tf.Tensor:
    return opt.scale_loss(loss) if isinstance(opt, keras.optimizers.LossScaleOptimizer) else loss


def step_randoms(cfg: ProGANConfig, nimg: int, batch: int, num_classes: int = 0):
    """Latents for the D and G steps and GP mixing factors for the minibatch at ``nimg``
    (``gancore.latents.step_randoms``: the same numbers progan_torch draws)."""
    return latents.step_randoms(cfg.seed, nimg, batch, cfg.latent_dim)


def to_float_images(images_u8: np.ndarray) -> np.ndarray:
    """uint8 NHWC -> float32 in [-1, 1] (official ``adjust_dynamic_range([0,255], [-1,1])``)."""
    return images_u8.astype(np.float32) * (2.0 / 255.0) - 1.0


def one_hot(labels: np.ndarray | None, num_classes: int) -> np.ndarray | None:
    if labels is None or not num_classes:
        return None
    return np.eye(num_classes, dtype=np.float32)[np.asarray(labels, dtype=np.int64)]


class DatasetSource:
    """Reals from a prepared data set through the position-indexed ``ImageStream``
    (the same images in the same order as progan_torch)."""

    def __init__(self, ds, seed: int, mirror: bool) -> None:
        from datasets.stream import ImageStream

        self.stream = ImageStream(ds, seed=seed, mirror=mirror)
        self.channels = ds.channels
        labels = ds.labels
        self.num_classes = 0 if labels is None else int(labels.max()) + 1

    def batch(self, res: int, start: int, count: int) -> tuple[np.ndarray, np.ndarray | None]:
        return self.stream.batch(res, start, count)
