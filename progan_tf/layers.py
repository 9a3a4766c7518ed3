"""ProGAN building blocks as Keras 3 layers (TensorFlow backend), NHWC.

Every item follows the official code (tkarras/progressive_growing_of_gans,
``networks.py``) and mirrors ``progan_torch.layers`` (same names, same stored weights):

- *Equalised learning rate* (paper section 4.1): weights are stored as N(0, 1)
  and multiplied at run time by ``gain / sqrt(fan_in)``, ``fan_in = k*k*C_in``;
  the bias is added afterwards and is *not* scaled. The raw weight is the
  variable ``weight`` (Keras layout: dense ``(in, out)``, conv ``(kh, kw, in, out)``)
  so the converter maps it to torch's ``weight`` by transposition only.
- *Pixel norm* (section 4.2): ``x * rsqrt(mean_c(x^2) + 1e-8)``.
- *Minibatch stddev* (section 3): official strided grouping (sample ``i`` is in
  group ``i % (N // G)``), one statistic per group appended as the last channel.
- *Fused resampling* (official ``fused_scale``): :class:`UpConv2d` and
  :class:`ConvDown2d` store the weight of a plain conv and fold the 2x upsample / 2x2
  pool into one stride-2 (transposed) conv.
"""

from __future__ import annotations

import functools
import math

from gancore import tf_utils as tfu

keras, tf = tfu.keras, tfu.tf


def lrelu(x: tf.Tensor) -> tf.Tensor:
    """Leaky ReLU with slope 0.2 (official ``leaky_relu``)."""
    return tf.nn.leaky_relu(x, alpha=0.2)


def pixel_norm(x: tf.Tensor, eps: float = 1e-8) -> tf.Tensor:
    """Normalise each pixel's feature vector to unit RMS over channels (NHWC or NC); the
    statistic in at least float32 (norms stay fp32 under the mixed-precision policy). The
    gradient is :func:`_pixel_norm_fn`'s, twin of ``progan_torch.layers._PixelNorm``."""
    return _pixel_norm_fn(float(eps))(x)


@functools.cache
def _pixel_norm_fn(eps: float):
    """Pixel norm at this ``eps`` with a hand-written gradient: with ``y = x * s``,
    ``s = (mean_c x**2 + eps) ** -1/2``, the input gradient is ``s * (g - y * mean_c(g * y))``,
    fewer operations than the autodiff of the forward chain. Only G normalises pixels and
    nothing differentiates G twice; this gradient is not meant to be differentiated again."""

    @tf.custom_gradient
    def norm(x: tf.Tensor):
        wide = tf.cast(x, tf.float32) if x.dtype in (tf.bfloat16, tf.float16) else x
        s = tf.math.rsqrt(tf.reduce_mean(tf.square(wide), axis=-1, keepdims=True) + eps)
        y = x * tf.cast(s, x.dtype)

        def grad(g: tf.Tensor) -> tf.Tensor:
            gw, yw = tf.cast(g, s.dtype), tf.cast(y, s.dtype)  # no-ops in float32
            t = tf.reduce_mean(gw * yw, axis=-1, keepdims=True)
            return tf.cast((gw - yw * t) * s, g.dtype)

        return y, grad

    return norm


def upsample2x(x: tf.Tensor) -> tf.Tensor:
    """Nearest-neighbour 2x upsampling (official ``upscale2d``: tile each pixel 2x2)."""
    n, h, w, c = tf.unstack(tf.shape(x))
    y = tf.reshape(x, [n, h, 1, w, 1, c])
    y = tf.tile(y, [1, 1, 2, 1, 2, 1])
    return tf.reshape(y, [n, h * 2, w * 2, c])


def downsample2x(x: tf.Tensor) -> tf.Tensor:
    """2x2 box average (official ``downscale2d``; the data set's lower resolutions use the same)."""
    return tf.nn.avg_pool2d(x, ksize=2, strides=2, padding="VALID")


def lerp(a: tf.Tensor, b: tf.Tensor, t) -> tf.Tensor:
    """``a + (b - a) * t`` exactly as the official ``tfutil.lerp``."""
    return a + (b - a) * tf.cast(t, a.dtype)


def mbstd_groups(n: int, group: int) -> int:
    """Group size actually used for a batch of ``n``.

    Official: ``min(group, n)`` (``tf.minimum(group_size, tf.shape(x)[0])``), which must
    divide ``n``; whenever it does, this returns it. A ProGAN batch can be any
    size (last resolutions use 3, 6, 14 in the paper's CelebA-HQ setting), so we
    use the largest divisor of ``n`` that is ``<= group`` -- the same rule as
    ``progan_torch.layers`` -- rather than failing.
    """
    g = max(1, min(group, n))
    while n % g:
        g -= 1
    return g


