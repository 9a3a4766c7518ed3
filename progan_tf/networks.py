"""ProGAN generator and discriminator as Keras models, built for ``max_res`` up front.

The structure and attribute names are those of ``progan_torch.networks`` (see
PROGAN_SPEC): ``G.blocks[k]`` with ``dense``/``conv`` (k = 0) or ``conv0``/``conv1``,
``G.torgb[k]``; ``D.fromrgb[k]``, ``D.blocks[k]`` with ``conv``/``dense0``/``dense1``
(k = 0) or ``conv0``/``conv1``. ``progan_tf.convert`` walks both trees by these names.

State: ``level`` (int32) and ``alpha`` (float32) are ``tf.Variable`` s saved with the
model, so a checkpoint never depends on the stage. Calls take ``(x, [labels,] level,
fading, alpha)`` as ``progan_torch.networks`` (by keyword: Keras takes only tensors
positionally): the *traced* graph needs the level and the
fade flag as Python values (shapes and the old path depend on them) -- a ``tf.function``
retraces once per (level, fading), i.e. twice per resolution -- while alpha is a tensor
(default: the ``alpha`` variable) and never retraces.

Layout: NHWC inside, but the 4x4 dense output is reshaped channel-first (official
NCHW ``tf.reshape(x, [-1, nf, 4, 4])``) and D flattens channel-first, so every weight
equals torch's up to a transpose.

``cfg.fused_scale`` (official default): G's ``conv0`` is an ``UpConv2d`` (upsample folded
in, same function) and D's ``conv1`` a ``ConvDown2d`` with the LReLU after the pool (the
official fused D block; unfused, the LReLU comes before the pool). Same variables either
way, so the converter and checkpoints do not depend on the switch.
"""

from __future__ import annotations

import math

from gancore.tf_utils import keras, tf  # the quiet TensorFlow import comes first
from progan_common.config import ProGANConfig
from progan_tf.layers import (
    ConvDown2d,
    EqualizedConv2d,
    EqualizedLinear,
    UpConv2d,
    downsample2x,
    lerp,
    lrelu,
    minibatch_stddev,
    pixel_norm,
    upsample2x,
)

SQRT2 = math.sqrt(2.0)


def num_levels(cfg: ProGANConfig) -> int:
    """Number of blocks: levels 0..L with L = log2(max_res) - 2."""
    return int(math.log2(cfg.max_res)) - 1


def level_res(level: int) -> int:
    return 4 * 2**level


def _resolve(model, level, fading, alpha) -> tuple[int, bool, object]:
    """The call's stage (``progan_torch.networks._StageState._resolve``): None takes the
    stored level / alpha; ``fading`` None means alpha < 1 (reads variables: eager only)."""
    level = int(model.level.numpy()) if level is None else int(level)
    if alpha is None:
        alpha = model.alpha
    if fading is None:
        fading = float(tf.convert_to_tensor(alpha).numpy()) < 1.0
    elif not isinstance(fading, bool):
        raise TypeError(f"fading must be a bool (or None: from alpha), got {type(fading).__name__}")
    return level, fading and level > 0, alpha


class GBlock0(keras.layers.Layer):
    """4x4 head: latent -> dense (bias per channel) -> LReLU, PN -> conv3x3 -> LReLU, PN."""

    def __init__(self, in_dim: int, nf: int, pn: bool, eq: bool, sn: bool = False, **kw) -> None:
        super().__init__(**kw)
        self.nf, self.pn = nf, pn
        self.dense = EqualizedLinear(
            in_dim, nf * 16, gain=SQRT2 / 4, bias_shape=nf, equalized=eq, spectral_norm=sn
        )
        self.conv = EqualizedConv2d(nf, nf, 3, equalized=eq, spectral_norm=sn)

    def _act(self, x: tf.Tensor) -> tf.Tensor:
        x = lrelu(x)
        return pixel_norm(x) if self.pn else x

    def call(self, z: tf.Tensor, training: bool = False) -> tf.Tensor:
        x = self.dense(z, training=training)
        x = tf.transpose(tf.reshape(x, [-1, self.nf, 4, 4]), [0, 2, 3, 1])  # official NCHW order
        x = self._act(x + tf.cast(self.dense.bias, x.dtype))
        return self._act(self.conv(x, training=training))


