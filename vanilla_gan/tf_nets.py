"""Keras 3 (TensorFlow backend) DCGAN / SN-DCGAN, built from the same layer lists as torch.

Images are NHWC here; every weight keeps the information torch has, and
``convert.py`` maps the layouts. Three things differ from a naive Keras port on
purpose:

* **Spectral norm** is the project's one Keras spectral normalisation
  (``gancore.tf_utils.add_spectral_norm`` / ``spectral_normalize``), torch's
  ``parametrizations.spectral_norm`` algorithm, not ``keras.layers.SpectralNormalization``
  (Keras 3.15's wrapper, in training mode, *assigns* ``kernel / sigma`` back into the
  kernel variable, so the optimiser updates an already-normalised kernel and sigma never
  enters the gradient). The weight matrix is taken in torch's layout ((out, in*kh*kw);
  ConvTranspose: dim 1 first) so u and v copy across one-to-one.
* **BatchNorm** is :class:`TorchBatchNorm`: Keras' ``BatchNormalization`` (same variables)
  with torch's eps 1e-5 and momentum (Keras' 0.9 = 1 - torch's 0.1), whose training-mode
  call updates the moving variance with the unbiased batch variance as torch does (Keras'
  own uses the biased one), and in a plain graph runs TensorFlow's fused kernel.
* **Flatten order**: before a dense layer the NHWC activation is permuted to NCHW
  and then flattened (and the reverse after G's dense layer), so dense weights are
  the same matrix in both frameworks.
"""

from __future__ import annotations

import numpy as np

from gancore import tf_utils as tfu  # before keras: TensorFlow's quiet start-up
from gancore.tf_utils import keras
from vanilla_gan import tf_gemm
from vanilla_gan.arch import Layer, discriminator_layers, generator_layers, layer_paths
from vanilla_gan.config import TrainConfig

ops = keras.ops

INIT_STD = 0.02  # Radford et al. 2016, section 4
BN_EPS = 1e-5  # torch default
BN_MOMENTUM = 0.9  # = 1 - torch's 0.1


def _keras_padding(spec: Layer) -> str:
    """Keras padding equivalent to torch's symmetric ``pad`` for this layer (even inputs)."""
    if spec.pad == 0:
        return "valid"
    if spec.kind == "conv" and spec.k - spec.stride == 2 * spec.pad:
        return "same"
    if spec.kind == "convT" and spec.k - 2 * spec.pad == spec.stride:
        return "same"
    raise NotImplementedError(f"no Keras padding equals torch pad={spec.pad} for {spec}")


