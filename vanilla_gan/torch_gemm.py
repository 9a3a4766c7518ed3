"""DCGAN's convolutions as matrix multiplies on a CPU, where oneDNN's kernels lag the GEMM.

The same functions as ``F.conv2d`` / ``F.conv_transpose2d`` (to float rounding, about 1e-6
relative); only the kernels that compute them differ. Two layer kinds take this path, chosen
once from the layer list (``vanilla_gan.arch.layer_paths``), and only for float32 on a CPU with
autocast off:

- ``dense``: a convolution whose kernel covers its whole input (D's last layer, 4x4 -> 1x1)
  and a transposed one from a 1x1 input (G's first, the latent -> 4x4). Each *is* a dense
  layer; computed as one ``F.linear`` / ``matmul`` it skips oneDNN's set-up for a degenerate
  convolution, about 1 ms per call for a few MFLOP.
- ``gemm``: a 4x4 stride-2 convolution down to 4x4 (and the transposed one up from 4x4)
  with >= 256 channels at its 8x8 side. As im2col + one GEMM with K = 16 x 256 or more it
  runs at the GEMM's speed, where oneDNN's kernel for these shapes ran 0.65-0.75x of it
  (scratch micro-benchmark on the 2-core Intel Xeon: forward 41 -> 31 ms, backward 98 -> 63
  ms for DCGAN 64x64's 256 -> 512 layer, batch 64, one thread). Below 256 channels (DCGAN
  32x32's 128 <-> 256) the two were level or oneDNN ahead, and at 8x8 outputs and above
  oneDNN was faster (26 against 45 ms forward), so those stay native.

The whole step with and without: ``python -m vanilla_gan.bench --frameworks
torch,torch-convs,tf-graph,tf-graph-convs`` (figures in vanilla_gan/README.md, "Matrix-multiply
convolutions on a CPU"); ``--no-cpu-gemm-convs`` turns both paths off. CUDA, bf16 autocast and
double backward (not needed by these models) always take torch's own kernels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable


def _fast(x: torch.Tensor) -> bool:
    return (
        x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")
    )


def _im2col(x: torch.Tensor, k: int, s: int, p: int) -> torch.Tensor:
    """(B, C, H, W) -> (B * OH * OW, k * k * C), columns ordered (kh, kw, c)."""
    B, C, H, W = x.shape
    xp = F.pad(x.permute(0, 2, 3, 1), (0, 0, p, p, p, p)).contiguous()
    oh, ow = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    sb, sh, sw, sc = xp.stride()
    patches = xp.as_strided((B, oh, ow, k, k, C), (sb, s * sh, s * sw, sh, sw, sc))
    return patches.reshape(B * oh * ow, k * k * C)


def _col2im(cols: torch.Tensor, shape: tuple[int, int, int, int], k: int, s: int, p: int):
    """The adjoint of :func:`_im2col`: rows (B * OH * OW, k * k * C) summed back into a
    (B, C, H, W) tensor (channels_last memory)."""
    B, C, H, W = shape
    oh, ow = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    c = cols.view(B, oh, ow, k, k, C)
    out = cols.new_zeros(B, H + 2 * p, W + 2 * p, C)
    for i in range(k):
        for j in range(k):
            out[:, i : i + s * oh : s, j : j + s * ow : s, :] += c[:, :, :, i, j, :]
    # A contiguous copy: BatchNorm after (or before, in the backward) runs several times slower
    # on the cropped view's strides than on channels_last memory.
    return out[:, p : p + H, p : p + W, :].contiguous().permute(0, 3, 1, 2)


def _kernel_matrix(w: torch.Tensor) -> torch.Tensor:
    """(A, B, kh, kw) -> (A, kh * kw * B): the (kh, kw, channel) order of the columns."""
    return w.permute(0, 2, 3, 1).reshape(w.shape[0], -1)


class _GemmConv(torch.autograd.Function):
    """F.conv2d(x, w, stride=s, padding=p), square kernel, no bias."""

    @staticmethod
    def forward(ctx, x, w, s: int, p: int):
        B, _, H, W = x.shape
        Co, k = w.shape[0], w.shape[2]
        cols, wm = _im2col(x, k, s, p), _kernel_matrix(w)
        ctx.save_for_backward(
            cols if ctx.needs_input_grad[1] else None, wm if ctx.needs_input_grad[0] else None
        )
        ctx.geom = (tuple(x.shape), tuple(w.shape), s, p)
        oh, ow = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
        return (cols @ wm.t()).view(B, oh, ow, Co).permute(0, 3, 1, 2)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        cols, wm = ctx.saved_tensors
        xshape, (Co, Ci, k, _), s, p = ctx.geom
        g2 = g.permute(0, 2, 3, 1).reshape(-1, Co)
        gx = _col2im(g2 @ wm, xshape, k, s, p) if ctx.needs_input_grad[0] else None
        gw = None
        if ctx.needs_input_grad[1]:
            gw = (g2.t() @ cols).view(Co, k, k, Ci).permute(0, 3, 1, 2)
        return gx, gw, None, None


class _GemmConvTranspose(torch.autograd.Function):
    """F.conv_transpose2d(x, w, stride=s, padding=p), square kernel, no bias or output
    padding; w is (in, out, k, k) as in torch."""

    @staticmethod
    def forward(ctx, x, w, s: int, p: int):
        B, Ci, h, wd = x.shape
        Co, k = w.shape[1], w.shape[2]
        xm, wm = x.permute(0, 2, 3, 1).reshape(-1, Ci), _kernel_matrix(w)
        ctx.save_for_backward(
            xm if ctx.needs_input_grad[1] else None, wm if ctx.needs_input_grad[0] else None
        )
        H, W = (h - 1) * s - 2 * p + k, (wd - 1) * s - 2 * p + k
        ctx.geom = (tuple(x.shape), tuple(w.shape), s, p)
        return _col2im(xm @ wm, (B, Co, H, W), k, s, p)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        xm, wm = ctx.saved_tensors
        (B, Ci, h, wd), (_, Co, k, _), s, p = ctx.geom
        gcols = _im2col(g, k, s, p)  # (B * h * w, k * k * Co)
        gx = gw = None
        if ctx.needs_input_grad[0]:
            gx = (gcols @ wm.t()).view(B, h, wd, Ci).permute(0, 3, 1, 2)
        if ctx.needs_input_grad[1]:
            gw = (xm.t() @ gcols).view(Ci, k, k, Co).permute(0, 3, 1, 2)
        return gx, gw, None, None


def _bias(y: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    return y if b is None else y + b.view(1, -1, 1, 1)


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters, state_dict and spectral-norm parametrisation) that
    takes ``path`` ("dense" / "gemm", see the module docstring) for float32 on a CPU."""

    def __init__(self, *args, path: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.path = path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.path is None or not _fast(x):
            return super().forward(x)
        w = self.weight
        if self.path == "dense":
            n = x.shape[0]
            y = F.linear(x.permute(0, 2, 3, 1).reshape(n, -1), _kernel_matrix(w), self.bias)
            return y.view(n, -1, 1, 1)
        return _bias(_GemmConv.apply(x, w, self.stride[0], self.padding[0]), self.bias)


class ConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` with the same CPU paths as :class:`Conv2d`."""

    def __init__(self, *args, path: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.path = path

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        if self.path is None or output_size is not None or not _fast(x):
            return super().forward(x, output_size)
        w = self.weight
        if self.path == "dense":
            n, k = x.shape[0], w.shape[2]
            y = (x.reshape(n, -1) @ _kernel_matrix(w)).view(n, k, k, -1)
            y = y if self.bias is None else y + self.bias
            return y.permute(0, 3, 1, 2)
        return _bias(_GemmConvTranspose.apply(x, w, self.stride[0], self.padding[0]), self.bias)
