"""ProGAN building blocks (Karras et al. 2018, section 4 and the official ``networks.py``).

Every layer here is shared by the generator and the discriminator in
``networks.py``; names and weight layouts are those of the TensorFlow twin
(``progan_tf.layers``), so the converter maps parameters one to one.

Equalised learning rate (paper section 4.1): weights are stored as N(0, 1) and
multiplied at run time by ``gain / sqrt(fan_in)`` (He's constant), ``fan_in =
k * k * C_in``; the bias is added afterwards and is *not* scaled. With
``equalized=False`` (the ablation) the weights are instead initialised as
N(0, scale**2) and used as they are, which is the official ``use_wscale=False``.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from gancore.torch_utils import is_channels_last
from progan_torch import variants

SQRT2 = math.sqrt(2.0)
LRELU_SLOPE = 0.2  # official lrelu(x, alpha=0.2)


class _Equalized(nn.Module):
    """Shared weight handling for :class:`EqualizedLinear` and :class:`EqualizedConv2d`."""

    weight: nn.Parameter
    bias: nn.Parameter | None

    def _init_weight(
        self, shape: tuple[int, ...], fan_in: int, gain: float, equalized: bool, bias: bool
    ) -> None:
        self.fan_in = fan_in
        self.gain = gain
        self.equalized = equalized
        he = gain / math.sqrt(fan_in)
        # Run-time multiplier: He's constant with equalised LR, 1 otherwise (weights carry it).
        self.scale = he if equalized else 1.0
        self.weight = nn.Parameter(torch.randn(shape) * (1.0 if equalized else he))
        self.bias = nn.Parameter(torch.zeros(shape[0])) if bias else None
        self.spectral_norm = False

    def scaled_weight(self, factor: float = 1.0) -> torch.Tensor:
        """The weight as the layer applies it: equalised-LR scale (or W / sigma(W) with
        spectral norm) times ``factor``, in one multiplication."""
        if self.spectral_norm:
            # torch's parametrization computes W / sigma(W) when ``weight`` is read (one power
            # iteration in training mode). Outside autocast, so that the power iteration and
            # sigma stay float32 under --amp bf16; the conv casts the result.
            device = self.parametrizations.weight.original.device.type
            if not torch.amp.is_autocast_available(device):  # e.g. "meta" (FLOP counting)
                w = self.weight
            else:
                with torch.autocast(device, enabled=False):
                    w = self.weight
            return w * factor if factor != 1.0 else w
        # A Python float multiply: no parameter, so the state_dict holds the raw weight only.
        scale = self.scale * factor
        return self.weight * scale if scale != 1.0 else self.weight


class EqualizedLinear(_Equalized):
    """Dense layer ``y = x @ (w * scale).T + b``; weight shape (out, in) as ``nn.Linear``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        gain: float = SQRT2,
        equalized: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self._init_weight((out_features, in_features), in_features, gain, equalized, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.scaled_weight(), self.bias)

    def extra_repr(self) -> str:
        return (
            f"{self.in_features}, {self.out_features}, gain={self.gain:.4g}, scale={self.scale:.4g}"
        )


# ------------------------------------------------- convolutions for the double backward
_state = threading.local()


