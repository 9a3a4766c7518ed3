"""TensorFlow / Keras utilities every TF trainer uses, once: quiet start-up, device, threads,
mixed precision, reals, EMA, the skip-if-non-finite update, XLA's CPU runtime, memory.

With :mod:`gancore.torch_utils` this is one of the two ``gancore`` modules that import a
framework; only TensorFlow code imports it. The mixed-precision policy is the one written in
:mod:`gancore.torch_utils` (``off`` / ``bf16`` / ``auto``), realised with Keras'
``mixed_bfloat16`` policy: layers compute in bf16 and keep float32 variables; the trainers
hand float32 reals and fakes to D, form the penalty's mix in float32 and reduce every loss in
float32, as the torch trainers do under autocast.
"""

from __future__ import annotations

import contextlib
import os
import sys

from gancore.errors import UserError
from gancore.hardware import cpu_bf16_support, peak_rss_mb
from gancore.tf_import import load_triton_first


@contextlib.contextmanager
def quiet_native_stderr():
    """Send file descriptor 2 to /dev/null for the block (Python exceptions still propagate).

    TensorFlow 2.21 prints INFO lines at import and "failed call to cuInit" on machines without
    a GPU through absl before its log level is read, so TF_CPP_MIN_LOG_LEVEL cannot hide them.
    Verbose on request: TF_CPP_MIN_LOG_LEVEL=0 (or 1) leaves stderr alone.
    """
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3") in ("0", "1"):
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


load_triton_first()  # a process that also runs torch must load triton before TensorFlow
with quiet_native_stderr():
    import keras
    import tensorflow as tf

    tf.config.list_physical_devices("GPU")  # the CUDA probe, and its messages, happen here

AMP_MODES = ("off", "bf16", "auto")
LEGACY_RUNTIME_FLAG = "--xla_cpu_use_thunk_runtime=false"
LEGACY_RUNTIME_TF = ("2.21.",)  # versions the flag was measured on (an unknown flag aborts XLA)


try:  # absl's "WARNING: All log messages before absl::InitializeLog()" and friends
    from absl import logging as _absl_logging

    _absl_logging.set_verbosity(_absl_logging.ERROR)
except ImportError:  # pragma: no cover - absl always ships with TensorFlow
    pass
tf.get_logger().setLevel("ERROR")


def select_device(name: str) -> None:
    """Make only the requested device visible; must run before TF touches a device."""
    gpus = tf.config.list_physical_devices("GPU")
    if name == "cpu":
        tf.config.set_visible_devices([], "GPU")
    elif name == "cuda" or name.startswith("cuda:"):
        if not gpus:
            raise UserError(
                f"--device {name} asked for a GPU but TensorFlow sees none; use --device cpu."
            )
        try:
            idx = int(name.split(":")[1]) if ":" in name else 0
        except ValueError:
            raise UserError(f"--device {name}: expected cuda:N with N a number.") from None
        if idx >= len(gpus):
            raise UserError(f"--device {name}: only {len(gpus)} GPU(s) visible.")
        tf.config.set_visible_devices([gpus[idx]], "GPU")
    elif name != "auto":
        raise UserError(f"--device must be auto, cpu, cuda or cuda:N, got {name!r}.")


def set_threads(threads: int) -> None:
    """``threads`` > 0 caps TensorFlow's thread pools. Only possible before TF's runtime starts
    (its first op, or a device listing such as :func:`has_gpu`); after that TF keeps its pools,
    which is harmless when they already have that size (several trainers in one process, as in
    the tests) and said on stderr otherwise."""
    if threads <= 0:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TF already initialised in this process: keep its pools
        have = (
            tf.config.threading.get_intra_op_parallelism_threads(),
            tf.config.threading.get_inter_op_parallelism_threads(),
        )
        if have != (threads, threads):
            print(
                f"warning: --threads {threads} not applied: TensorFlow had already started "
                f"with {have[0] or 'all'} intra-op / {have[1] or 'all'} inter-op threads",
                file=sys.stderr,
            )


def has_gpu() -> bool:
    return bool(tf.config.list_logical_devices("GPU"))


