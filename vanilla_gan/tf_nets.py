"""Keras 3 (TensorFlow backend) DCGAN / SN-DCGAN, built from the same layer lists as torch.

Images are NHWC here; every weight keeps the information torch has, and
``convert.py`` maps the layouts. Three things differ from a naive Keras port on
purpose:

* **Spectral norm** is our own layer switch, not ``keras.layers.SpectralNormalization``.
  Keras 3.15's wrapper, in training mode, *assigns* ``kernel / sigma`` back into
  the kernel variable and then runs the layer with it: the optimiser then updates
  an already-normalised kernel, sigma never enters the gradient, and the stored
  weight itself is repeatedly rescaled. torch's
  ``parametrizations.spectral_norm`` (and Miyato et al. 2018, Algorithm 1)
  instead keeps the raw weight W as the parameter and uses W / sigma(W) in the
  forward pass, so gradients flow *through* sigma (with u, v treated as
  constants). Those are different algorithms with different training dynamics,
  so we implement torch's: one power iteration per training forward
  (u <- normalize(W v), v <- normalize(W^T u), the order torch uses), u and v
  updated only in training, sigma = u . W v with u, v stop-gradient, 15 warm-up
  iterations at creation, and the weight matrix taken in torch's layout
  ((out, in*kh*kw); ConvTranspose: dim 1) so u and v copy across one-to-one.
* **BatchNorm** uses ``epsilon=1e-5, momentum=0.9`` (torch's eps and 1 - torch's
  momentum 0.1). Remaining difference: Keras updates the moving variance with the
  biased batch variance, torch with the unbiased one (factor n / (n - 1)); this
  only affects eval-mode outputs after training, not the forward pass in training.
* **Flatten order**: before a dense layer the NHWC activation is permuted to NCHW
  and then flattened (and the reverse after G's dense layer), so dense weights are
  the same matrix in both frameworks.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from vanilla_gan.arch import Layer, discriminator_layers, generator_layers
from vanilla_gan.config import TrainConfig

INIT_STD = 0.02  # Radford et al. 2016, section 4
BN_EPS = 1e-5  # torch default
BN_MOMENTUM = 0.9  # = 1 - torch's 0.1
SN_EPS = 1e-12  # torch F.normalize eps in spectral_norm
SN_WARMUP = 15  # torch runs 15 power iterations when the parametrization is registered


def _normalize(x):
    return x / ops.maximum(ops.sqrt(ops.sum(x * x)), SN_EPS)


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
    conv (kh, kw, out, in).
    """

    def __init__(self, spec: Layer, **kwargs) -> None:
        super().__init__(**kwargs)
        self.spec = spec
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
            rows, cols = self._matrix_shape()
            normal = keras.initializers.RandomNormal(0.0, 1.0)
            self.sn_u = self.add_weight(
                name="sn_u", shape=(rows,), initializer=normal, trainable=False
            )
            self.sn_v = self.add_weight(
                name="sn_v", shape=(cols,), initializer=normal, trainable=False
            )
            self.sn_u.assign(_normalize(self.sn_u))
            self.sn_v.assign(_normalize(self.sn_v))
            w = self.weight_matrix(self.kernel)
            u, v = self.sn_u.value, self.sn_v.value
            for _ in range(SN_WARMUP):
                u, v = self._power_iteration(w, v)
            self.sn_u.assign(u)
            self.sn_v.assign(v)

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

    @staticmethod
    def _power_iteration(w, v):
        u = _normalize(ops.matmul(w, v))
        v = _normalize(ops.matmul(ops.transpose(w), u))
        return u, v

    def effective_kernel(self, training: bool = False):
        if not self.spec.sn:
            return self.kernel
        w = self.weight_matrix(self.kernel)
        if training:
            u, v = self._power_iteration(w, self.sn_v.value)
            self.sn_u.assign(u)
            self.sn_v.assign(v)
        else:
            u, v = self.sn_u.value, self.sn_v.value
        u, v = ops.stop_gradient(u), ops.stop_gradient(v)
        sigma = ops.sum(u * ops.matmul(w, v))
        return self.kernel / sigma

    def call(self, x, training: bool = False):
        k = self.effective_kernel(training)
        s = self.spec
        if s.kind == "dense":
            y = ops.matmul(x, k)
        elif s.kind == "conv":
            y = ops.conv(x, k, strides=s.stride, padding=self.padding)
        else:
            y = ops.conv_transpose(x, k, strides=s.stride, padding=self.padding)
        if self.bias is not None:
            y = y + self.bias
        return y


def _keras_layers(specs: list[Layer]) -> list[keras.layers.Layer]:
    out: list[keras.layers.Layer] = []
    for spec in specs:
        k = spec.kind
        if k in ("dense", "conv", "convT"):
            out.append(TorchStyle(spec))
        elif k == "bn":
            out.append(
                keras.layers.BatchNormalization(
                    axis=-1,
                    momentum=BN_MOMENTUM,
                    epsilon=BN_EPS,
                    gamma_initializer=keras.initializers.RandomNormal(1.0, INIT_STD),
                )
            )
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


def build_generator(cfg: TrainConfig, channels: int, name: str = "generator") -> keras.Sequential:
    specs = generator_layers(cfg.model, cfg.res, cfg.width, cfg.z_dim, channels, sn=cfg.sn_g)
    return keras.Sequential([keras.Input((cfg.z_dim,)), *_keras_layers(specs)], name=name)


def build_discriminator(
    cfg: TrainConfig, channels: int, name: str = "discriminator"
) -> keras.Sequential:
    specs = discriminator_layers(
        cfg.model, cfg.res, cfg.width, channels, sn=cfg.sn_d, slope=cfg.lrelu_slope
    )
    layers = _keras_layers(specs) + [keras.layers.Reshape(())]
    return keras.Sequential([keras.Input((cfg.res, cfg.res, channels)), *layers], name=name)


def build_models(cfg: TrainConfig, channels: int):
    """G then D (seed with ``keras.utils.set_random_seed`` first)."""
    return build_generator(cfg, channels), build_discriminator(cfg, channels)


def count_params(model: keras.Model) -> int:
    """Trainable parameters, comparable with torch's ``parameters()`` count."""
    return int(sum(np.prod(v.shape) for v in model.trainable_weights))
