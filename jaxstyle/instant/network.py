"""The image transformation network of instant runs: one feed-forward pass paints a photo.

After Johnson et al. 2016 ("Perceptual Losses for Real-Time Style Transfer"): a 9×9 convolution,
two strided 3×3 convolutions down to a quarter of the size, five residual blocks, two nearest-
neighbour upsamplings each followed by a 3×3 convolution, and a 9×9 convolution to RGB. Every
convolution pads by reflection (no dark border) and is followed by instance normalization.

Differs from Johnson et al.:
- upsampling is nearest-neighbour then a convolution, not a transposed convolution, which leaves
  a checkerboard (Odena et al. 2016, "Deconvolution and Checkerboard Artifacts");
- the normalization is *conditional* (Dumoulin et al. 2017, "A Learned Representation for
  Artistic Style"): every style has its own scale and shift per normalization layer, and the
  convolutions are shared. One network holds many styles; a blend of styles is the blend of their
  scales and shifts (:func:`blend_norms`); a new style is trained as new rows of those parameters
  only;
- the output goes through a sigmoid to RGB in [0, 1], jaxstyle's pixel range.

The convolutions are a Flax module with an explicit params pytree; the per-style normalization
parameters are a separate pytree, ``{layer: {"scale": (S, C), "shift": (S, C)}}`` for S styles,
passed in as the blended ``{layer: {"scale": (C,), "shift": (C,)}}``.
"""

from __future__ import annotations

from collections.abc import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# (name, kernel size, stride, output channels) of the encoder; the decoder mirrors it.
_ENCODER = (("conv1", 9, 1, 32), ("conv2", 3, 2, 64), ("conv3", 3, 2, 128))
RESIDUAL_BLOCKS = 5
_DECODER = (("up1", 3, 64), ("up2", 3, 32))
_EPS = 1e-5


def norm_layer_channels() -> dict[str, int]:
    """Every conditional normalization layer of the network and its channel count."""
    layers = {name: channels for name, _, _, channels in _ENCODER}
    for block in range(RESIDUAL_BLOCKS):
        layers[f"res{block}_a"] = layers[f"res{block}_b"] = _ENCODER[-1][3]
    layers.update({name: channels for name, _, channels in _DECODER})
    return layers


def init_norms(n_styles: int) -> dict[str, dict[str, jax.Array]]:
    """Normalization parameters for ``n_styles`` new styles: scale 1, shift 0 (plain instance norm)."""
    return {
        name: {"scale": jnp.ones((n_styles, channels)), "shift": jnp.zeros((n_styles, channels))}
        for name, channels in norm_layer_channels().items()
    }


def blend_norms(norms: Mapping[str, Mapping[str, jax.Array]], weights: jax.Array) -> dict:
    """The normalization parameters of a blend of styles: each row weighted by ``weights`` (S,),
    which sum to 1. One style is the one-hot blend."""
    return jax.tree.map(lambda rows: jnp.tensordot(weights, rows, axes=1), dict(norms))


def instance_norm(x: jax.Array, scale: jax.Array, shift: jax.Array) -> jax.Array:
    """Normalize each image's channels over its positions, then scale and shift them."""
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + _EPS) * scale + shift


