"""What every instant painter shares (trained models' :mod:`~jaxstyle.instant.paint` and the
built-in ones' :mod:`~jaxstyle.instant.builtin`): the result of a pass, a network compiled once per
image shape, and padding to the networks' multiple of 4. Kept apart from the model files so the
built-in painters need none of them.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import jax
import numpy as np
from PIL import Image

_MULTIPLE = 4  # two stride-2 convolutions down, two ×2 upsamplings up


@dataclasses.dataclass(frozen=True)
class InstantResult:
    """What an instant run produced: the image, the styles and blend it used, and its timings."""

    image: Image.Image
    model: str
    styles: tuple[str, ...]
    blend: tuple[float, ...]
    size_px: int
    compile_s: float  # what compiling added to the call's time; 0 when this shape was compiled before
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


@dataclasses.dataclass(frozen=True)
class StyledNetwork:
    """A network with its style fixed (a style vector, a blend of norm rows): photos in, paintings
    out. What a stream of frames needs: the style is worked out once, each frame is one pass.

    ``function(params, photos, condition)`` is compiled per photo shape by ``programs`` (shared
    with the painter that made it, so the painter's compiled shapes serve the frames too).
    """

    programs: Programs
    params: Any
    condition: Any  # the style: arbitrary's (1, 100) vector, a (26,) or (S,) blend of norm rows

    def __call__(self, photos: np.ndarray) -> np.ndarray:
        """Paint ``photos`` (N, H, W, 3) in [0, 1], H and W multiples of 4 (:func:`pad_to_multiple`)."""
        program, _ = self.programs.get(self.params, photos, self.condition)
        return np.asarray(program(self.params, photos, self.condition))

    def compile_for(self, photos_shape: tuple[int, ...]) -> float:
        """Compile for photos of ``photos_shape`` now (seconds taken, 0 if done before)."""
        return self.programs.get(self.params, np.zeros(photos_shape, np.float32), self.condition)[1]


def _dtype(leaf: Any) -> np.dtype:
    return np.dtype(leaf.dtype) if hasattr(leaf, "dtype") else np.result_type(leaf)


def pad_to_multiple(batch: np.ndarray) -> np.ndarray:
    """A batch (N, H, W, 3) reflection-padded at the high end to a multiple of 4 in H and W."""
    _, height, width, _ = batch.shape
    pad_h, pad_w = -height % _MULTIPLE, -width % _MULTIPLE
    if not pad_h and not pad_w:
        return batch
    return np.pad(batch, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="reflect")
