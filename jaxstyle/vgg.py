"""VGG19's convolutional part as a Flax module, addressed by layer name.

The params pytree is ``{"params": {"conv1_1": {"kernel": (3, 3, in, out), "bias": (out,)}, …}}``,
kernels HWIO as in the Keras weight file, activations NHWC. A layer's activation is the output
of its ReLU (``conv4_2`` means relu4_2, as in Gatys et al.).

Input images are RGB in [0, 1]; :func:`preprocess` turns them into what the Caffe-trained
weights expect (BGR, 0–255, ImageNet mean subtracted).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxstyle.errors import SettingsError
from jaxstyle.layers import LAYER_CHANNELS, LAYER_IN_CHANNELS, LAYER_NAMES, POOLINGS  # noqa: F401
from jaxstyle.winograd import has_channels_for, uses_winograd, winograd_conv3x3, winograd_kernel

# Caffe's ImageNet mean, in BGR order, on the 0–255 scale.
CAFFE_MEAN_BGR = jnp.array([103.939, 116.779, 123.68], dtype=jnp.float32)

_DIMENSIONS = ("NHWC", "HWIO", "NHWC")
# The params key of precomputed input-gradient kernels (see with_backward_kernels).
_BACKWARD = "backward"
# The params key of precomputed Winograd kernels (see with_backward_kernels).
_WINOGRAD = "winograd"


def preprocess(rgb01: jax.Array) -> jax.Array:
    """RGB in [0, 1] (…, H, W, 3) → BGR, 0–255, mean-subtracted, as VGG19's Caffe weights expect."""
    return rgb01[..., ::-1] * 255.0 - CAFFE_MEAN_BGR


def _plain_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=_DIMENSIONS)


def backward_kernel(kernel: jax.Array) -> jax.Array:
    """The kernel of :func:`conv3x3`'s input gradient: ``kernel`` spatially flipped, in/out swapped."""
    return jnp.flip(kernel, axis=(0, 1)).transpose(0, 1, 3, 2)


def conv3x3(
    x: jax.Array,
    kernel: jax.Array,
    backward: jax.Array | None = None,
    winograd: tuple[jax.Array, jax.Array] | None = None,
) -> jax.Array:
    """A 3×3, stride 1, SAME convolution, NHWC × HWIO → NHWC.

    Its gradient with respect to ``x`` is written as a plain forward convolution with the
    spatially flipped, in/out-swapped kernel. That is the same math autodiff derives, but XLA:CPU
    only sends autodiff's form (a conv with reversed kernel dimensions) to its fast convolution
    path outside loops; inside ``lax.scan``/``while_loop`` (which every multi-step loop and
    ``optax.lbfgs``'s line search use) it fell to a 4–5× slower path. This form stays fast.

    Args:
        x: the input (N, H, W, C_in).
        kernel: HWIO (3, 3, C_in, C_out).
        backward: ``backward_kernel(kernel)``, computed once outside the loop (see
            :func:`with_backward_kernels`); None computes it here. Inside a compiled loop XLA
            neither hoists that flip nor fuses it, so it costs a copy of every kernel per step
            (about 50 MB for VGG19 up to conv5_1, 10% of a 256 px step).
        winograd: :func:`winograd_kernel` of ``kernel`` and of its backward kernel: then both
            directions run as :func:`winograd_conv3x3` (and ``backward`` is not used).
    """
    if winograd is not None:
        return _winograd_conv3x3(x, kernel, *winograd)
    return _conv3x3(x, kernel, backward_kernel(kernel) if backward is None else backward)


@jax.custom_vjp
def _conv3x3(x: jax.Array, kernel: jax.Array, backward: jax.Array) -> jax.Array:
    return _plain_conv(x, kernel)


def _conv3x3_fwd(x: jax.Array, kernel: jax.Array, backward: jax.Array):
    return _plain_conv(x, kernel), (x, kernel, backward)


