"""The ways of keeping the photo's colours, in one table: a new one is its functions plus one entry
in :data:`PRESERVE_COLORS`. Settings, the CLI's choices and the app's options all read the table.

An entry says how the inputs change before the optimization (``prepare``: the photo and the
paintings, RGB, in; what the targets are computed from, out) and how the result changes after it
(``restore``: the result as an array and the original photo in; the result out). This module
imports the image code only inside its functions, so the settings can read the table cheaply.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

Inputs = tuple["Image.Image", list["Image.Image"]]


@dataclasses.dataclass(frozen=True)
class ColorPreservation:
    label: str  # the name people see
    prepare: Callable[[Image.Image, Sequence[Image.Image]], Inputs]  # (photo, paintings) → the same, changed
    restore: Callable[[np.ndarray, Image.Image], np.ndarray]  # (result (H, W, 3), original photo) → result


def _unchanged_inputs(content: Image.Image, styles: Sequence[Image.Image]) -> Inputs:
    return content, list(styles)


def _unchanged_result(result: np.ndarray, content: Image.Image) -> np.ndarray:
    return result


def _paintings_in_the_photos_colours(content: Image.Image, styles: Sequence[Image.Image]) -> Inputs:
    """Each painting recoloured to the photo's colour mean and covariance (images.match_color)."""
    from jaxstyle import images

    content_array = images.to_array(content)
    return content, [images.from_array(images.match_color(images.to_array(s), content_array)) for s in styles]


def _luminance_only(content: Image.Image, styles: Sequence[Image.Image]) -> Inputs:
    """Transfer on luminance only (Gatys et al. 2016, "Preserving color"): grey inputs, each style's
    luminance matched to the content's mean and spread; the chroma comes back in restore."""
    import numpy as np

    from jaxstyle import images

    content_luma = images.rgb_to_ycbcr(images.to_array(content))[..., 0]
    grey_styles = []
    for style in styles:
        luma = images.rgb_to_ycbcr(images.to_array(style))[..., 0]
        luma = (luma - luma.mean()) / (luma.std() + 1e-6) * content_luma.std() + content_luma.mean()
        grey_styles.append(images.from_array(np.repeat(np.clip(luma, 0, 1)[..., None], 3, axis=-1)))
    return images.from_array(np.repeat(content_luma[..., None], 3, axis=-1)), grey_styles


def _photos_chroma(result: np.ndarray, content: Image.Image) -> np.ndarray:
    """The result's luma with the photo's chroma (images.transfer_luminance)."""
    from PIL import Image

    from jaxstyle import images

    photo = content.convert("RGB").resize((result.shape[1], result.shape[0]), Image.Resampling.LANCZOS)
    return images.transfer_luminance(result, images.to_array(photo))


PRESERVE_COLORS: dict[str, ColorPreservation] = {
    "none": ColorPreservation("No (take the style's colors)", prepare=_unchanged_inputs, restore=_unchanged_result),
    "luminance": ColorPreservation("Luminance only", prepare=_luminance_only, restore=_photos_chroma),
    "histogram": ColorPreservation(
        "Match the photo's colors", prepare=_paintings_in_the_photos_colours, restore=_unchanged_result
    ),
}
