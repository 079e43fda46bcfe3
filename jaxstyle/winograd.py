"""Winograd F(2×2, 3×3): a 3×3 convolution with fewer multiplications, for XLA:CPU.

Each 2×2 block of outputs comes from a 4×4 tile of inputs with 16 multiplications per channel pair
instead of 36 (Lavin & Gray 2016): 16 batched matmuls of (tiles × C_in) by (C_in × C_out), between
an input and an output transform made of additions. The transforms are memory-bound, so it pays
where channels are many and the image is small (:func:`uses_winograd`). vgg.py runs its deep
layers' convolutions, forward and backward, through :func:`winograd_conv3x3` with kernels
transformed once per run (:func:`winograd_kernel`); results match the direct convolution to ~1e-6
relative.

Pure functions of arrays, undecorated: the caller jits.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# Which layers use it was chosen on the whole step (2 Xeon cores, XLA:CPU), where the direct convs
# run slower than they do alone: 256 px 0.277 → 0.217 s/it, 512 px 1.11 → 0.85 s/it. Alone,
# 512→512 channels at 24×32 px take 0.58× the direct conv's time and 256→256 at 48×64 0.66×, but
# 128→128 at 192×256 1.7×.
MIN_CHANNELS = 128
MAX_PIXELS = 96 * 128


def _kernel_transform(k: jax.Array, axis: int) -> jax.Array:
    """G·g along ``axis`` (of length 3), stacked first; G = [[1, 0, 0], [½, ½, ½], [½, -½, ½], [0, 0, 1]].
    Written as sums: as an einsum, XLA:CPU took 0.35 s instead of 0.15 s for VGG19's kernels."""
    k0, k1, k2 = (jax.lax.index_in_dim(k, i, axis, keepdims=False) for i in range(3))
    return jnp.stack([k0, (k0 + k1 + k2) * 0.5, (k0 - k1 + k2) * 0.5, k2])


def winograd_kernel(kernel: jax.Array) -> jax.Array:
    """A 3×3 HWIO kernel transformed for :func:`winograd_conv3x3`: G·g·Gᵀ per channel pair, as
    (16, C_in, C_out), tile positions in (column, row) order as winograd_conv3x3 makes them."""
    rows = _kernel_transform(kernel, 0)  # (4 row, 3 col, C_in, C_out)
    return _kernel_transform(rows, 1).reshape(16, *kernel.shape[2:])  # (4 col, 4 row, …)


def _tile_transform(x: jax.Array, n_tiles: int, axis: int) -> jax.Array:
    """Bᵀ·d along ``axis`` for every 4-wide tile at stride 2: (4, …) with the tiles on ``axis``."""

    def taps(offset: int) -> jax.Array:
        return jax.lax.slice_in_dim(x, offset, offset + 2 * n_tiles - 1, stride=2, axis=axis)

    d0, d1, d2, d3 = taps(0), taps(1), taps(2), taps(3)
    return jnp.stack([d0 - d2, d1 + d2, d2 - d1, d1 - d3])


def _output_transform(m: jax.Array, axis: int) -> jax.Array:
    """Aᵀ·m along ``axis`` (of length 4): the 2 outputs of each tile, stacked first."""
    m0, m1, m2, m3 = (jax.lax.index_in_dim(m, k, axis, keepdims=False) for k in range(4))
    return jnp.stack([m0 + m1 + m2, m1 - m2 - m3])


def winograd_conv3x3(x: jax.Array, transformed: jax.Array) -> jax.Array:
    """The same as a 3×3, stride 1, SAME convolution of NHWC ``x`` with a kernel, given that
    kernel's :func:`winograd_kernel`."""
    n, height, width, _ = x.shape
    rows, cols = (height + 1) // 2, (width + 1) // 2
    padded = jnp.pad(x, ((0, 0), (1, 2 * rows - height + 1), (1, 2 * cols - width + 1), (0, 0)))
    tiles = _tile_transform(_tile_transform(padded, rows, 1), cols, 3)  # (4 col, 4 row, n, rows, cols, C)
    products = jnp.einsum("kpc,kcd->kpd", tiles.reshape(16, n * rows * cols, -1), transformed)
    products = products.reshape(4, 4, n, rows, cols, -1)
    out = _output_transform(_output_transform(products, 0), 1)  # (2 row, 2 col, n, rows, cols, C_out)
    out = out.transpose(2, 3, 0, 4, 1, 5).reshape(n, 2 * rows, 2 * cols, -1)
    return out[:, :height, :width]


def has_channels_for(kernel_shape: tuple[int, ...]) -> bool:
    """Whether an HWIO kernel has channels enough, in and out, for Winograd to pay."""
    return min(kernel_shape[2:]) >= MIN_CHANNELS


def uses_winograd(x_shape: tuple[int, ...], kernel_shape: tuple[int, ...]) -> bool:
    """Whether a conv of an NHWC input of ``x_shape`` with an HWIO kernel is faster as Winograd on
    XLA:CPU (see MAX_PIXELS): deep layers on small images."""
    return has_channels_for(kernel_shape) and x_shape[1] * x_shape[2] <= MAX_PIXELS
