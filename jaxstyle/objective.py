"""The loss of style transfer, in one place: what an image is compared with, and how.

1. The objective (:class:`Objective`): which VGG19 layers hold the content and the style, the
   pooling and the style loss. It changes the compiled program, so it is static.
2. The targets (:class:`Targets`): the content photo's activations at the content layers, and the
   style loss's targets at the style layers (Gram matrices, or Gaussian fits for W2) of each
   painting, blended over the paintings. They depend only on the inputs: computed once per scale.
3. The weights (:class:`LossWeights`): each style layer's share and the weights of the (content,
   style, tv) terms, as traced arrays, so moving a slider never recompiles.
4. The loss: ``content_weight·content + style_weight·style + tv_weight·tv`` (see losses.py), as
   the weighted total and the terms in :data:`~jaxstyle.runs.LOSS_NAMES` order.

The optimization (transfer.py) lowers :func:`loss_and_terms`; training an instant model lowers
:func:`loss_and_terms_from_features` over a batch; :func:`losses_of` scores an image made any
other way (an instant model's, the photo itself) as an optimization would. One loss for all three,
so their numbers compare.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from jaxstyle import devices, images, losses, vgg
from jaxstyle.preserve_colors import PRESERVE_COLORS
from jaxstyle.runs import LOSS_NAMES
from jaxstyle.style_losses import STYLE_LOSSES
from jaxstyle.weights import Weights

if TYPE_CHECKING:
    # Only read here, never built: the settings import the tables, whose start "style" uses as_batch.
    from jaxstyle.settings import TransferSettings

# Style images are never upsampled beyond this long side: beyond it they only cost time.
MAX_STYLE_PX = images.MAX_SIZE_PX


@dataclasses.dataclass(frozen=True)
class Objective:
    """The settings that shape the loss and change its compiled program (the weights are traced)."""

    content_layers: tuple[str, ...]
    style_layers: tuple[str, ...]
    pooling: str
    style_loss: str

    @classmethod
    def of(cls, settings: TransferSettings) -> Objective:
        return cls(
            content_layers=settings.content_layers,
            style_layers=settings.style_layers,
            pooling=settings.pooling,
            style_loss=settings.style_loss,
        )

    @property
    def layers(self) -> tuple[str, ...]:
        """The content and style layers, each once, in that order."""
        return tuple(dict.fromkeys(self.content_layers + self.style_layers))


class LossWeights(NamedTuple):
    """The loss's weights, as traced arrays."""

    style_layers: jax.Array  # each style layer's share of the style term, summing to 1
    terms: jax.Array  # the weights of (content, style, tv)


def loss_weights(settings: TransferSettings) -> LossWeights:
    """The settings' loss weights; the style layers' are normalized to sum 1 (None: equal)."""
    layer_weights = np.asarray(settings.style_layer_weights or (1.0,) * len(settings.style_layers), np.float32)
    term_weights = np.array([settings.content_weight, settings.style_weight, settings.tv_weight], np.float32)
    return LossWeights(jnp.asarray(layer_weights / layer_weights.sum()), jnp.asarray(term_weights))


class Targets(NamedTuple):
    """What the image is compared with, per layer name."""

    content: dict[str, jax.Array]  # the photo's activations at the content layers
    style: dict[str, Any]  # the style loss's targets at the style layers, blended over paintings


def style_targets(objective: Objective, params: dict, styles: Sequence[jax.Array], blend: jax.Array) -> dict[str, Any]:
    """The style loss's targets at every style layer: the styles' statistics blended by ``blend``."""
    return _blend_style_targets(objective, [_style_stats(objective, params, style) for style in styles], blend)


def _style_stats(objective: Objective, params: dict, style: jax.Array) -> dict[str, Any]:
    feats = vgg.features(params, style, objective.style_layers, objective.pooling)
    return {name: STYLE_LOSSES[objective.style_loss].statistics(f) for name, f in feats.items()}


