"""The images an optimization can start from, in one table: a new start is one function plus one
entry in :data:`INITS`. Settings, the CLI's choices and the app's options all read the table.

A start function takes the photo as the working-shape batch (1, H, W, 3), the first painting and
the run's seed, and returns the first iterate, of the photo's shape. This module imports JAX only
inside its functions, so the settings can read the table without loading JAX.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image


def _the_photo(content: Any, style: Image.Image, seed: int) -> Any:
    return content


def _the_painting(content: Any, style: Image.Image, seed: int) -> Any:
    """The first painting, stretched to the photo's working shape."""
    from jaxstyle.objective import as_batch

    return as_batch(style, content.shape[1:3])


def _noise(content: Any, style: Image.Image, seed: int) -> Any:
    """Uniform noise in [0, 1], a function of the seed."""
    import jax
    import jax.numpy as jnp

    return jax.random.uniform(jax.random.PRNGKey(seed), content.shape, jnp.float32)


INITS: dict[str, Callable[[Any, Image.Image, int], Any]] = {
    "content": _the_photo,
    "style": _the_painting,
    "noise": _noise,
}
