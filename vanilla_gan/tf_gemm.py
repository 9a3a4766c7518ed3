"""DCGAN's convolutions as matrix multiplies in TensorFlow's plain graph on a CPU.

The Keras twin of :mod:`vanilla_gan.torch_gemm`, for the same layers (``vanilla_gan.arch.
layer_paths``): the same functions as ``tf.nn.conv2d`` / ``conv2d_transpose`` to float rounding,
computed by other kernels. TensorFlow's plain graph runs its convolutions through oneDNN and
lags the GEMM on the same shapes as torch does (scratch micro-benchmark, DCGAN 64x64's
256 -> 512 layer, batch 64, one thread: forward 41.8 ms, against 25.9 ms for the matrix
multiply of the same size). Under XLA
the convolution already ran at the GEMM's speed (25.6 ms), so an XLA-compiled step keeps
``tf.nn``'s convolutions; so do bf16 and GPUs.

Kernels are Keras's: conv (kh, kw, in, out), transposed conv (kh, kw, out, in). The ``gemm``
functions are for 4x4 kernels, stride 2, torch padding 1 (Keras "same" for these layers).
"""

from __future__ import annotations

from gancore.tf_utils import tf

K, S = 4, 2  # kernel and stride of the "gemm" layers (padding 1)


def _im2col(x: tf.Tensor) -> tf.Tensor:
    """(B, H, W, C) -> (B, H/2, W/2, 16 C): the 4x4 stride-2 patches of x padded by 1, taps
    ordered (ah, aw, bh, bw, c) for kernel tap (kh, kw) = (2 ah + bh, 2 aw + bw).

    Built from space_to_depth: after it, patch (i, j) is the 2x2 block at (i, j) of the
    (H/2 + 1)-sided grid, four contiguous slices. (``tf.image.extract_patches`` took 12 ms
    for DCGAN 64x64's 256-channel input, batch 64, about half the GEMM's time.)
    """
    h, w = x.shape[1] // 2, x.shape[2] // 2
    s2d = tf.nn.space_to_depth(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), 2)
    return tf.concat(
        [s2d[:, ah : ah + h, aw : aw + w, :] for ah in range(2) for aw in range(2)], axis=-1
    )


def _col2im(cols: tf.Tensor, c: int) -> tf.Tensor:
    """The adjoint of :func:`_im2col`: (B, h, w, 16 c) -> (B, 2h, 2w, c). Each (ah, aw)
    block of taps shifts onto the (h + 1)-sided grid, and depth_to_space spreads the sum."""
    blocks = tf.split(cols, 4, axis=-1)
    grid = tf.add_n(
        [
            tf.pad(blocks[2 * ah + aw], [[0, 0], [ah, 1 - ah], [aw, 1 - aw], [0, 0]])
            for ah in range(2)
            for aw in range(2)
        ]
    )
    return tf.nn.depth_to_space(grid, 2)[:, 1:-1, 1:-1, :]


def _conv_matrix(kernel: tf.Tensor) -> tf.Tensor:
    """Keras conv kernel (4, 4, in, out) -> (16 in, out), rows in :func:`_im2col`'s order."""
    cin, cout = kernel.shape[2], kernel.shape[3]
    k6 = tf.reshape(kernel, [2, 2, 2, 2, cin, cout])  # (ah, bh, aw, bw, in, out)
    return tf.reshape(tf.transpose(k6, (0, 2, 1, 3, 4, 5)), [K * K * cin, cout])


def _conv_kernel(matrix: tf.Tensor, cin: int, cout: int) -> tf.Tensor:
    """The inverse of :func:`_conv_matrix`."""
    k6 = tf.reshape(matrix, [2, 2, 2, 2, cin, cout])  # (ah, aw, bh, bw, in, out)
    return tf.reshape(tf.transpose(k6, (0, 2, 1, 3, 4, 5)), [K, K, cin, cout])