def _blend_style_targets(objective: Objective, per_style: list[dict[str, Any]], blend: jax.Array) -> dict[str, Any]:
    """Blend the styles' statistics with weights ``blend`` (summing to 1), then prepare them as
    the style loss's targets."""
    blended = jax.tree.map(lambda *xs: sum(blend[i] * x for i, x in enumerate(xs)), *per_style)
    return {name: STYLE_LOSSES[objective.style_loss].target(stats) for name, stats in blended.items()}


def targets(
    objective: Objective, params: dict, content: jax.Array, styles: Sequence[jax.Array], blend: jax.Array
) -> Targets:
    """The targets of the photo batch ``content`` and the painting batches ``styles``."""
    return Targets(
        content=vgg.features(params, content, objective.content_layers, objective.pooling),
        style=style_targets(objective, params, styles, blend),
    )


# --- the loss -------------------------------------------------------------------------------


def _terms(
    objective: Objective, feats: dict, image: jax.Array, targets: Targets, style_layer_weights: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The unweighted loss terms (content, style, tv) of ``image`` whose VGG activations are ``feats``."""
    content = sum(losses.content_loss(feats[n], targets.content[n]) for n in objective.content_layers)
    content = content / len(objective.content_layers)
    style_loss = STYLE_LOSSES[objective.style_loss].loss
    style_terms = [style_loss(feats[name], targets.style[name]) for name in objective.style_layers]
    style = jnp.dot(jnp.stack(style_terms), style_layer_weights)
    return content, style, losses.tv_loss(image)


def loss_and_terms_from_features(
    objective: Objective, feats: dict, image: jax.Array, targets: Targets, weights: LossWeights
) -> tuple[jax.Array, jax.Array]:
    """The weighted total loss of ``image``, whose VGG activations are ``feats``, and its terms in
    LOSS_NAMES order (the total, then the unweighted content, style and tv)."""
    content, style, tv = _terms(objective, feats, image, targets, weights.style_layers)
    total = weights.terms[0] * content + weights.terms[1] * style + weights.terms[2] * tv
    return total, jnp.stack([total, content, style, tv])


def loss_and_terms(
    objective: Objective, params: dict, image: jax.Array, targets: Targets, weights: LossWeights
) -> tuple[jax.Array, jax.Array]:
    """The weighted total loss of ``image`` and its terms (LOSS_NAMES order): the one loss of
    optimization runs and of training instant models."""
    feats = vgg.features(params, image, objective.layers, objective.pooling)
    return loss_and_terms_from_features(objective, feats, image, targets, weights)


def named_losses(terms: Any) -> dict[str, float]:
    """A row of terms in LOSS_NAMES order, by name."""
    return {name: float(value) for name, value in zip(LOSS_NAMES, terms, strict=True)}


# One compiled call instead of one per layer: each separate one costs a trace and a cache lookup.
_with_backward_kernels = jax.jit(vgg.with_backward_kernels, static_argnums=1)


@functools.lru_cache(maxsize=4)
def vgg_params(weights: Weights, layers: tuple[str, ...]) -> dict:
    """The VGG19 params the loss needs at ``layers``: the layers up to the deepest of them, with
    their input-gradient kernels and, on CPU, their Winograd forms computed once (see
    vgg.with_backward_kernels), kept per weights object. A forward pass alone (targets, scores)
    takes them through vgg.without_winograd."""
    deepest = max(vgg.LAYER_NAMES.index(name) for name in layers)
    used = {name: weights.params["params"][name] for name in vgg.LAYER_NAMES[: deepest + 1]}
    # Winograd is for XLA:CPU (see winograd.MAX_PIXELS); GPU convolution libraries choose
    # their own algorithms.
    return _with_backward_kernels({"params": jax.tree.map(jnp.asarray, used)}, devices.on_cpu())


# --- the inputs, at the shape the loss is taken ---------------------------------------------


def shape_for(image: Image.Image, size_px: int, min_side_px: int = 1) -> tuple[int, int]:
    """(height, width) with long side ``size_px`` and the image's aspect ratio; the short side is
    raised to ``min_side_px`` if need be (which then stretches the image a little)."""
    width, height = image.size
    scale = size_px / max(width, height)
    return max(min_side_px, round(height * scale)), max(min_side_px, round(width * scale))


def min_side_px(layers: Sequence[str]) -> int:
    """The smallest image side whose activations at ``layers`` are at least one pixel: each
    pooling before the deepest layer halves the image."""
    deepest = max(vgg.LAYER_NAMES.index(name) for name in layers)
    pools = sum(1 for name in vgg.LAYER_NAMES[1 : deepest + 1] if name.endswith("_1"))
    return 2**pools


def working_shape(image: Image.Image, size_px: int, layers: Sequence[str]) -> tuple[int, int]:
    """(height, width) at which an image of long side ``size_px`` is optimized: the image's shape,
    each side rounded to a multiple of ``min_side_px(layers)`` (so every pooling halves exactly
    and no row or column loses its gradient), or of ``size_px / 16`` rounded down to a power of
    two when that is larger (32 px at 512, 64 px at 1024).

    The coarser grid at large sizes is what lets photos of similar aspect ratios share one
    compiled step: at most about 16 shapes per long side and orientation. It stretches the
    image by at most ~3% before the result is resized back to the exact requested shape.
    """
    multiple = max(min_side_px(layers), 2 ** int(math.log2(max(size_px, 16) / 16)))
    return tuple(max(multiple, round(side / multiple) * multiple) for side in shape_for(image, size_px))


def as_batch(image: Image.Image, shape: tuple[int, int]) -> jax.Array:
    """``image`` at ``shape`` (Lanczos, unless it has that shape) as a (1, H, W, 3) batch in [0, 1]."""
    height, width = shape
    resized = image.resize((width, height), Image.Resampling.LANCZOS) if image.size != (width, height) else image
    return jnp.asarray(images.to_array(resized)[None])


def style_batches(
    objective: Objective, styles: Sequence[Image.Image], size_px: int, style_scale: float
) -> tuple[jax.Array, ...]:
    """The paintings as batches for an image of long side ``size_px``: each at ``style_scale`` of
    it (at most MAX_STYLE_PX), at its working shape."""
    style_px = min(MAX_STYLE_PX, max(16, round(size_px * style_scale)))
    return tuple(as_batch(s, working_shape(s, style_px, objective.layers)) for s in styles)


def prepare_inputs(
    content: Image.Image, styles: Sequence[Image.Image], settings: TransferSettings
) -> tuple[Image.Image, list[Image.Image]]:
    """The photo and paintings the targets are computed from: RGB, with the colour preservation's
    input side applied (its output side, ``restore``, comes after optimizing)."""
    content = content.convert("RGB")
    styles = [style.convert("RGB") for style in styles]
    return PRESERVE_COLORS[settings.preserve_color].prepare(content, styles)


_targets = jax.jit(targets, static_argnums=0)


def losses_of(
    image: Image.Image,
    content: Image.Image,
    styles: Sequence[Image.Image],
    settings: TransferSettings,
    weights: Weights,
) -> dict[str, float]:
    """The loss (LOSS_NAMES) of an image made some other way, e.g. by an instant model, as an
    optimization run with ``settings`` at the image's size would score it: same targets, same terms."""
    objective = Objective.of(settings)
    params = vgg.without_winograd(vgg_params(weights, objective.layers))
    content_in, styles_in = prepare_inputs(content, styles, settings)
    size_px = max(image.size)
    shape = working_shape(image, size_px, objective.layers)
    blend = jnp.asarray(settings.blend_for(len(styles)), jnp.float32)
    image_targets = _targets(
        objective,
        params,
        as_batch(content_in, shape),
        style_batches(objective, styles_in, size_px, settings.style_scale),
        blend,
    )
    batch = as_batch(image.convert("RGB"), shape)
    _, terms = loss_and_terms(objective, params, batch, image_targets, loss_weights(settings))
    return named_losses(np.asarray(terms))
