"""Instant runs: a trained model paints a photo in one pass of its network.

A :class:`Painter` holds one model's params on the device and its compiled network per image
shape, so the app paints the second photo of a size without compiling again. The blend of styles
is an argument of the compiled program (not a constant in it): changing the blend never compiles.

The photo is resized to the run's long side, padded by reflection to a multiple of 4 (the network
halves twice and doubles twice) and cropped back after.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from jaxstyle import devices, images
from jaxstyle.instant import models, network
from jaxstyle.instant.passes import InstantResult, Programs, StyledNetwork, pad_to_multiple
from jaxstyle.settings import TransferSettings, blend_weights


def _paint(params: tuple[dict, dict], photos: jax.Array, weights: jax.Array) -> jax.Array:
    """The network ``params`` = (net, norms) with its norm rows blended by ``weights``."""
    net, norms = params
    return network.apply(net, photos, network.blend_norms(norms, weights))


class Painter:
    """One model, ready to paint: params on the device, compiled programs by image shape."""

    def __init__(self, model: models.Model) -> None:
        self.model = model
        self._params = (jax.tree.map(jnp.asarray, model.net), jax.tree.map(jnp.asarray, model.norms))
        self._programs = Programs(_paint)

    def __reduce__(self) -> tuple:
        # Pickled as its model (to a Ray worker: jaxstyle.runners.Backend.instant); the params go
        # on that device and the programs compile there.
        return (Painter, (self.model,))

    def styled(self, styles: Sequence[str], blend: Sequence[float] | None = None) -> StyledNetwork:
        """The network with ``styles`` (blended by ``blend``) fixed, for a stream of frames.

        Raises:
            ModelError: no style, or a style the model does not hold.
            SettingsError: a bad blend.
        """
        if not styles:
            raise models.ModelError(f"name a style of model {self.model.name}: {', '.join(self.model.styles)}")
        row_weights = jnp.asarray(self.model.style_weights(styles, blend), jnp.float32)
        return StyledNetwork(self._programs, self._params, row_weights)

    def paint(
        self, content: Image.Image, styles: Sequence[str], blend: Sequence[float] | None = None, *, size_px: int = 512
    ) -> InstantResult:
        """Paint ``content`` (long side ``size_px``) in ``styles`` of the model, blended by ``blend``
        (the settings' blend rule: normalized, None = equal).

        Raises:
            ModelError: a style the model does not hold.
            SettingsError: a size out of range or a bad blend.
        """
        TransferSettings(size_px=size_px)  # the one rule for sizes: SettingsError out of range
        if not styles:
            raise models.ModelError(f"name a style of model {self.model.name}: {', '.join(self.model.styles)}")
        row_weights = self.model.style_weights(styles, blend)
        photo = images.fit_long_side(content.convert("RGB"), size_px)
        batch = jnp.asarray(pad_to_multiple(images.to_array(photo)[None]))
        row_weights = jnp.asarray(row_weights, jnp.float32)
        program, compile_s = self._programs.get(self._params, batch, row_weights)
        started = time.perf_counter()
        painted = program(self._params, batch, row_weights)
        painted = np.asarray(painted)  # waits for the device
        run_s = time.perf_counter() - started
        image = images.from_array(painted[0, : photo.height, : photo.width])
        return InstantResult(
            image=image,
            model=self.model.name,
            styles=tuple(styles),
            blend=blend_weights(blend, len(styles)),
            size_px=size_px,
            compile_s=compile_s,
            run_s=run_s,
            device=devices.description(),
            work_px=size_px,
        )