class TorchStyle(keras.layers.Layer):
    """Dense / Conv2D / Conv2DTranspose with torch padding and an optional spectral norm.

    Kernel layouts are Keras's: dense (in, out), conv (kh, kw, in, out), transposed
    conv (kh, kw, out, in). ``path`` ("dense" / "gemm", kept as ``fast_path``): compute a
    float32 conv layer as matrix multiplies (:mod:`vanilla_gan.tf_gemm`), the same function.
    """

    def __init__(self, spec: Layer, path: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.fast_path = path
        self.padding = _keras_padding(spec) if spec.kind != "dense" else None

    def build(self, input_shape) -> None:
        s = self.spec
        if s.kind == "dense":
            shape = (s.in_ch, s.out_ch)
        elif s.kind == "conv":
            shape = (s.k, s.k, s.in_ch, s.out_ch)
        else:
            shape = (s.k, s.k, s.out_ch, s.in_ch)
        init = keras.initializers.RandomNormal(0.0, INIT_STD)
        self.kernel = self.add_weight(name="kernel", shape=shape, initializer=init)
        self.bias = (
            self.add_weight(name="bias", shape=(s.out_ch,), initializer="zeros") if s.bias else None
        )
        if s.sn:
            tfu.add_spectral_norm(self, self.weight_matrix(self.kernel.value))

    def _matrix_shape(self) -> tuple[int, int]:
        s = self.spec
        if s.kind == "dense":
            return s.out_ch, s.in_ch
        return s.out_ch, s.in_ch * s.k * s.k

    def weight_matrix(self, kernel):
        """The kernel as torch's spectral_norm sees it: (out, in*kh*kw) in torch order."""
        kind = self.spec.kind
        if kind == "dense":
            w = ops.transpose(kernel)
        elif kind == "conv":
            w = ops.transpose(kernel, (3, 2, 0, 1))  # (out, in, kh, kw)
        else:
            w = ops.transpose(kernel, (2, 3, 0, 1))  # torch (in, out, kh, kw) permuted dim 1 first
        return ops.reshape(w, self._matrix_shape())

    def effective_kernel(self, training: bool = False):
        if not self.spec.sn:
            return self.kernel
        kernel = ops.convert_to_tensor(self.kernel)
        return tfu.spectral_normalize(
            kernel, self.weight_matrix(kernel), self.sn_u, self.sn_v, training
        )

    def call(self, x, training: bool = False):
        k = self.effective_kernel(training)
        s = self.spec
        fast = self.fast_path if x.dtype == "float32" else None
        if s.kind == "dense":
            y = ops.matmul(x, k)
        elif fast == "dense":
            conv = tf_gemm.conv_dense if s.kind == "conv" else tf_gemm.conv_transpose_dense
            y = conv(x, k)
        elif fast == "gemm":
            conv = tf_gemm.conv_gemm if s.kind == "conv" else tf_gemm.conv_transpose_gemm
            # a read of the variable: custom_gradient functions take tensors, not variables
            y = conv(x, tfu.tf.identity(k))
        elif s.kind == "conv":
            y = ops.conv(x, k, strides=s.stride, padding=self.padding)
        else:
            y = ops.conv_transpose(x, k, strides=s.stride, padding=self.padding)
        if self.bias is not None:
            y = y + self.bias
        return y


class TorchBatchNorm(keras.layers.BatchNormalization):
    """``BatchNormalization`` with torch's training-mode semantics, Keras' variables.

    Training mode normalises with the biased batch variance (both frameworks) and moves the
    running statistics as torch does: ``running = 0.9 running + 0.1 batch``, the variance's
    batch term unbiased (``n / (n - 1)`` times the biased one, ``n`` values per channel).
    Eval mode is Keras' own (the moving statistics).

    ``fused``: training mode runs TensorFlow's ``FusedBatchNormV3`` kernel (one operation
    forward and one backward, oneDNN's on a CPU), which computes exactly those running
    statistics. It is for a plain graph: there the DCGAN 64x64 step runs 1.12x faster than
    with the op-by-op form, while under XLA, which fuses the op-by-op form itself, the op-by-op
    form is 1.06x the fused kernel (Intel Xeon, 2 cores: ``python -m vanilla_gan.bench --res
    64 --models dcgan --frameworks tf-graph,tf-graph-opbn,tf-xla,tf-xla-fusedbn --steps 6
    --warmup 2 --rounds 3``); hence ``fused=False`` (the same function written with moments)
    for an XLA-compiled step.
    """

    def __init__(self, fused: bool = False, **kwargs) -> None:
        kwargs.setdefault("axis", -1)
        kwargs.setdefault("momentum", BN_MOMENTUM)
        kwargs.setdefault("epsilon", BN_EPS)
        kwargs.setdefault("gamma_initializer", keras.initializers.RandomNormal(1.0, INIT_STD))
        super().__init__(**kwargs)
        self.fused = fused

    def get_config(self) -> dict:
        return {**super().get_config(), "fused": self.fused}

    def call(self, inputs, training=None, mask=None):
        last = self.axis in (-1, len(inputs.shape) - 1)
        if not (training and self.trainable) or mask is not None or not last:
            return super().call(inputs, training=training, mask=mask)
        tf = tfu.tf
        x = inputs
        gamma = tf.cast(self.gamma, tf.float32)  # the variables are float32 (bf16 policy too)
        beta = tf.cast(self.beta, tf.float32)
        if self.fused:
            x4 = x if x.shape.rank == 4 else tf.reshape(x, [-1, 1, 1, x.shape[-1]])
            y, mean, var, *_ = tf.raw_ops.FusedBatchNormV3(
                x=x4,
                scale=gamma,
                offset=beta,
                mean=tf.convert_to_tensor(self.moving_mean),
                variance=tf.convert_to_tensor(self.moving_variance),
                epsilon=self.epsilon,
                exponential_avg_factor=1.0 - self.momentum,  # returns the moved statistics
                data_format="NHWC",
                is_training=True,
            )
            self.moving_mean.assign(mean)
            self.moving_variance.assign(var)
            return y if x.shape.rank == 4 else tf.reshape(y, tf.shape(x))
        wide = tf.cast(x, tf.float32)  # statistics in float32 under bf16, as Keras' own
        axes = list(range(x.shape.rank - 1))
        mean, var = tf.nn.moments(wide, axes)
        n = tf.cast(tf.size(wide) // tf.shape(wide)[-1], tf.float32)
        unbiased = var * n / tf.maximum(n - 1.0, 1.0)
        m = self.momentum
        self.moving_mean.assign(self.moving_mean * m + mean * (1.0 - m))
        self.moving_variance.assign(self.moving_variance * m + unbiased * (1.0 - m))
        y = tf.nn.batch_normalization(wide, mean, var, beta, gamma, self.epsilon)
        return tf.cast(y, self.compute_dtype)


def _keras_layers(
    specs: list[Layer], fused_bn: bool = False, gemm: bool = False, in_size: int = 0
) -> list[keras.layers.Layer]:
    out: list[keras.layers.Layer] = []
    for spec, path in zip(specs, layer_paths(specs, in_size, enabled=gemm)):
        k = spec.kind
        if k in ("dense", "conv", "convT"):
            out.append(TorchStyle(spec, path=path))
        elif k == "bn":
            out.append(TorchBatchNorm(fused=fused_bn))
        elif k == "relu":
            out.append(keras.layers.ReLU())
        elif k == "lrelu":
            out.append(keras.layers.LeakyReLU(negative_slope=spec.slope))
        elif k == "tanh":
            out.append(keras.layers.Activation("tanh"))
        elif k == "unflatten":
            # features are in torch (C, H, W) order -> NHWC
            out += [
                keras.layers.Reshape((spec.out_ch, spec.size, spec.size)),
                keras.layers.Permute((2, 3, 1)),
            ]
        elif k == "flatten":
            out += [keras.layers.Permute((3, 1, 2)), keras.layers.Flatten()]
        else:
            raise ValueError(f"unknown layer kind {k!r}")
    return out


def build_generator(
    cfg: TrainConfig,
    channels: int,
    name: str = "generator",
    fused_bn: bool = False,
    gemm: bool = False,
) -> keras.Sequential:
    """``fused_bn``: :class:`TorchBatchNorm`'s fused kernel; ``gemm``: the matrix-multiply
    paths of :mod:`vanilla_gan.tf_gemm` (both for a CPU step that is not XLA-compiled)."""
    specs = generator_layers(cfg.model, cfg.res, cfg.width, cfg.z_dim, channels, sn=cfg.sn_g)
    layers = _keras_layers(specs, fused_bn, gemm)
    return keras.Sequential([keras.Input((cfg.z_dim,)), *layers], name=name)


def build_discriminator(
    cfg: TrainConfig,
    channels: int,
    name: str = "discriminator",
    fused_bn: bool = False,
    gemm: bool = False,
) -> keras.Sequential:
    specs = discriminator_layers(
        cfg.model, cfg.res, cfg.width, channels, sn=cfg.sn_d, slope=cfg.lrelu_slope
    )
    layers = _keras_layers(specs, fused_bn, gemm, in_size=cfg.res) + [keras.layers.Reshape(())]
    return keras.Sequential([keras.Input((cfg.res, cfg.res, channels)), *layers], name=name)


def build_models(cfg: TrainConfig, channels: int, fused_bn: bool = False, gemm: bool = False):
    """G then D (seed with ``keras.utils.set_random_seed`` first); ``fused_bn`` and ``gemm``
    as in :func:`build_generator`."""
    return (
        build_generator(cfg, channels, fused_bn=fused_bn, gemm=gemm),
        build_discriminator(cfg, channels, fused_bn=fused_bn, gemm=gemm),
    )


def count_params(model: keras.Model) -> int:
    """Trainable parameters, comparable with torch's ``parameters()`` count."""
    return int(sum(np.prod(v.shape) for v in model.trainable_weights))