class GBlock(keras.layers.Layer):
    """Upsample 2x -> conv3x3 -> LReLU, PN -> conv3x3 -> LReLU, PN (``fused``: one transposed conv)."""

    def __init__(
        self, nf_in: int, nf_out: int, pn: bool, eq: bool, fused: bool = False, sn: bool = False,
        **kw,
    ) -> None:  # fmt: skip
        super().__init__(**kw)
        self.pn, self.fused = pn, fused
        conv0 = UpConv2d if fused else EqualizedConv2d
        self.conv0 = conv0(nf_in, nf_out, 3, equalized=eq, spectral_norm=sn)
        self.conv1 = EqualizedConv2d(nf_out, nf_out, 3, equalized=eq, spectral_norm=sn)

    def _act(self, x: tf.Tensor) -> tf.Tensor:
        x = lrelu(x)
        return pixel_norm(x) if self.pn else x

    def call(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        x = x if self.fused else upsample2x(x)
        x = self._act(self.conv0(x, training=training))
        return self._act(self.conv1(x, training=training))


class Generator(keras.Model):
    """Progressive generator; output ``(N, res, res, C)``, linear (no tanh, as official)."""

    def __init__(self, cfg: ProGANConfig, img_channels: int, num_classes: int = 0, **kw) -> None:
        super().__init__(**kw)
        self.cfg, self.img_channels, self.num_classes = cfg, img_channels, num_classes
        self.num_levels = num_levels(cfg)
        eq, pn, sn = cfg.equalized_lr, cfg.pixelnorm, cfg.spectral_norm_g
        in_dim = cfg.latent_dim + num_classes
        self.blocks = []
        self.torgb = []
        for k in range(self.num_levels):
            res = level_res(k)
            nf = cfg.channels_at(res)
            if k == 0:
                self.blocks.append(GBlock0(in_dim, nf, pn, eq, sn, name="blocks.0"))
            else:
                self.blocks.append(
                    GBlock(
                        cfg.channels_at(res // 2),
                        nf,
                        pn,
                        eq,
                        cfg.fused_scale,
                        sn,
                        name=f"blocks.{k}",
                    )  # fmt: skip
                )
            self.torgb.append(
                EqualizedConv2d(
                    nf,
                    img_channels,
                    1,
                    gain=1.0,
                    equalized=eq,
                    spectral_norm=sn,
                    name=f"torgb.{k}",
                )  # fmt: skip
            )
        self.level = tf.Variable(self.num_levels - 1, trainable=False, dtype=tf.int32, name="level")
        self.alpha = tf.Variable(1.0, trainable=False, dtype=tf.float32, name="alpha")
        self.built = True  # every weight exists now (built for max_res up front)

    def call(
        self,
        z: tf.Tensor,
        labels: tf.Tensor | None = None,
        level: int | None = None,
        fading: bool | None = None,
        alpha=None,
        training: bool = False,
    ) -> tf.Tensor:
        """Images at ``level`` (Python int; default the variable's value). ``fading`` (Python
        bool) evaluates the previous level's path and blends it by ``alpha`` (default: the
        variable); None: fading when the variable's alpha < 1 (eager calls only).
        ``training``: spectral norm advances its power iteration."""
        level, fading, alpha = _resolve(self, level, fading, alpha)
        x = tf.convert_to_tensor(z)
        if self.num_classes:
            x = tf.concat([x, tf.cast(labels, x.dtype)], axis=1)
        if self.cfg.normalize_latents:  # official: PN on the [latent, label] vector
            x = pixel_norm(x)
        h = self.blocks[0](x, training=training)
        prev = h
        for k in range(1, level + 1):
            prev, h = h, self.blocks[k](h, training=training)
        out = self.torgb[level](h, training=training)
        if fading:
            old = upsample2x(self.torgb[level - 1](prev, training=training))
            out = lerp(old, out, alpha)
        return out


class DBlock0(keras.layers.Layer):
    """4x4 head: mbstd -> conv3x3 -> LReLU -> flatten (NCHW) -> dense -> LReLU -> dense(1+classes).

    ``nf``: the 4x4 width (official ``nf(1)``); ``nf_dense``: dense0's width (official
    ``Dense0`` uses ``nf(0)``; the same as ``nf`` in every preset).
    """

    def __init__(
        self,
        nf: int,
        nf_dense: int,
        mbstd_group: int,
        num_classes: int,
        eq: bool,
        sn: bool,
        **kw,
    ):
        super().__init__(**kw)
        self.nf, self.mbstd_group = nf, mbstd_group
        extra = 1 if mbstd_group > 1 else 0
        self.conv = EqualizedConv2d(nf + extra, nf, 3, equalized=eq, spectral_norm=sn)
        self.dense0 = EqualizedLinear(nf * 16, nf_dense, equalized=eq, spectral_norm=sn)
        self.dense1 = EqualizedLinear(
            nf_dense, 1 + num_classes, gain=1.0, equalized=eq, spectral_norm=sn
        )

    def call(self, x: tf.Tensor, training: bool = False, chunks: int = 1) -> tf.Tensor:
        if self.mbstd_group > 1:
            x = minibatch_stddev(x, self.mbstd_group, chunks)
        x = lrelu(self.conv(x, training=training))
        x = tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [-1, self.nf * 16])  # official NCHW flatten
        x = lrelu(self.dense0(x, training=training))
        return self.dense1(x, training=training)


class DBlock(keras.layers.Layer):
    """conv3x3 -> LReLU -> conv3x3 -> LReLU -> 2x2 average pool.

    ``fused`` (official default): conv1 + pool as one strided conv, LReLU after the pool
    (official ``act(apply_bias(conv2d_downscale2d(x)))``).
    """

    def __init__(
        self, nf_in: int, nf_out: int, eq: bool, sn: bool, fused: bool = False, **kw
    ) -> None:
        super().__init__(**kw)
        self.fused = fused
        self.conv0 = EqualizedConv2d(nf_in, nf_in, 3, equalized=eq, spectral_norm=sn)
        conv1 = ConvDown2d if fused else EqualizedConv2d
        self.conv1 = conv1(nf_in, nf_out, 3, equalized=eq, spectral_norm=sn)

    def call(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        x = self.conv1(lrelu(self.conv0(x, training=training)), training=training)
        return lrelu(x) if self.fused else downsample2x(lrelu(x))


class Discriminator(keras.Model):
    """Progressive critic; output ``(N, 1 + num_classes)``: column 0 the WGAN score."""

    def __init__(self, cfg: ProGANConfig, img_channels: int, num_classes: int = 0, **kw) -> None:
        super().__init__(**kw)
        self.cfg, self.img_channels, self.num_classes = cfg, img_channels, num_classes
        self.num_levels = num_levels(cfg)
        eq, sn = cfg.equalized_lr, cfg.spectral_norm_d
        self.fromrgb = []
        self.blocks = []
        for k in range(self.num_levels):
            res = level_res(k)
            nf = cfg.channels_at(res)
            self.fromrgb.append(
                EqualizedConv2d(
                    img_channels, nf, 1, equalized=eq, spectral_norm=sn, name=f"fromrgb.{k}"
                )
            )
            if k == 0:
                # channels_at(2) is the official nf(0): dense0's width (see DBlock0).
                head = DBlock0(
                    nf, cfg.channels_at(2), cfg.mbstd_group, num_classes, eq, sn, name="blocks.0"
                )
                self.blocks.append(head)
            else:
                self.blocks.append(
                    DBlock(
                        nf, cfg.channels_at(res // 2), eq, sn, cfg.fused_scale, name=f"blocks.{k}"
                    )
                )
        self.level = tf.Variable(self.num_levels - 1, trainable=False, dtype=tf.int32, name="level")
        self.alpha = tf.Variable(1.0, trainable=False, dtype=tf.float32, name="alpha")
        self.built = True  # every weight exists now (built for max_res up front)

    def call(
        self,
        img: tf.Tensor,
        level: int | None = None,
        fading: bool | None = None,
        alpha=None,
        training: bool = False,
        chunks: int = 1,
    ) -> tf.Tensor:
        """Scores at ``level`` / ``fading`` / ``alpha`` as :meth:`Generator.call`; ``chunks``:
        the batch is that many independent sub-batches (minibatch stddev groups within each)."""
        level, fading, alpha = _resolve(self, level, fading, alpha)
        img = tf.convert_to_tensor(img)
        x = lrelu(self.fromrgb[level](img, training=training))
        if level > 0:
            x = self.blocks[level](x, training=training)
        if fading:
            old = lrelu(self.fromrgb[level - 1](downsample2x(img), training=training))
            x = lerp(old, x, alpha)
        for k in range(level - 1, 0, -1):
            x = self.blocks[k](x, training=training)
        return self.blocks[0](x, training=training, chunks=chunks)


def build_networks(
    cfg: ProGANConfig, img_channels: int, num_classes: int = 0, seed: int | None = None
) -> tuple[Generator, Discriminator, Generator | None]:
    """G, D and (if ``cfg.ema``) G_ema initialised as a copy of G."""
    keras.utils.set_random_seed(cfg.seed if seed is None else seed)
    g = Generator(cfg, img_channels, num_classes, name="G")
    d = Discriminator(cfg, img_channels, num_classes, name="D")
    g_ema = None
    if cfg.ema:
        g_ema = Generator(cfg, img_channels, num_classes, name="G_ema")
        copy_weights(g, g_ema)
    return g, d, g_ema


def copy_weights(src: keras.Model, dst: keras.Model) -> None:
    for s, t in zip(src.weights, dst.weights, strict=True):
        t.assign(s)
    dst.level.assign(src.level)
    dst.alpha.assign(src.alpha)


_SUBLAYERS = ("dense", "conv", "conv0", "conv1", "dense0", "dense1")


def named_layers(model: keras.Model) -> dict[str, keras.layers.Layer]:
    """Equalised layers by torch module path (``blocks.3.conv0``, ``torgb.2``, ...)."""
    out: dict[str, keras.layers.Layer] = {}
    for list_name in ("blocks", "torgb", "fromrgb"):
        for k, layer in enumerate(getattr(model, list_name, [])):
            if list_name == "blocks":
                for sub in _SUBLAYERS:
                    if hasattr(layer, sub):
                        out[f"{list_name}.{k}.{sub}"] = getattr(layer, sub)
            else:
                out[f"{list_name}.{k}"] = layer
    return out


def layer_keys(name: str, layer: keras.layers.Layer) -> dict[str, str]:
    """Attribute of an equalised layer -> its torch ``state_dict`` key. A spectrally
    normalised torch layer keeps its raw weight and u, v under ``parametrizations.weight``."""
    if getattr(layer, "spectral_norm", False):
        p = f"{name}.parametrizations.weight"
        return {
            "weight": f"{p}.original",
            "bias": f"{name}.bias",
            "sn_u": f"{p}.0._u",
            "sn_v": f"{p}.0._v",
        }
    return {"weight": f"{name}.weight", "bias": f"{name}.bias"}


def model_variables(model: keras.Model) -> dict[str, tf.Variable]:
    """Every variable of ``model`` under its torch state_dict key (plus ``level``/``alpha``).

    Checkpoints save this dict explicitly: Keras 3 layers held in Python lists are not
    children in TF's checkpoint object graph, so ``tf.train.Checkpoint(G=model)`` alone
    would save only ``level``/``alpha`` (a test checks the weights round-trip).
    """
    out: dict[str, tf.Variable] = {}
    for name, layer in named_layers(model).items():
        for attr, key in layer_keys(name, layer).items():
            out[key] = getattr(layer, attr)
    out["level"], out["alpha"] = model.level, model.alpha
    return out


def param_counts(model: keras.Model) -> dict[str, int]:
    """Trainable parameters per layer path, e.g. ``blocks.3.conv0``: the torch-comparable table."""
    return {
        name: sum(int(math.prod(v.shape)) for v in (layer.weight, layer.bias))
        for name, layer in named_layers(model).items()
    }