def minibatch_stddev(x: tf.Tensor, group: int, chunks: int = 1) -> tf.Tensor:
    """Append the official minibatch-stddev feature as one extra (last) channel.

    ``x`` is NHWC with a static batch size. Statistics are computed in float32
    (the official code casts too), so the feature is stable under mixed precision.
    ``chunks`` > 1: the batch is that many equal, independent sub-batches (e.g.
    ``concat([reals, fakes])``), grouped exactly as separate calls would group them.
    """
    n = x.shape[0]
    if n is None:
        raise ValueError("minibatch_stddev needs a static batch size")
    if n % chunks:
        raise ValueError(f"batch {n} is not divisible into {chunks} chunks")
    per = n // chunks
    g = mbstd_groups(per, group)
    m = per // g
    _, h, w, c = x.shape
    y = tf.reshape(tf.cast(x, tf.float32), [chunks, g, m, h, w, c])  # i -> (i // m, i % m)
    y = y - tf.reduce_mean(y, axis=1, keepdims=True)
    y = tf.sqrt(tf.reduce_mean(tf.square(y), axis=1) + 1e-8)  # (chunks, m, h, w, c)
    y = tf.reduce_mean(y, axis=[2, 3, 4])  # (chunks, m): one value per group
    y = tf.tile(y, [1, g])  # sample i of a chunk gets group i % m
    y = tf.cast(tf.reshape(y, [n, 1, 1, 1]), x.dtype)
    y = tf.broadcast_to(y, [n, h, w, 1])
    return tf.concat([x, y], axis=-1)


