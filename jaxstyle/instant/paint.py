"""Instant runs: a trained model paints a photo in one pass of its network.

A :class:`Painter` holds one model's params on the device and its compiled network per image
shape, so the app paints the second photo of a size without compiling again. The blend of styles
is an argument of the compiled program (not a constant in it): changing the blend never compiles.

The photo is resized to the run's long side, padded by reflection to a multiple of 4 (the network
halves twice and doubles twice) and cropped back after.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from jaxstyle import images, transfer
from jaxstyle.instant import models, network
from jaxstyle.settings import TransferSettings, blend_weights

_MULTIPLE = 4  # two stride-2 convolutions down, two ×2 upsamplings up


@dataclasses.dataclass(frozen=True)
class InstantResult:
    """What an instant run produced: the image, the styles and blend it used, and its timings."""

    image: Image.Image
    model: str
    styles: tuple[str, ...]
    blend: tuple[float, ...]
    size_px: int
    compile_s: float  # 0 when this shape was compiled before
    run_s: float  # the network's pass on the device, without compile or image conversion
    device: str
    style_s: float = 0.0  # built-in arbitrary model: computing the paintings' style vectors (0 when cached)
    strength: float = 1.0  # built-in arbitrary model: the painting's style vector (1) … the photo's own (0)
    work_px: int = 0  # the long side the network painted at (the result is upscaled to size_px when smaller)


class Programs:
    """A pure function compiled once per shape of its arguments, and how long each compile took:
    what a painter keeps so that the second photo of a size paints without compiling."""

    def __init__(self, function: Any) -> None:
        self.function = function
        self._compiled: dict[tuple, Any] = {}

    def get(self, *args: Any) -> tuple[Any, float]:
        """The program for ``args``' shapes and its compile time (0 when compiled before)."""
        key = tuple((np.shape(leaf), _dtype(leaf).str) for leaf in jax.tree.leaves(args))
        if key in self._compiled:
            return self._compiled[key], 0.0
        started = time.perf_counter()
        abstract = jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(np.shape(leaf), _dtype(leaf)), args)
        program = jax.jit(self.function).lower(*abstract).compile()
        self._compiled[key] = program
        return program, time.perf_counter() - started


def _dtype(leaf: Any) -> np.dtype:
    return np.dtype(leaf.dtype) if hasattr(leaf, "dtype") else np.result_type(leaf)


def pad_to_multiple(batch: np.ndarray) -> np.ndarray:
    """A batch (N, H, W, 3) reflection-padded at the high end to a multiple of 4 in H and W."""
    _, height, width, _ = batch.shape
    pad_h, pad_w = -height % _MULTIPLE, -width % _MULTIPLE
    if not pad_h and not pad_w:
        return batch
    return np.pad(batch, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="reflect")


def _paint(net: dict, norms: dict, weights: jax.Array, photos: jax.Array) -> jax.Array:
    return network.apply(net, photos, network.blend_norms(norms, weights))


class Painter:
    """One model, ready to paint: params on the device, compiled programs by image shape."""

    def __init__(self, model: models.Model) -> None:
        self.model = model
        self._net = jax.tree.map(jnp.asarray, model.net)
        self._norms = jax.tree.map(jnp.asarray, model.norms)
        self._programs = Programs(_paint)

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
        program, compile_s = self._programs.get(self._net, self._norms, row_weights, batch)
        started = time.perf_counter()
        painted = program(self._net, self._norms, row_weights, batch)
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
            device=transfer.device_description(),
            work_px=size_px,
        )