def _conv3x3_bwd(residuals, g: jax.Array):
    x, kernel, backward = residuals
    grad_x = _plain_conv(g, backward)
    # The kernel's gradient is never used in style transfer (weights are constants); XLA drops
    # it then. It is still exact so that the function is an honest convolution everywhere.
    _, kernel_vjp = jax.vjp(lambda k: _plain_conv(x, k), kernel)
    (grad_kernel,) = kernel_vjp(g)
    # ``backward`` is a function of ``kernel``, whose gradient already accounts for it.
    return grad_x, grad_kernel, jnp.zeros_like(backward)


_conv3x3.defvjp(_conv3x3_fwd, _conv3x3_bwd)


# --- the same with the convolutions in Winograd form (winograd.py) ----------------------------


@jax.custom_vjp
def _winograd_conv3x3(x: jax.Array, kernel: jax.Array, forward: jax.Array, backward: jax.Array) -> jax.Array:
    return winograd_conv3x3(x, forward)


def _winograd_conv3x3_fwd(x, kernel, forward, backward):
    return winograd_conv3x3(x, forward), (x, kernel, forward, backward)


def _winograd_conv3x3_bwd(residuals, g):
    x, kernel, forward, backward = residuals
    # As in _conv3x3_bwd: the input gradient is the conv with the flipped, swapped kernel, here in
    # its Winograd form too; the kernel's gradient is exact but unused.
    _, kernel_vjp = jax.vjp(lambda k: _plain_conv(x, k), kernel)
    (grad_kernel,) = kernel_vjp(g)
    return winograd_conv3x3(g, backward), grad_kernel, jnp.zeros_like(forward), jnp.zeros_like(backward)


_winograd_conv3x3.defvjp(_winograd_conv3x3_fwd, _winograd_conv3x3_bwd)