@contextlib.contextmanager
def explicit_input_gradients() -> Iterator[None]:
    """Within this block, the float32 convolutions of :class:`EqualizedConv2d` and
    :class:`ConvDown2d` record their input gradient as an ordinary transposed convolution.

    For the gradient penalty (``progan_torch.loss.gradient_penalty``), whose graph is
    differentiated twice. PyTorch's own double backward of a convolution computes the
    weight gradient of the input-gradient term as a convolution of the batch-transposed
    activations (``(C, N, H, W)`` views, copied element by element out of channels-last
    memory, then convolved with an ``H x W`` kernel: a shape oneDNN runs 3-4x below its
    usual speed). Written as a transposed convolution, that term's weight gradient is the
    ordinary first-order one, in oneDNN's own kernel. Same function and gradients; the
    whole 8x8 / 16x16 / 32x32 training step 1.03x / 1.06x / 1.08x faster on the development
    CPU (``python -m progan_common.bench_frameworks --compare torch:autograd-penalty,torch``).

    Under bf16 autocast the convolutions take the same path, in bf16 (their inputs cast as
    autocast casts ``F.conv2d``'s). That is also a matter of correctness: on a CPU where
    oneDNN uses AMX, torch's built-in double backward of a bf16 convolution returns a weight
    gradient unrelated to the float32 one (relative error about 1), while this path's
    first-order kernels stay within bf16 rounding (about 0.04; ``tests/progan_torch/
    test_amp.py`` checks both on the CPU that runs it). It lets the penalty run in bf16 rather
    than fall back to float32: the bf16 training step 1.07x / 1.22x / 1.34x faster at 8x8 /
    16x16 / 32x32 on the development CPU (``--compare torch:fp32-penalty,torch --amp bf16``).
    """
    before = getattr(_state, "explicit", False)
    _state.explicit = True
    try:
        yield
    finally:
        _state.explicit = before


def _will_need(ctx, i: int) -> bool:
    """Whether the running backward pass needs the gradient of ``forward``'s input ``i``:
    ``needs_input_grad`` says only whether the input requires one, while
    ``torch.autograd.grad(out, [x])`` asks for ``x``'s alone."""
    if not ctx.needs_input_grad[i]:
        return False
    node = ctx.next_functions[i][0]
    if node is None:
        return False
    try:
        return torch._C._will_engine_execute_node(node)
    except (AttributeError, RuntimeError):  # private API gone, or a leaf under autograd.grad
        return True


class _ExplicitInputGradConv2d(torch.autograd.Function):
    """``F.conv2d(x, w, b, stride, padding)`` (square stride and padding, no dilation or
    groups) whose backward computes the input gradient with ``F.conv_transpose2d`` (a
    differentiable operation: see :func:`explicit_input_gradients`), the weight and bias
    gradients with the built-in kernel, and only the gradients the running pass needs."""

    @staticmethod
    def forward(ctx, x, w, b, stride: int, padding: int):
        ctx.save_for_backward(x, w)
        ctx.stride, ctx.padding, ctx.has_bias = stride, padding, b is not None
        return F.conv2d(x, w, b, stride, padding)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        s, p = ctx.stride, ctx.padding
        gx = gw = gb = None
        if _will_need(ctx, 0):
            # the rows / columns a strided forward never reached get zero gradient
            extra = [(n + 2 * p - w.shape[-1]) % s for n in x.shape[-2:]]
            gx = F.conv_transpose2d(g, w, None, s, p, output_padding=extra)
        need_w, need_b = _will_need(ctx, 1), ctx.has_bias and _will_need(ctx, 2)
        if need_w or need_b:
            _, gw, gb = torch.ops.aten.convolution_backward(
                g, x, w, [w.shape[0]] if ctx.has_bias else None, [s, s], [p, p], [1, 1],
                False, [0, 0], 1, [False, need_w, need_b],
            )  # fmt: skip
        return gx, gw, gb, None, None


def conv2d(
    x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, stride: int = 1, padding: int = 0
) -> torch.Tensor:
    """``F.conv2d``, or inside :func:`explicit_input_gradients` (with autograd recording) the
    same convolution with an explicit input gradient; under autocast in the autocast dtype,
    as ``F.conv2d`` would run there."""
    device = x.device.type
    if not (
        getattr(_state, "explicit", False)
        and torch.is_grad_enabled()
        # "meta" (FLOP counting) has no autocast, and nothing to gain
        and torch.amp.is_autocast_available(device)
    ):
        return F.conv2d(x, w, b, stride, padding)
    if not torch.is_autocast_enabled(device):
        return _ExplicitInputGradConv2d.apply(x, w, b, stride, padding)
    dt = torch.get_autocast_dtype(device)
    with torch.autocast(device, enabled=False):  # the Function's ops run in dt as cast here
        return _ExplicitInputGradConv2d.apply(
            x.to(dt), w.to(dt), None if b is None else b.to(dt), stride, padding
        )


