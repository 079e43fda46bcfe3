"""Frames in, painted frames out: an instant model with its style fixed once for a whole stream.

A frame (H, W, 3 uint8, RGB, as the camera or a decoder gives it) is scaled to the working size
(its long side: the network's cost grows with its pixels), painted in one pass and scaled back to
the frame's own size, so the picture on screen or in the file keeps the camera's size whatever
the working size. The style (a painting's style vector, a blend of norm rows) is worked out once
by :func:`styled_network`, never per frame.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import numpy as np
from PIL import Image

from jaxstyle.errors import SettingsError
from jaxstyle.instant.builtin import ArbitraryPainter, BuiltinPainter, check_sizes
from jaxstyle.instant.passes import StyledNetwork, pad_to_multiple
from jaxstyle.video.flicker import TemporalFilter

WORK_SIZES = (256, 384, 512)  # what the Live page offers; files take any size a built-in model does
DEFAULT_WORK_PX = 384


def styled_network(
    painter: object,
    styles: Sequence,
    blend: Sequence[float] | None = None,
    *,
    strength: float = 1.0,
    photo: Image.Image | None = None,
) -> StyledNetwork:
    """``painter``'s network with its style fixed: ``arbitrary`` takes paintings (PIL images),
    ``styles26`` and trained models style names. Below full ``strength`` (``arbitrary`` only) the
    style moves towards ``photo``'s own, worked out once (the stream's first frame).

    Raises:
        SettingsError, ModelError: a style, blend or strength the model refuses.
    """
    if isinstance(painter, ArbitraryPainter):
        return painter.styled(list(styles), blend, strength=strength, photo=photo)
    if float(strength) != 1.0:
        raise SettingsError("strength is the arbitrary model's (it moves between style vectors); leave it at 1")
    return painter.styled([str(s) for s in styles], blend)  # type: ignore[attr-defined]


def check_work_px(painter: object, work_px: int) -> int:
    """The working size (long side) a frame is painted at, checked as the painter's sizes are."""
    if isinstance(painter, BuiltinPainter):
        return check_sizes(work_px)
    from jaxstyle.settings import TransferSettings

    return TransferSettings(size_px=work_px).size_px


def work_shape(height: int, width: int, work_px: int) -> tuple[int, int]:
    """The (height, width) a frame of that size is painted at: long side ``work_px`` (never
    enlarged), aspect kept."""
    scale = min(1.0, work_px / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


@dataclasses.dataclass
class FramePainter:
    """Paints frames one after another with ``network`` at ``work_px``; ``temporal`` (optional)
    carries what it needs from frame to frame to lower flicker (see :mod:`jaxstyle.video.flicker`)."""

    network: StyledNetwork
    work_px: int = DEFAULT_WORK_PX
    temporal: TemporalFilter | None = None
    last_paint_s: float = 0.0  # the latest frame's time: scale, pass, scale back

    def paint(self, frame: np.ndarray) -> np.ndarray:
        """``frame`` (H, W, 3 uint8) painted, at its own size."""
        started = time.perf_counter()
        height, width = frame.shape[:2]
        small_h, small_w = work_shape(height, width, self.work_px)
        small = frame if (small_h, small_w) == (height, width) else _resize(frame, small_w, small_h)
        photos = pad_to_multiple(small[None].astype(np.float32) / 255.0)
        painted = self.network(photos)[0, :small_h, :small_w]
        if self.temporal is not None:
            painted = self.temporal(small, painted)
        out = np.clip(painted * 255.0 + 0.5, 0, 255).astype(np.uint8)
        if (small_h, small_w) != (height, width):
            out = _resize(out, width, height)
        self.last_paint_s = time.perf_counter() - started
        return out

    def warm_up(self, height: int, width: int) -> float:
        """Compile for frames of that size now (seconds; 0 when done before), so the first frame
        of a stream does not wait for it."""
        small_h, small_w = work_shape(height, width, self.work_px)
        return self.network.compile_for(pad_to_multiple(np.zeros((1, small_h, small_w, 3), np.float32)).shape)


def _resize(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    # Bilinear: PIL widens its filter when it shrinks (no aliasing), and it costs about a
    # millisecond for a camera frame, against tens for the network's pass.
    return np.asarray(Image.fromarray(frame).resize((width, height), Image.Resampling.BILINEAR))