class _Equalized(keras.layers.Layer):
    """Shared weight handling: equalised scale, ablation init, optional spectral norm.

    With ``equalized`` False (the paper's ablation) the weight is initialised
    N(0, scale^2) and used unscaled, so both variants start from the same
    effective weight distribution. With ``spectral_norm`` the effective weight
    is ``W / sigma(W)`` (``gancore.tf_utils.spectral_normalize``: torch's algorithm, u and v
    of W as torch's (out, in*k*k) matrix) *instead of* the equalised scale, which would
    cancel in it (see ``ProGANConfig.spectral_norm_g``).

    The weight variable is never autocast: the effective weight is formed in float32 and
    cast once to the layer's compute dtype (bf16 under ``--amp bf16``), as torch's autocast
    casts the float32 ``weight * scale`` at the conv.
    """

    def __init__(
        self,
        kernel_shape: tuple[int, ...],
        fan_in: int,
        units_out: int,
        gain: float,
        equalized: bool = True,
        spectral_norm: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.gain = float(gain)
        self.fan_in = int(fan_in)
        self.scale = self.gain / math.sqrt(self.fan_in)
        self.equalized = bool(equalized)
        self.spectral_norm = bool(spectral_norm)
        std = 1.0 if self.equalized else self.scale
        self.weight = self.add_weight(
            shape=kernel_shape,
            name="weight",
            initializer=keras.initializers.RandomNormal(0.0, std),
            trainable=True,
            autocast=False,
        )
        self.bias = self.add_weight(
            shape=(units_out,), name="bias", initializer="zeros", trainable=True
        )
        if self.spectral_norm:
            tfu.add_spectral_norm(self, self.torch_matrix(self.weight.value))
        self.built = True  # weights exist from construction: a checkpoint can restore them

    @staticmethod
    def torch_matrix(w: tf.Tensor) -> tf.Tensor:
        """The weight as torch's (out, in*k*k) matrix: conv (k, k, in, out) -> (out, in, k, k)
        flattened; dense (in, out) -> its transpose. Spectral norm works on this matrix."""
        if len(w.shape) == 4:
            return tf.reshape(tf.transpose(w, [3, 2, 0, 1]), [w.shape[-1], -1])
        return tf.transpose(w)

    def effective_weight(self, training: bool = False, factor: float = 1.0) -> tf.Tensor:
        """The weight as the layer applies it: equalised-LR scale (or W / sigma(W) with
        spectral norm) times ``factor``, in one multiplication (torch's ``scaled_weight``)."""
        w = tf.convert_to_tensor(self.weight)  # the variable dtype (float32, or a test's float64)
        if self.spectral_norm:
            w = tfu.spectral_normalize(w, self.torch_matrix(w), self.sn_u, self.sn_v, training)
            scale = factor
        else:
            scale = (self.scale if self.equalized else 1.0) * factor
        if scale != 1.0:
            w = w * scale
        return tf.cast(w, self.compute_dtype)


class EqualizedLinear(_Equalized):
    """Dense layer with equalised learning rate; weight ``(in, out)`` = torch ``(out, in)``.T."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        gain: float = math.sqrt(2.0),
        bias_shape: int | None = None,
        **kwargs,
    ) -> None:
        # ``bias_shape``: G's 4x4 dense has one bias per *channel*, added after the reshape.
        self.in_features, self.out_features = int(in_features), int(out_features)
        super().__init__(
            (in_features, out_features),
            in_features,
            out_features if bias_shape is None else bias_shape,
            gain,
            **kwargs,
        )
        self.own_bias = bias_shape is None

    def call(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        y = tf.matmul(x, self.effective_weight(training))
        return y + self.bias if self.own_bias else y


class EqualizedConv2d(_Equalized):
    """Conv with equalised LR, stride 1, 'same' padding (official ``conv2d`` + ``apply_bias``)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        gain: float = math.sqrt(2.0),
        **kwargs,
    ) -> None:
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = int(kernel_size)
        k = self.kernel_size
        super().__init__(
            (k, k, in_channels, out_channels), k * k * in_channels, out_channels, gain, **kwargs
        )

    def call(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        y = tf.nn.conv2d(x, self.effective_weight(training), strides=1, padding="SAME")
        return tf.nn.bias_add(y, self.bias)


def fused_taps(w: tf.Tensor) -> tf.Tensor:
    """``(k, k, ...) -> (k+1, k+1, ...)``: zero-pad by one and sum the four 2x2-shifted copies.

    Tap ``u`` is ``w[u-1] + w[u]`` per axis: the 2x nearest upsample (or 2x2 box) composed
    with the k x k kernel, for a stride-2 layer (official ``upscale2d_conv2d`` /
    ``conv2d_downscale2d``). Computed without the padding (same values, see ``_fused_taps``).
    """
    return _fused_taps(w)


@tf.custom_gradient
def _fused_taps(w: tf.Tensor):
    # Same values as padding by one and summing four shifted slices, without the padding:
    # the gradient of that form zero-fills a (k+2, k+2, in, out) buffer for every slice
    # (StridedSliceGrad), which cost more than the fused layer's convolution on the CPU;
    # the gradient here is the adjoint, each 2x2 window summed. Twin of
    # ``progan_torch.layers.fused_taps``.
    def grad(g: tf.Tensor) -> tf.Tensor:
        g = g[1:] + g[:-1]
        return g[:, 1:] + g[:, :-1]

    t = tf.concat([w[:1], w[1:] + w[:-1], w[-1:]], axis=0)
    return tf.concat([t[:, :1], t[:, 1:] + t[:, :-1], t[:, -1:]], axis=1), grad


class UpConv2d(EqualizedConv2d):
    """Nearest 2x upsample + this conv as ONE stride-2 transposed conv (``fused_scale``).

    Same variables, layout ``(k, k, in, out)`` and He scale as :class:`EqualizedConv2d`;
    for the same stored weight the same function as ``conv(upsample2x(x))`` with 2.25x
    fewer multiply-adds. The kernel is flipped (rotated 180 degrees) because a transposed
    conv scatters each input pixel through its kernel (a convolution of the zero-stuffed
    input) while ``conv2d`` correlates; the official ``upscale2d_conv2d`` has no flip since
    its weight is its own ``[k, k, out, in]`` variable (so an official fused weight equals
    our weight flipped). See ``progan_torch.layers.UpConv2d``.
    """

    def call(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        w = fused_taps(tf.reverse(self.effective_weight(training), axis=[0, 1]))
        w = tf.transpose(w, [0, 1, 3, 2])  # conv2d_transpose wants (k, k, out, in)
        n, h, wd = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
        shape = tf.stack([n, h * 2, wd * 2, self.out_channels])
        # 'SAME' pads (k - 1) / 2 on each side for a (k+1)-tap kernel at stride 2: exactly
        # the zero border the unfused conv sees around the upsampled image.
        y = tf.nn.conv2d_transpose(x, w, shape, strides=2, padding="SAME")
        return tf.nn.bias_add(y, self.bias)


class ConvDown2d(EqualizedConv2d):
    """This conv + 2x2 average pool as ONE stride-2 conv (``fused_scale``).

    Same variables and scale as :class:`EqualizedConv2d`; for the same stored weight the
    same function as ``downsample2x(conv(x))`` (no flip: both are correlations).
    """

    def call(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        w = fused_taps(self.effective_weight(training, 0.25))  # the pool's 1/4, folded
        y = tf.nn.conv2d(x, w, strides=2, padding="SAME")
        return tf.nn.bias_add(y, self.bias)
