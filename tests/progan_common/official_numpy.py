"""The official ProGAN forward passes, transcribed to NumPy from the paper's TF code (test helper).

Written from a reading of tkarras/progressive_growing_of_gans (``networks.py``: ``G_paper``,
``D_paper`` in their default "recursive" structure, ``minibatch_stddev_layer``, the fused
``upscale2d_conv2d`` / ``conv2d_downscale2d``; ``train.py``: ``process_reals``; and
``dataset_tool.py``'s 2x2 box pyramid). It shares no code with ``progan_torch`` or
``progan_tf``, works in NCHW and float64 (so a comparison measures only the float32 error
of the code under test), and keeps the official names, weight layouts and quirks:

- weights are looked up by the official variable scope, e.g. ``"8x8/Conv0_up/weight"``,
  laid out ``[k, k, in, out]`` (dense ``[in, out]``), except the fused up-conv's
  ``[k, k, out, in]``; equalised LR multiplies by ``gain / sqrt(fan_in)`` at run time;
- the fused layers are built exactly as the official ones: pad, sum of four taps,
  TF-'SAME' stride-2 (transposed) convolution, no kernel flip;
- D always sees full-resolution images (``process_reals`` nearest-upscales the reals by
  ``2 ** floor(lod)``; G's output is upscaled the same way) and box-downscales inside.

:func:`official_params` maps one of our torch state_dicts (as NumPy arrays) to these names.
"""

from __future__ import annotations

import math

import numpy as np

SQRT2 = math.sqrt(2.0)


# ----------------------------------------------------------------------------- basic ops
def nf(stage: int, fmap_base: int, fmap_max: int, fmap_decay: float = 1.0) -> int:
    return min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)


def lerp(a, b, t):
    return a + (b - a) * t


def leaky_relu(x, alpha=0.2):
    return np.maximum(x * alpha, x)


def pixel_norm(x, epsilon=1e-8):
    return x / np.sqrt(np.mean(np.square(x), axis=1, keepdims=True) + epsilon)


def upscale2d(x, factor=2):
    if factor == 1:
        return x
    n, c, h, w = x.shape
    x = np.tile(x.reshape(n, c, h, 1, w, 1), [1, 1, 1, factor, 1, factor])
    return x.reshape(n, c, h * factor, w * factor)


