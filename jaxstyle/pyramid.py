"""The image as a pyramid of levels: what the optimizer moves, and the image they stand for.

Pure functions of arrays (the caller jits).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp


def pyramid(image: jax.Array, n_levels: int) -> tuple[jax.Array, ...]:
    """The starting levels for ``image`` (N, H, W, C): the image itself at full resolution, then
    ``n_levels - 1`` zero levels, each half the size of the one before (at least 1 px)."""
    n, height, width, channels = image.shape
    coarse = tuple(
        jnp.zeros((n, max(1, height >> k), max(1, width >> k), channels), image.dtype) for k in range(1, n_levels)
    )
    return (image, *coarse)


def compose(levels: Sequence[jax.Array]) -> jax.Array:
    """The image that pyramid ``levels`` stand for: the finest level plus every coarser level,
    bilinearly upsampled to full size.

    Differs from Gatys et al. (who optimize pixels): with more than one level the optimizer moves
    coarse levels too, and a step of Adam's size on a coarse level moves a whole region of the
    image as far as one on the finest level moves a pixel. The loss is the same function of the
    image; only the path to its minimum changes: the broad structure that pixel steps build
    slowly settles early. (STROTSS, Kolkin et al. 2019, optimizes a Laplacian pyramid for the same
    reason.)
    """
    image = levels[0]
    for coarse in levels[1:]:
        image = image + jax.image.resize(coarse, image.shape, "linear")
    return image


def project_into_box(levels: tuple[jax.Array, ...]) -> tuple[tuple[jax.Array, ...], jax.Array]:
    """``levels`` whose image lies in the [0, 1] box, and that image: the projection goes through
    the finest level, which moves each pixel by exactly its own overshoot (with one level this is
    optax.projections.projection_box)."""
    import optax

    unclipped = compose(levels)
    image = optax.projections.projection_box(unclipped, 0.0, 1.0)
    return (levels[0] + (image - unclipped), *levels[1:]), image