def amp_policy(mode: str) -> str | None:
    """The Keras policy of the project's ``--amp`` mode, or None for float32."""
    if mode not in AMP_MODES:
        raise UserError(f"--amp must be one of {AMP_MODES}, got {mode!r}.")
    if mode == "auto":
        mode = "bf16" if (has_gpu() or cpu_bf16_support()) else "off"
    return "mixed_bfloat16" if mode == "bf16" else None


def set_amp(mode: str) -> str | None:
    """Apply the policy globally (Keras creates layers under it); returns its name."""
    policy = amp_policy(mode)
    keras.mixed_precision.set_global_policy(policy or "float32")
    return policy


def to_float_images(images_u8) -> tf.Tensor:
    """uint8 NHWC -> float32 in [-1, 1] (official ``adjust_dynamic_range([0,255], [-1,1])``)."""
    return tf.cast(images_u8, tf.float32) * (2.0 / 255.0) - 1.0


def ema_update(ema_vars, vars_, beta) -> None:
    """``ema = lerp(w, ema, beta)`` (official ``setup_as_moving_average_of``)."""
    for e, w in zip(ema_vars, vars_, strict=True):
        e.assign(w + (e - w) * beta)


def update_ok(loss, grads, max_abs_loss: float):
    """In-graph: True when the loss and every gradient are finite and |loss| <= the limit."""
    finite = [
        tf.reduce_all(tf.math.is_finite(tf.cast(g, tf.float32))) for g in grads if g is not None
    ]
    loss = tf.cast(loss, tf.float32)
    ok = tf.logical_and(tf.math.is_finite(loss), tf.abs(loss) <= max_abs_loss)
    return tf.reduce_all(tf.stack([ok, *finite]))


def apply_if_ok(opt, loss, grads, variables, max_abs_loss: float):
    """Apply the update only when :func:`update_ok`; returns 1.0 when skipped (in-graph)."""
    pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
    ok = update_ok(loss, [g for g, _ in pairs], max_abs_loss)

    def apply():
        opt.apply([g for g, _ in pairs], [v for _, v in pairs])
        return tf.constant(0.0)

    return tf.cond(ok, apply, lambda: tf.constant(1.0))


class TF1Adam(keras.optimizers.Adam):
    """Keras' Adam (TF1 ``tf.train.AdamOptimizer`` semantics, see
    ``progan_tf.training.make_optimizer``) whose per-variable update is TF1's fused
    ``ResourceApplyAdam`` kernel, the one the official ``AdamOptimizer`` runs: the same
    formulas (``lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)``; ``m += (g - m)(1 - b1)``;
    ``v += (g^2 - v)(1 - b2)``; ``w -= lr_t m / (sqrt(v) + eps)``), the same slots and
    counter (checkpoints are interchangeable), in one operation per variable instead of
    about fifteen; on the 2-core development CPU the ProGAN step at 4x4 and 8x8 is
    dominated by such small operations. With more than one replica it keeps Keras' own
    update (which runs inside ``tf.distribute``'s per-variable update)."""

    def update_step(self, gradient, variable, learning_rate):
        if tf.distribute.get_strategy().num_replicas_in_sync > 1 or self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        t = tf.cast(self.iterations + 1, dtype)
        b1, b2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        i = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[i].handle,
            v=self._velocities[i].handle,
            beta1_power=tf.pow(b1, t),
            beta2_power=tf.pow(b2, t),
            lr=tf.cast(learning_rate, dtype),
            beta1=b1,
            beta2=b2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )


def all_finite(variables) -> bool:
    """Every variable finite (one host read)."""
    checks = [
        tf.reduce_all(tf.math.is_finite(v))
        for v in variables
        if tf.as_dtype(v.dtype).is_floating and int(tf.size(v)) > 0
    ]
    return bool(tf.reduce_all(tf.stack(checks)).numpy()) if checks else True


def peak_mem_mb() -> float:
    if has_gpu():
        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    return peak_rss_mb()