def downscale2d(x, factor=2):
    if factor == 1:
        return x
    n, c, h, w = x.shape
    return x.reshape(n, c, h // factor, factor, w // factor, factor).mean(axis=(3, 5))


def _same_pads(size: int, k: int, stride: int) -> tuple[int, int, int]:
    """TF 'SAME': output ceil(size / stride), the padding split with the extra pixel after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return out, total // 2, total - total // 2


def conv2d_same(x, w, stride=1):
    """``tf.nn.conv2d(x, w, stride, 'SAME', NCHW)``: a correlation; ``w`` is [k, k, in, out]."""
    k = w.shape[0]
    out, before, after = _same_pads(x.shape[2], k, stride)
    xp = np.pad(x, [(0, 0), (0, 0), (before, after), (before, after)])
    y = np.zeros((x.shape[0], w.shape[3], out, out))
    for u in range(k):
        for v in range(k):
            patch = xp[:, :, u : u + stride * out : stride, v : v + stride * out : stride]
            y += np.einsum("nchw,co->nohw", patch, w[u, v])
    return y


def conv2d_transpose_same(x, w, stride=2):
    """``tf.nn.conv2d_transpose(x, w, [n, out, H*s, W*s], s, 'SAME', NCHW)``, ``w`` [k, k, out, in].

    The adjoint of ``conv2d_same`` from the (H*s)-sized output to ``x``: every input pixel
    ``m`` is scattered through the kernel to output rows ``s*m + u - pad_before``.
    """
    k, s = w.shape[0], stride
    size = x.shape[2] * s
    _, before, _ = _same_pads(size, k, s)
    full = np.zeros((x.shape[0], w.shape[2], size + k, size + k))
    h = x.shape[2]
    for u in range(k):
        for v in range(k):
            full[:, :, u : u + s * h : s, v : v + s * h : s] += np.einsum(
                "nihw,oi->nohw", x, w[u, v]
            )
    return full[:, :, before : before + size, before : before + size]


def _taps(w):
    w = np.pad(w, [(1, 1), (1, 1), (0, 0), (0, 0)])
    return w[1:, 1:] + w[:-1, 1:] + w[1:, :-1] + w[:-1, :-1]


def upscale2d_conv2d(x, w):
    """Official fused upscale2d + conv2d: ``w`` [k, k, fmaps, in], padded and 4-tap summed."""
    return conv2d_transpose_same(x, _taps(w), 2)


def conv2d_downscale2d(x, w):
    """Official fused conv2d + downscale2d: ``w`` [k, k, in, fmaps], 4 taps averaged."""
    return conv2d_same(x, _taps(w) * 0.25, 2)


def minibatch_stddev_layer(x, group_size=4):
    """Official layer: groups of ``min(group_size, N)`` with the strided reshape [G, M, ...]."""
    g = min(group_size, x.shape[0])
    if x.shape[0] % g:
        raise ValueError(f"official layer: batch {x.shape[0]} not divisible by group {g}")
    n, c, h, w = x.shape
    y = x.reshape(g, -1, c, h, w)
    y = y - y.mean(axis=0, keepdims=True)
    y = np.sqrt(np.mean(np.square(y), axis=0) + 1e-8)
    y = y.mean(axis=(1, 2, 3), keepdims=True)  # [M, 1, 1, 1]
    y = np.tile(y, [g, 1, h, w])  # sample i gets group i % M
    return np.concatenate([x, y], axis=1)


# ----------------------------------------------------------------------- layers with weights
class _Params:
    """Official variable lookup with the equalised-LR run-time scale."""

    def __init__(self, params: dict[str, np.ndarray], use_wscale: bool) -> None:
        self.p, self.use_wscale = params, use_wscale

    def weight(self, scope: str, gain: float, fan_in: int):
        w = self.p[f"{scope}/weight"].astype(np.float64)
        return w * (gain / math.sqrt(fan_in)) if self.use_wscale else w

    def bias(self, scope: str, x):
        b = self.p[f"{scope}/bias"].astype(np.float64)
        return x + (b if x.ndim == 2 else b.reshape(1, -1, 1, 1))

    def conv(self, scope, x, gain=SQRT2):
        w = self.p[f"{scope}/weight"]
        return self.bias(
            scope, conv2d_same(x, self.weight(scope, gain, int(np.prod(w.shape[:-1]))))
        )

    def dense(self, scope, x, gain=SQRT2, bias=True):
        x = x.reshape(x.shape[0], -1)  # NCHW flatten
        y = x @ self.weight(scope, gain, x.shape[1])
        return self.bias(scope, y) if bias else y

    def up_conv(self, scope, x):
        k = self.p[f"{scope}/weight"].shape[0]
        w = self.weight(scope, SQRT2, k * k * x.shape[1])  # official fan_in=(kernel**2)*C_in
        return self.bias(scope, upscale2d_conv2d(x, w))

    def conv_down(self, scope, x):
        w = self.p[f"{scope}/weight"]
        w = self.weight(scope, SQRT2, int(np.prod(w.shape[:-1])))
        return self.bias(scope, conv2d_downscale2d(x, w))


# --------------------------------------------------------------------------------- networks
def G_paper(params, latents, labels, lod_in, resolution, fmap_base, fmap_max, **opt):
    """Official generator, recursive structure; returns images at ``resolution`` (NCHW)."""
    use_pixelnorm = opt.get("use_pixelnorm", True)
    fused = opt.get("fused_scale", True)
    P = _Params(params, opt.get("use_wscale", True))
    r_log2 = int(np.log2(resolution))

    def f(stage):
        return nf(stage, fmap_base, fmap_max)

    def PN(x):
        return pixel_norm(x) if use_pixelnorm else x

    def block(x, res):
        s = f"{2**res}x{2**res}"
        if res == 2:
            if opt.get("normalize_latents", True):
                x = pixel_norm(x)
            # gain sqrt(2)/4 "to match the original Theano implementation"; the bias is
            # applied after the NCHW reshape, so it is per channel.
            x = P.dense(f"{s}/Dense", x, gain=SQRT2 / 4, bias=False).reshape(-1, f(res - 1), 4, 4)
            x = PN(leaky_relu(P.bias(f"{s}/Dense", x)))
            return PN(leaky_relu(P.conv(f"{s}/Conv", x)))
        if fused:
            x = PN(leaky_relu(P.up_conv(f"{s}/Conv0_up", x)))
        else:
            x = PN(leaky_relu(P.conv(f"{s}/Conv0", upscale2d(x))))
        return PN(leaky_relu(P.conv(f"{s}/Conv1", x)))

    def torgb(x, res):
        return P.conv(f"ToRGB_lod{r_log2 - res}", x, gain=1.0)

    def grow(x, res, lod):
        y = block(x, res)
        if lod > 0 and lod_in < lod:
            return grow(y, res + 1, lod - 1)
        if res > 2 and lod_in > lod:
            img = lerp(torgb(y, res), upscale2d(torgb(x, res - 1)), lod_in - lod)
            return upscale2d(img, 2**lod)
        return upscale2d(torgb(y, res), 2**lod)

    combo = np.concatenate([latents, labels], axis=1).astype(np.float64)
    return grow(combo, 2, r_log2 - 2)


def D_paper(params, images, lod_in, resolution, fmap_base, fmap_max, **opt):
    """Official discriminator on full-resolution ``images``; returns (scores, label logits)."""
    fused = opt.get("fused_scale", True)
    group = opt.get("mbstd_group_size", 4)
    P = _Params(params, opt.get("use_wscale", True))
    r_log2 = int(np.log2(resolution))
    images = images.astype(np.float64)

    def f(stage):
        return nf(stage, fmap_base, fmap_max)

    def fromrgb(x, res):
        return leaky_relu(P.conv(f"FromRGB_lod{r_log2 - res}", x))

    def block(x, res):
        s = f"{2**res}x{2**res}"
        if res >= 3:
            x = leaky_relu(P.conv(f"{s}/Conv0", x))
            if fused:
                return leaky_relu(P.conv_down(f"{s}/Conv1_down", x))
            return downscale2d(leaky_relu(P.conv(f"{s}/Conv1", x)))
        if group > 1:
            x = minibatch_stddev_layer(x, group)
        x = leaky_relu(P.conv(f"{s}/Conv", x))
        x = leaky_relu(P.dense(f"{s}/Dense0", x))  # width nf(res - 2) = nf(0)
        assert x.shape[1] == f(0)
        return P.dense(f"{s}/Dense1", x, gain=1.0)

    def grow(res, lod):
        if lod > 0 and lod_in < lod:
            x = grow(res + 1, lod - 1)
        else:
            x = fromrgb(downscale2d(images, 2**lod), res)
        x = block(x, res)
        if res > 2 and lod_in > lod:
            x = lerp(x, fromrgb(downscale2d(images, 2 ** (lod + 1)), res - 1), lod_in - lod)
        return x

    out = grow(2, r_log2 - 2)
    return out[:, :1], out[:, 1:]


# ---------------------------------------------------------------------------------- reals
def dataset_pyramid(images) -> dict[int, np.ndarray]:
    """``dataset_tool.py``: every lower resolution is the 2x2 box average of the one above
    (in float; the tool also rounds each level to uint8 for storage, left out here)."""
    x = np.asarray(images, dtype=np.float64)
    out = {x.shape[2]: x}
    while x.shape[2] > 4:
        x = (
            x[:, :, 0::2, 0::2] + x[:, :, 0::2, 1::2] + x[:, :, 1::2, 0::2] + x[:, :, 1::2, 1::2]
        ) * 0.25
        out[x.shape[2]] = x
    return out


def process_reals(pyramid: dict[int, np.ndarray], lod: float, resolution: int):
    """``train.py`` ``process_reals`` (no dynamic range or mirror): the data set is read at
    ``resolution / 2**floor(lod)``, cross-faded ("FadeLOD") with its 2x2-box-blurred self by
    ``lod - floor(lod)``, then nearest-upscaled ("UpscaleLOD") to full resolution."""
    floor = int(math.floor(lod))
    x = pyramid[resolution // 2**floor]
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5), keepdims=True)
    y = np.tile(y, [1, 1, 1, 2, 1, 2]).reshape(n, c, h, w)
    x = lerp(x, y, lod - floor)
    return upscale2d(x, 2**floor)


# ------------------------------------------------------------------------ weight mapping
def _conv(w):  # torch (out, in, k, k) -> official [k, k, in, out]
    return np.transpose(w, (2, 3, 1, 0))


def official_params(state: dict[str, np.ndarray], which: str, max_res: int, fused: bool):
    """Our torch state_dict (NumPy arrays) -> official variable names and layouts.

    The one non-transposition: an official ``Conv0_up`` weight is ``[k, k, out, in]`` and,
    having no flip in ``upscale2d_conv2d``, is our (unfused-equivalent) weight rotated by
    180 degrees.
    """
    r_log2 = int(np.log2(max_res))
    out: dict[str, np.ndarray] = {}

    def put(scope, key, w):
        out[f"{scope}/weight"], out[f"{scope}/bias"] = w, state[f"{key}.bias"]

    for k in range(r_log2 - 1):
        res = 4 * 2**k
        s = f"{res}x{res}"
        rgb = f"lod{r_log2 - 2 - k}"
        if which == "G":
            put(f"ToRGB_{rgb}", f"torgb.{k}", _conv(state[f"torgb.{k}.weight"]))
            if k == 0:
                put(f"{s}/Dense", "blocks.0.dense", state["blocks.0.dense.weight"].T)
                put(f"{s}/Conv", "blocks.0.conv", _conv(state["blocks.0.conv.weight"]))
                continue
            w0 = state[f"blocks.{k}.conv0.weight"]
            if fused:
                put(
                    f"{s}/Conv0_up", f"blocks.{k}.conv0", np.transpose(w0, (2, 3, 0, 1))[::-1, ::-1]
                )
            else:
                put(f"{s}/Conv0", f"blocks.{k}.conv0", _conv(w0))
            put(f"{s}/Conv1", f"blocks.{k}.conv1", _conv(state[f"blocks.{k}.conv1.weight"]))
        else:
            put(f"FromRGB_{rgb}", f"fromrgb.{k}", _conv(state[f"fromrgb.{k}.weight"]))
            if k == 0:
                put(f"{s}/Conv", "blocks.0.conv", _conv(state["blocks.0.conv.weight"]))
                put(f"{s}/Dense0", "blocks.0.dense0", state["blocks.0.dense0.weight"].T)
                put(f"{s}/Dense1", "blocks.0.dense1", state["blocks.0.dense1.weight"].T)
                continue
            put(f"{s}/Conv0", f"blocks.{k}.conv0", _conv(state[f"blocks.{k}.conv0.weight"]))
            scope = f"{s}/Conv1_down" if fused else f"{s}/Conv1"
            put(scope, f"blocks.{k}.conv1", _conv(state[f"blocks.{k}.conv1.weight"]))
    return out