def pool2x2(x: jax.Array, pooling: str) -> jax.Array:
    """2×2, stride 2 max or average pooling of NHWC ``x``; an odd last row or column is dropped
    (as VALID pooling does).

    Written as a reshape and a reduction rather than ``reduce_window``: the gradient is then a
    few elementwise ops that XLA fuses, where ``reduce_window``'s (select-and-scatter) becomes a
    variadic reduce-window over index arrays and a scatter on XLA:CPU, several times slower.
    """
    n, height, width, channels = x.shape
    x = x[:, : height // 2 * 2, : width // 2 * 2]
    blocks = x.reshape(n, height // 2, 2, width // 2, 2, channels)
    return blocks.max(axis=(2, 4)) if pooling == "max" else blocks.mean(axis=(2, 4))


def _check_layers(layers: Sequence[str], pooling: str) -> None:
    if not layers:
        raise SettingsError("no VGG19 layer asked for")
    unknown = sorted(set(layers) - set(LAYER_NAMES))
    if unknown:
        raise SettingsError(f"unknown VGG19 layer(s) {', '.join(unknown)}; known: {', '.join(LAYER_NAMES)}")
    if pooling not in POOLINGS:
        raise SettingsError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")


def _conv_relu(
    x: jax.Array,
    kernel: jax.Array,
    bias: jax.Array,
    backward: jax.Array | None = None,
    winograd: tuple[jax.Array, jax.Array] | None = None,
) -> jax.Array:
    return jax.nn.relu(conv3x3(x, kernel.astype(x.dtype), backward, winograd) + bias.astype(x.dtype))


class Conv3x3(nn.Module):
    """One VGG convolution with bias and ReLU."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.he_normal(), (3, 3, x.shape[-1], self.features), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
        return _conv_relu(x, kernel, bias)


class VGG19(nn.Module):
    """VGG19's 16 convolutions; returns the activations of ``layers`` (a dict by name).

    It stops after the deepest layer asked for, so style transfer with layers up to conv5_1
    never computes conv5_2 … conv5_4.

    Attributes:
        layers: names from :data:`LAYER_NAMES` whose activations are returned.
        pooling: "max" (as trained) or "average" (Gatys et al. found it gives smoother results).
    """

    layers: Sequence[str] = LAYER_NAMES
    pooling: str = "max"

    @nn.compact
    def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
        _check_layers(self.layers, self.pooling)
        last = max(LAYER_NAMES.index(name) for name in self.layers)
        out: dict[str, jax.Array] = {}
        for k, name in enumerate(LAYER_NAMES[: last + 1]):
            if k > 0 and name.endswith("_1"):
                x = pool2x2(x, self.pooling)
            x = Conv3x3(LAYER_CHANNELS[name], name=name)(x)
            if name in self.layers:
                out[name] = x
        return out


def features(params: dict, rgb01: jax.Array, layers: Sequence[str], pooling: str = "max") -> dict[str, jax.Array]:
    """Activations of ``layers`` for images ``rgb01`` (N, H, W, 3) in [0, 1].

    ``params`` is the full VGG19 params dict (``{"params": …}``), optionally with the input-gradient
    kernels of :func:`with_backward_kernels`; layers past the deepest one asked for are simply not
    read. Pure and undecorated: the caller jits.

    The same computation as ``VGG19(layers, pooling).apply(params, preprocess(rgb01))``, written
    as a plain loop over the params: Flax's ``apply`` checks every param's shape with
    ``jax.eval_shape`` while tracing, which was a third of the time a new process needs before its
    first step when the compiled code comes from the persistent cache.
    """
    _check_layers(layers, pooling)
    last = max(LAYER_NAMES.index(name) for name in layers)
    backward = params.get(_BACKWARD, {})
    winograd_kernels = params.get(_WINOGRAD, {})
    x = preprocess(rgb01)
    out: dict[str, jax.Array] = {}
    for k, name in enumerate(LAYER_NAMES[: last + 1]):
        if k > 0 and name.endswith("_1"):
            x = pool2x2(x, pooling)
        layer = params["params"][name]
        fast = None
        if name in winograd_kernels and uses_winograd(x.shape, layer["kernel"].shape):
            fast = (winograd_kernels[name]["forward"], winograd_kernels[name]["backward"])
        x = _conv_relu(x, layer["kernel"], layer["bias"], backward.get(name, {}).get("kernel"), fast)
        if name in layers:
            out[name] = x
    return out


def with_backward_kernels(params: dict, winograd: bool = False) -> dict:
    """``params`` plus every conv's input-gradient kernel, for :func:`features` inside a compiled
    loop: computed once here instead of in every step (the weights are constants). With
    ``winograd`` (for XLA:CPU), also the Winograd forms of both kernels of the layers with enough
    channels for it (see uses_winograd)."""
    layers = params["params"]
    backward = {name: backward_kernel(layer["kernel"]) for name, layer in layers.items()}
    extra: dict = {_BACKWARD: {name: {"kernel": kernel} for name, kernel in backward.items()}}
    if winograd:
        extra[_WINOGRAD] = {
            name: {
                "forward": winograd_kernel(layer["kernel"]),
                "backward": winograd_kernel(backward[name]),
            }
            for name, layer in layers.items()
            if has_channels_for(layer["kernel"].shape)
        }
    return {**params, **extra}


def without_winograd(params: dict) -> dict:
    """``params`` without the Winograd kernels of :func:`with_backward_kernels`: for a one-off
    forward pass, where Winograd saves less time than it costs to compile."""
    return {k: v for k, v in params.items() if k != _WINOGRAD}


def init_params(seed: int = 0) -> dict:
    """He-initialized VGG19 params (every layer), ``{"params": {name: {"kernel", "bias"}}}``."""
    return VGG19().init(jax.random.PRNGKey(seed), jnp.zeros((1, 32, 32, 3), jnp.float32))


def param_shapes() -> dict[str, dict[str, tuple[int, ...]]]:
    """The shape of every kernel and bias, by layer name."""
    return {
        name: {"kernel": (3, 3, LAYER_IN_CHANNELS[name], LAYER_CHANNELS[name]), "bias": (LAYER_CHANNELS[name],)}
        for name in LAYER_NAMES
    }