def use_legacy_xla_cpu_runtime() -> bool:
    """Ask XLA's CPU backend for its older runtime (faster for these models on the 2-core CPU
    this project is developed on). XLA reads ``XLA_FLAGS`` once, at its first compilation, so
    this works before the first XLA-compiled step. Returns whether the flag is now set."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_use_thunk_runtime" in flags:
        return LEGACY_RUNTIME_FLAG in flags.split()
    if not tf.__version__.startswith(LEGACY_RUNTIME_TF):
        return False
    os.environ["XLA_FLAGS"] = f"{flags} {LEGACY_RUNTIME_FLAG}".strip()
    return True


# ------------------------------------------------------------------------- spectral norm
# One Keras spectral normalisation for every TF model of the project (vanilla_gan's SN-DCGAN,
# progan_tf's SN-ProGAN), the algorithm of torch's ``parametrizations.spectral_norm`` (and
# Miyato et al. 2018, Algorithm 1) so that the two frameworks train alike and convert one to
# one: the raw weight W is the trainable variable and W / sigma(W) is used in the forward pass,
# gradients flow through sigma with u and v held constant; u (rows) and v (columns) of W as
# torch's (out, in*kh*kw) matrix are non-trainable state, normalised and warmed up by 15 power
# iterations at creation; each training forward runs one iteration, u <- normalize(W v) then
# v <- normalize(W^T u) (torch's order), and sigma = u . W v. Outside training u, v are only
# read. Keras 3's own SpectralNormalization wrapper is a different algorithm (it writes
# W / sigma back into the kernel), so it is not used.
SN_EPS = 1e-12  # torch's F.normalize eps in spectral_norm
SN_WARMUP = 15  # power iterations torch runs when the parametrization is registered


def _sn_normalize(x: tf.Tensor) -> tf.Tensor:
    return x / tf.maximum(tf.norm(x), SN_EPS)


def _power_iteration(matrix: tf.Tensor, v: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    u = _sn_normalize(tf.linalg.matvec(matrix, v))
    return u, _sn_normalize(tf.linalg.matvec(matrix, u, transpose_a=True))


def add_spectral_norm(layer: keras.layers.Layer, matrix: tf.Tensor) -> None:
    """Create ``layer.sn_u`` / ``layer.sn_v`` for the weight whose torch-layout matrix (rows =
    output units) is ``matrix`` (the weight's current value, any float dtype), drawn N(0, 1),
    normalised and warmed up. Not trainable, never autocast, and kept from the first replica
    under a distribution strategy (every replica computes the same vectors)."""
    matrix = tf.cast(matrix, tf.float32)
    rows, cols = int(matrix.shape[0]), int(matrix.shape[1])
    normal = keras.initializers.RandomNormal(0.0, 1.0)
    opts = {"initializer": normal, "trainable": False, "autocast": False}
    opts["aggregation"] = "only_first_replica"
    layer.sn_u = layer.add_weight(name="sn_u", shape=(rows,), **opts)
    layer.sn_v = layer.add_weight(name="sn_v", shape=(cols,), **opts)
    u, v = _sn_normalize(layer.sn_u.value), _sn_normalize(layer.sn_v.value)
    for _ in range(SN_WARMUP):
        u, v = _power_iteration(matrix, v)
    layer.sn_u.assign(u)
    layer.sn_v.assign(v)


def spectral_normalize(weight, matrix, u_var, v_var, training: bool) -> tf.Tensor:
    """``weight / sigma(W)`` (same dtype as ``weight``); ``matrix`` is W as torch's matrix (a
    view of ``weight``, so the gradient reaches the weight through sigma too). Float32 math;
    one power iteration, written back to ``u_var`` / ``v_var``, when ``training``."""
    matrix = tf.cast(matrix, tf.float32)
    if training:
        u, v = _power_iteration(tf.stop_gradient(matrix), tf.convert_to_tensor(v_var))
        u_var.assign(u)
        v_var.assign(v)
    else:
        u, v = tf.convert_to_tensor(u_var), tf.convert_to_tensor(v_var)
    u, v = tf.stop_gradient(u), tf.stop_gradient(v)
    sigma = tf.tensordot(u, tf.linalg.matvec(matrix, v), 1)
    return weight / tf.cast(sigma, weight.dtype)