class EqualizedConv2d(_Equalized):
    """'Same'-padded stride-1 convolution; weight shape (out, in, k, k) as ``nn.Conv2d``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        gain: float = SQRT2,
        equalized: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = (
            in_channels,
            out_channels,
            kernel_size,
        )
        self.padding = kernel_size // 2
        fan_in = kernel_size * kernel_size * in_channels
        self._init_weight(
            (out_channels, in_channels, kernel_size, kernel_size), fan_in, gain, equalized, bias
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv2d(x, self.scaled_weight(), self.bias, padding=self.padding)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, k={self.kernel_size}, "
            f"gain={self.gain:.4g}, scale={self.scale:.4g}"
        )


def _taps(w: torch.Tensor) -> torch.Tensor:
    """``(..., k, k) -> (..., k+1, k+1)``: per axis ``[w0, w0 + w1, ..., w(k-2) + w(k-1), w(k-1)]``."""
    w = torch.cat([w[..., :1, :], w[..., 1:, :] + w[..., :-1, :], w[..., -1:, :]], dim=-2)
    return torch.cat([w[..., :1], w[..., 1:] + w[..., :-1], w[..., -1:]], dim=-1)


def _taps_adjoint(g: torch.Tensor) -> torch.Tensor:
    """The transpose of :func:`_taps`: ``(..., k+1, k+1) -> (..., k, k)``, each 2x2 window summed."""
    g = g[..., 1:, :] + g[..., :-1, :]
    return g[..., 1:] + g[..., :-1]


class _FusedTaps(torch.autograd.Function):
    # Why a Function: written as autograd sees it (pad, then four shifted slices summed), the
    # backward of every slice allocates and zero-fills a padded (out, in, k+2, k+2) buffer.
    # On the CPU that bookkeeping cost more than the fused layer's whole convolution at 8x8
    # (5x slower per construction than this; the 8x8 training step 1.08x faster with it).
    # The backward is made of differentiable operations, so higher-order gradients still work.
    @staticmethod
    def forward(ctx, w: torch.Tensor) -> torch.Tensor:
        return _taps(w)

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> torch.Tensor:
        return _taps_adjoint(g)


def fused_taps(w: torch.Tensor) -> torch.Tensor:
    """``(..., k, k) -> (..., k+1, k+1)``: zero-pad by one and sum the four 2x2-shifted copies.

    Tap ``u`` of the result is ``w[u-1] + w[u]`` per axis: the weight one output pixel of
    a stride-2 layer gives to input offset ``u`` once the 2x nearest upsample (or the 2x2
    box) and the k x k kernel are composed (official ``upscale2d_conv2d`` /
    ``conv2d_downscale2d``). Computed without the padding (same values, see ``_FusedTaps``).
    """
    return _FusedTaps.apply(w)


class UpConv2d(EqualizedConv2d):
    """Nearest 2x upsample + this k x k conv as ONE stride-2 transposed conv (fused_scale).

    Same parameters, layout and He scale as :class:`EqualizedConv2d` (fan-in ``k*k*C_in``),
    and for the same stored weight the same function as ``conv(upsample2x(x))``, with
    2.25x fewer multiply-adds (a (k+1)^2 kernel per 4 output pixels instead of 4 k^2).

    Why the flip: ``conv_transpose2d`` scatters every input pixel through its kernel
    (``y[2m + u - p] += x[m] * K[u]``), i.e. it *convolves* the zero-stuffed input, while
    ``conv2d`` *correlates* (``y[i] = sum_a w[a] x[i + a]``). Writing upsample-then-correlate
    as a scatter gives the 4-tap-summed kernel of ``w`` rotated by 180 degrees. The official
    ``upscale2d_conv2d`` omits the flip (its weight is its own variable, laid out
    ``[k, k, out, in]``, never compared with an unfused conv), so an official fused weight
    is our weight flipped; we flip at run time instead so that checkpoints, converted
    weights and the ``fused_scale`` switch are interchangeable.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.scaled_weight()
        # conv_transpose2d takes (in, out, k+1, k+1): transpose the k x k weight (not the larger
        # fused kernel) into the stored weight's memory layout, so that the convolution gets
        # a kernel it need not copy (1.02x the 8x8 and 32x32 steps on the development CPU)
        layout = torch.channels_last if is_channels_last(w) else torch.contiguous_format
        w = w.transpose(0, 1).contiguous(memory_format=layout).flip(2, 3)
        return F.conv_transpose2d(x, fused_taps(w), self.bias, stride=2, padding=self.padding)