def reflect_conv(
    x: jax.Array,
    features: int,
    kernel: int,
    stride: int,
    name: str | None = None,
    *,
    use_bias: bool = True,
    space_to_depth: bool = False,
) -> jax.Array:
    """A convolution of ``x`` reflection-padded by ``kernel // 2`` (the size stays, divided by the
    stride), inside the calling module.

    Why the extra row and column of zeros, cropped off again: XLA:CPU runs a convolution without
    padding on a slow path, and one with any padding on its fast one (measured at 256 px, batch 4:
    the 9×9 output conv 951 ms unpadded, 41 ms with one zero row and column at the high end; the
    whole network 2.5 s → 0.7 s). Padding at the high end leaves every output of the unpadded
    convolution where it was; the crop keeps exactly those.
    """
    pad = kernel // 2
    x = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    if space_to_depth and stride == 1 and x.shape[1] % 2 == 0 and x.shape[2] % 2 == 0:
        return SpaceToDepthConv(features, kernel, use_bias=use_bias, name=name)(x)
    height, width = ((size - kernel) // stride + 1 for size in x.shape[1:3])
    conv = nn.Conv(features, (kernel, kernel), strides=stride, padding=((0, 1), (0, 1)), use_bias=use_bias, name=name)
    return conv(x)[:, :height, :width]


def _space_to_depth_indices(kernel: int) -> tuple[np.ndarray, np.ndarray]:
    """Where each tap of the space-to-depth kernel comes from in the zero-bordered original kernel
    (see :func:`conv_space_to_depth`): index ``2p + q - r + 1`` for tap ``p``, input phase ``q`` and
    output phase ``r``; 0 and ``kernel + 1`` are the zero border."""
    taps = (kernel + 1) // 2
    p, q, r = np.meshgrid(np.arange(taps), np.arange(2), np.arange(2), indexing="ij")
    index = 2 * p + q - r + 1  # (taps, 2, 2)
    return index[:, :, :, None, None, None], index[None, None, None]


def conv_space_to_depth(padded: jax.Array, kernel: jax.Array) -> jax.Array:
    """The stride-1 convolution of ``padded`` (N, H + k - 1, W + k - 1, C; H and W even) with an odd
    ``kernel`` (k, k, C, O), computed on 2×2 blocks of pixels as channels.

    Why: XLA:CPU is slow on convolutions with few channels at full resolution (3 → 8, 8 → 3: the
    first and last 9×9 layers of the pretrained networks). Folding each 2×2 block into 4× the
    channels turns the k×k convolution into a (k+1)/2 square one from 4C to 4O channels on a quarter
    of the positions: about 1.2–1.8× the multiply-adds, 3–7× faster (measured at 512 and 1024 px).
    The output block's pixel (r, s) takes input pixel (2a + 2p + q, …) with original tap
    2p + q − r, zero where that falls outside the kernel.
    """
    n, height, width, channels = padded.shape
    k, _, _, out_channels = kernel.shape
    taps = (k + 1) // 2
    bordered = jnp.pad(kernel, ((1, 1), (1, 1), (0, 0), (0, 0)))
    rows, cols = _space_to_depth_indices(k)
    # (taps, 2, 2, taps, 2, 2, C, O) as (p, q, r, p', q', s, c, o) → (p, p', q, q', c, r, s, o)
    blocks = bordered[rows, cols].transpose(0, 3, 1, 4, 6, 2, 5, 7)
    blocks = blocks.reshape(taps, taps, 4 * channels, 4 * out_channels)
    folded = padded.reshape(n, height // 2, 2, width // 2, 2, channels).transpose(0, 1, 3, 2, 4, 5)
    folded = folded.reshape(n, height // 2, width // 2, 4 * channels)
    out_h, out_w = (height - k + 1) // 2, (width - k + 1) // 2
    # One zero row and column at the high end keeps XLA:CPU on its fast path (see reflect_conv).
    y = jax.lax.conv_general_dilated(
        folded, blocks, (1, 1), ((0, 1), (0, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC")
    )[:, :out_h, :out_w]
    y = y.reshape(n, out_h, out_w, 2, 2, out_channels).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(n, 2 * out_h, 2 * out_w, out_channels)


class SpaceToDepthConv(nn.Module):
    """A stride-1 convolution of an already padded input by :func:`conv_space_to_depth`, with the
    params of :class:`flax.linen.Conv` (``kernel`` (k, k, C, O), ``bias``)."""

    features: int
    kernel_size: int
    use_bias: bool = True

    @nn.compact
    def __call__(self, padded: jax.Array) -> jax.Array:
        k = self.kernel_size
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (k, k, padded.shape[-1], self.features))
        y = conv_space_to_depth(padded, kernel)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,))
        return y


def upsample2(x: jax.Array) -> jax.Array:
    """Nearest-neighbour upsampling of (N, H, W, C) by 2 in height and width."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


class _Conv(nn.Module):
    """A reflection-padded convolution followed by the conditional instance norm of ``name``."""

    features: int
    kernel: int
    stride: int = 1

    @nn.compact
    def __call__(self, x: jax.Array, norm: Mapping[str, jax.Array]) -> jax.Array:
        x = reflect_conv(x, self.features, self.kernel, self.stride)
        return instance_norm(x, norm["scale"], norm["shift"])


class TransformNet(nn.Module):
    """photo (N, H, W, 3) in [0, 1] → painting (N, H, W, 3) in [0, 1], given blended norms.

    H and W should be multiples of 4 (two stride-2 steps down and two ×2 upsamplings back); the
    callers pad to that (see paint.py)."""

    @nn.compact
    def __call__(self, x: jax.Array, norms: Mapping[str, Mapping[str, jax.Array]]) -> jax.Array:
        x = x * 2.0 - 1.0
        for name, kernel, stride, channels in _ENCODER:
            x = nn.relu(_Conv(channels, kernel, stride, name=name)(x, norms[name]))
        channels = _ENCODER[-1][3]
        for block in range(RESIDUAL_BLOCKS):
            y = nn.relu(_Conv(channels, 3, name=f"res{block}_a")(x, norms[f"res{block}_a"]))
            x = x + _Conv(channels, 3, name=f"res{block}_b")(y, norms[f"res{block}_b"])
        for name, kernel, channels in _DECODER:
            x = upsample2(x)
            x = nn.relu(_Conv(channels, kernel, name=name)(x, norms[name]))
        return jax.nn.sigmoid(reflect_conv(x, 3, 9, 1, name="out"))


def init_net(seed: int = 0) -> dict:
    """The shared convolutions' params, ``{"params": …}``."""
    norms = blend_norms(init_norms(1), jnp.ones(1))
    return TransformNet().init(jax.random.PRNGKey(seed), jnp.zeros((1, 16, 16, 3)), norms)


def apply(net: dict, photos: jax.Array, norms: Mapping[str, Mapping[str, jax.Array]]) -> jax.Array:
    """The network on ``photos`` with blended ``norms`` (pure; the caller jits)."""
    return TransformNet().apply(net, photos, norms)