def _convT_matrix(kernel: tf.Tensor) -> tf.Tensor:
    """Keras transposed-conv kernel (4, 4, out, in) -> (in, 16 out), columns in
    :func:`_im2col`'s order."""
    cout, cin = kernel.shape[2], kernel.shape[3]
    k6 = tf.reshape(kernel, [2, 2, 2, 2, cout, cin])  # (ah, bh, aw, bw, out, in)
    return tf.reshape(tf.transpose(k6, (5, 0, 2, 1, 3, 4)), [cin, K * K * cout])


def _convT_kernel(matrix: tf.Tensor, cout: int, cin: int) -> tf.Tensor:
    """The inverse of :func:`_convT_matrix`."""
    k6 = tf.reshape(matrix, [cin, 2, 2, 2, 2, cout])  # (in, ah, aw, bh, bw, out)
    return tf.reshape(tf.transpose(k6, (1, 3, 2, 4, 5, 0)), [K, K, cout, cin])


# Outermost do_not_convert: AutoGraph, converting the caller (the train step's tf.function),
# would otherwise call the undecorated function and get its (value, gradient function) pair.
@tf.autograph.experimental.do_not_convert
@tf.custom_gradient
def conv_gemm(x: tf.Tensor, kernel: tf.Tensor):
    """``tf.nn.conv2d(x, kernel, 2, "SAME")`` for a 4x4 kernel (torch padding 1)."""
    cin, cout = kernel.shape[2], kernel.shape[3]
    cols = _im2col(x)
    flat = tf.reshape(cols, [-1, K * K * cin])
    wm = _conv_matrix(kernel)
    y = tf.reshape(tf.matmul(flat, wm), tf.concat([tf.shape(cols)[:3], [cout]], 0))

    def grad(dy):
        g = tf.reshape(dy, [-1, cout])
        dx = _col2im(tf.reshape(tf.matmul(g, wm, transpose_b=True), tf.shape(cols)), cin)
        dk = _conv_kernel(tf.matmul(flat, g, transpose_a=True), cin, cout)
        return dx, dk

    return y, grad


@tf.autograph.experimental.do_not_convert
@tf.custom_gradient
def conv_transpose_gemm(x: tf.Tensor, kernel: tf.Tensor):
    """``tf.nn.conv2d_transpose`` with a 4x4 kernel, stride 2, torch padding 1 (H -> 2H)."""
    cout, cin = kernel.shape[2], kernel.shape[3]
    shape = tf.shape(x)
    flat = tf.reshape(x, [-1, cin])
    wm = _convT_matrix(kernel)
    cols = tf.reshape(tf.matmul(flat, wm), tf.concat([shape[:3], [K * K * cout]], 0))
    y = _col2im(cols, cout)

    def grad(dy):
        g = tf.reshape(_im2col(dy), [-1, K * K * cout])
        dx = tf.reshape(tf.matmul(g, wm, transpose_b=True), shape)
        dk = _convT_kernel(tf.matmul(flat, g, transpose_a=True), cout, cin)
        return dx, dk

    return y, grad


def conv_dense(x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """A "valid" convolution whose kernel covers the whole input: (B, k, k, in) -> (B, 1, 1,
    out), as one matrix multiply (plain ops; TensorFlow differentiates it)."""
    cout = kernel.shape[3]
    flat = tf.reshape(x, [tf.shape(x)[0], -1])
    y = tf.matmul(flat, tf.reshape(kernel, [-1, cout]))
    return tf.reshape(y, [-1, 1, 1, cout])


def conv_transpose_dense(x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """A transposed convolution from a 1x1 input: (B, 1, 1, in) -> (B, k, k, out)."""
    k, _, cout, cin = kernel.shape
    wm = tf.reshape(tf.transpose(kernel, (3, 0, 1, 2)), [cin, k * k * cout])  # (kh, kw, out)
    y = tf.matmul(tf.reshape(x, [-1, cin]), wm)
    return tf.reshape(y, [-1, k, k, cout])