class ConvDown2d(EqualizedConv2d):
    """This k x k conv + 2x2 average pool as ONE stride-2 conv (fused_scale).

    Same parameters, layout and He scale as :class:`EqualizedConv2d`; for the same stored
    weight the same function as ``downsample2x(conv(x))`` (the bias commutes with the
    average), 2.25x fewer multiply-adds. No flip: both sides are correlations. The 4-tap
    sum times 1/4 is the 2x2 box folded into the kernel (official ``conv2d_downscale2d``).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = fused_taps(self.scaled_weight(0.25))
        return conv2d(x, w, self.bias, stride=2, padding=self.padding)


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, LRELU_SLOPE)


class _PixelNorm(torch.autograd.Function):
    """:func:`pixel_norm` with a hand-written backward (same function, same forward ops).

    With ``y = x * s``, ``s = (mean_c x**2 + eps) ** -1/2``, the input gradient is
    ``s * (g - y * mean_c(g * y))``: four operations, where autograd's generic backward of
    the forward chain takes about a dozen, several of them broadcasting a (N, 1, H, W)
    statistic over a channels-last map. In the whole training step the gain is within the
    noise on the development CPU (1.01-1.02x at 8x8 to 32x32: ``python -m
    progan_common.bench_frameworks --compare torch:autograd-pixelnorm,torch``).
    Only G normalises pixels and nothing differentiates G twice, so the
    backward is once-differentiable (a second differentiation raises rather than being wrong).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, eps: float) -> torch.Tensor:
        wide = x.to(torch.promote_types(x.dtype, torch.float32))
        s = torch.rsqrt(wide.square().mean(dim=1, keepdim=True) + eps)  # at least float32
        y = x * s.to(x.dtype)
        ctx.save_for_backward(y, s)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, g: torch.Tensor) -> tuple[torch.Tensor, None]:
        y, s = ctx.saved_tensors
        gw, yw = g.to(s.dtype), y.to(s.dtype)  # no-ops in float32
        t = (gw * yw).mean(dim=1, keepdim=True)
        return torch.addcmul(gw, yw, t, value=-1.0).mul_(s).to(g.dtype), None


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Pixelwise feature normalisation (paper 4.2): ``x / sqrt(mean_c x**2 + eps)`` over dim 1.

    Works for (N, C) latents and (N, C, H, W) feature maps alike. The statistic is computed
    in at least float32 (the mixed-precision policy keeps norms in fp32; a bf16 mean of
    512 squares would carry a ~1% error into every feature). The backward is
    :class:`_PixelNorm`'s (once differentiable), or autograd's under the
    ``autograd-pixelnorm`` variant of :mod:`progan_torch.variants` (for measuring it).
    """
    if variants.ACTIVE.pixel_norm_backward == "autograd":
        wide = x.to(torch.promote_types(x.dtype, torch.float32))
        return x * torch.rsqrt(wide.square().mean(dim=1, keepdim=True) + eps).to(x.dtype)
    return _PixelNorm.apply(x, eps)


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour 2x upsampling (official ``upscale2d``)."""
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


