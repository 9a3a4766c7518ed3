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
* **BatchNorm** uses ``epsilon=1e-5, momentum=0.9`` (torch's eps and 1 - torch's
  momentum 0.1). Remaining difference: Keras updates the moving variance with the
  biased batch variance, torch with the unbiased one (factor n / (n - 1)); this
  only affects eval-mode outputs after training, not the forward pass in training.
* **Flatten order**: before a dense layer the NHWC activation is permuted to NCHW
  and then flattened (and the reverse after G's dense layer), so dense weights are
  the same matrix in both frameworks.
"""

from __future__ import annotations

import numpy as np

from gancore import tf_utils as tfu  # before keras: TensorFlow's quiet start-up
from gancore.tf_utils import keras
from vanilla_gan.arch import Layer, discriminator_layers, generator_layers
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