def downsample2x(x: torch.Tensor) -> torch.Tensor:
    """2x2 average pooling (official ``downscale2d``)."""
    return F.avg_pool2d(x, 2)


def mbstd_group_size(n: int, group: int) -> int:
    """The group size actually used for a batch of ``n``.

    Official: ``min(group, n)`` (``tf.minimum(group_size, tf.shape(x)[0])``), which must
    divide ``n`` (the official layer fails otherwise); whenever it does, this returns it. We
    handle a ragged batch explicitly by using the largest divisor of ``n`` that is
    ``<= group`` (so batch 6 with group 4 uses groups of 3; a prime batch falls back
    to 1, i.e. a zero stddev feature). ``progan_tf`` does the same.
    """
    g = max(1, min(group, n))
    while n % g:
        g -= 1
    return g


def minibatch_stddev(
    x: torch.Tensor, group: int, chunks: int = 1, eps: float = 1e-8
) -> torch.Tensor:
    """Append the minibatch standard deviation as one extra channel (paper section 3).

    Official grouping: ``y = x.reshape(G, N // G, C, H, W)``, so sample ``i`` belongs to
    group ``i % (N // G)`` (strided, not contiguous). Per group: stddev over the G
    members of every feature, averaged over C, H, W -> one scalar, tiled to (1, H, W)
    for each member and concatenated as the LAST channel.

    ``chunks`` > 1 treats the batch as that many equal, independent sub-batches (e.g.
    ``cat([reals, fakes])``) and groups within each one exactly as separate calls
    would, so one forward over the concatenation is identical to two forwards.
    """
    n, c, h, w = x.shape
    if n % chunks:
        raise ValueError(f"batch {n} is not divisible into {chunks} chunks")
    per = n // chunks
    g = mbstd_group_size(per, group)
    y = x.float().reshape(chunks, g, per // g, c, h, w)
    y = y - y.mean(dim=1, keepdim=True)
    y = y.square().mean(dim=1)  # (chunks, M, C, H, W)
    y = (y + eps).sqrt().mean(dim=(2, 3, 4))  # (chunks, M)
    # Member j of group m sits at index j * M + m inside its chunk: tile over j.
    y = y.reshape(chunks, 1, per // g).expand(chunks, g, per // g).reshape(n, 1, 1, 1)
    return torch.cat([x, y.to(x.dtype).expand(n, 1, h, w)], dim=1)


def lerp(old: torch.Tensor, new: torch.Tensor, alpha: float | torch.Tensor) -> torch.Tensor:
    """``old + (new - old) * alpha`` (official ``tfutil.lerp``); alpha 1 -> only ``new``."""
    return old + (new - old) * alpha


def apply_spectral_norm(module: nn.Module) -> None:
    """Spectral normalisation (Miyato et al. 2018) on every equalised layer of ``module``.

    torch's ``parametrizations.spectral_norm`` (u, v buffers, 15 power iterations at
    registration, one per training forward, no gradient through u and v) on the stored
    weight as an (out, in*k*k) matrix; ``progan_tf`` uses the same algorithm
    (``gancore.tf_utils.spectral_normalize``). The run-time He scale is not applied (it
    cancels in W / sigma(W); see ``ProGANConfig.spectral_norm_g`` for why). State-dict keys
    become ``...parametrizations.weight.original`` / ``..._u`` / ``..._v``, which
    ``progan_tf.convert`` maps.
    """
    from torch.nn.utils.parametrizations import spectral_norm

    for m in list(module.modules()):
        if isinstance(m, _Equalized) and not m.spectral_norm:
            m.scale = 1.0
            spectral_norm(m, name="weight")
            m.spectral_norm = True
