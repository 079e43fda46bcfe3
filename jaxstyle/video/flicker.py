"""Flicker: measured, and lowered where the picture did not move.

A network that paints each frame on its own answers small changes of the input (sensor noise,
compression) with larger changes of its strokes: the painting shimmers where the scene is still.
:class:`FlickerMeter` measures it as the frame-to-frame change of the output against that of the
input (mean absolute difference of consecutive frames, output ÷ input: 1 means the painting
changes as much as the scene, above 1 it flickers).

:class:`TemporalFilter` blends each painted frame with the previous output *where the input did
not change* (the weight falls to 0 where the input moved by ``threshold`` or more), so still parts
stop shimmering and moving parts are left as painted: no ghost trails behind what moves. The
filter runs at the working size, before the frame is scaled back up.
"""

from __future__ import annotations

import dataclasses

import numpy as np

DEFAULT_SMOOTH = 0.5  # chosen in docs/video-measurements.md: still flicker about halved, no ghosting
DEFAULT_THRESHOLD = 0.03  # input change (0–1 scale, per pixel) at which the blend stops


def check_smooth(smooth: float) -> float:
    """``smooth`` as a float, or the settings' own SettingsError (the one rule: its range in RANGES)."""
    from jaxstyle.settings import TransferSettings

    return float(TransferSettings(smooth=smooth).smooth)


def frame_change(previous: np.ndarray, current: np.ndarray) -> float:
    """Mean absolute difference of two uint8 frames of one size, on the 0–1 scale."""
    return float(np.mean(np.abs(current.astype(np.int16) - previous.astype(np.int16)))) / 255.0


@dataclasses.dataclass
class FlickerMeter:
    """Frame-to-frame change of a stream's input and output; :attr:`ratio` is output ÷ input."""

    input_change: float = 0.0  # summed over frame pairs
    output_change: float = 0.0
    pairs: int = 0
    _previous: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, input_frame: np.ndarray, output_frame: np.ndarray) -> None:
        """Count one frame (input and output at the same size)."""
        if self._previous is not None and self._previous[0].shape == input_frame.shape:
            self.input_change += frame_change(self._previous[0], input_frame)
            self.output_change += frame_change(self._previous[1], output_frame)
            self.pairs += 1
        self._previous = (input_frame, output_frame)

    @property
    def ratio(self) -> float | None:
        """Output change ÷ input change, None for fewer than two frames or an input that never changed."""
        return self.output_change / self.input_change if self.pairs and self.input_change > 0 else None

    def summary(self) -> dict[str, float | None]:
        pairs = max(self.pairs, 1)
        return {
            "flicker": self.ratio,
            "input_change": self.input_change / pairs if self.pairs else None,
            "output_change": self.output_change / pairs if self.pairs else None,
        }


@dataclasses.dataclass
class TemporalFilter:
    """Blends each painted frame with the previous output where the input stayed still.

    Per pixel the previous output's weight is ``smooth × (1 − change / threshold)``, clipped at 0,
    where ``change`` is the input's frame-to-frame change there (0–1, its channels' mean, box-blurred
    over 3×3 so that single noisy pixels do not decide). ``smooth`` 0 leaves frames as painted.
    """

    smooth: float = DEFAULT_SMOOTH
    threshold: float = DEFAULT_THRESHOLD
    masked: bool = True  # False: blend everywhere, as the peer's --smooth does (ghosts behind motion)
    _previous_input: np.ndarray | None = None
    _previous_output: np.ndarray | None = None

    def __call__(self, frame: np.ndarray, painted: np.ndarray) -> np.ndarray:
        """``painted`` (H, W, 3 in [0, 1]) of ``frame`` (H, W, 3 uint8), blended with the last output."""
        previous_input, previous_output = self._previous_input, self._previous_output
        self._previous_input = frame
        if not self.smooth or previous_input is None or previous_input.shape != frame.shape:
            self._previous_output = painted
            return painted
        if self.masked:
            change = np.abs(frame.astype(np.int16) - previous_input.astype(np.int16)).sum(axis=-1, dtype=np.float32)
            change = _box_blur(change) * np.float32(1.0 / (3 * 255))  # the channels' mean, on the 0–1 scale
            weight = np.float32(self.smooth) * np.clip(1.0 - change / np.float32(self.threshold), 0.0, 1.0)[..., None]
        else:
            weight = np.float32(self.smooth)
        out = (weight * previous_output + (1.0 - weight) * painted).astype(np.float32)
        self._previous_output = out
        return out

    def reset(self) -> None:
        """Forget the previous frame (a new stream or a new style)."""
        self._previous_input = self._previous_output = None


def _box_blur(change: np.ndarray) -> np.ndarray:
    """The mean over each pixel's 3×3 neighbourhood (edges repeated)."""
    padded = np.pad(change, 1, mode="edge")
    height, width = change.shape
    rows = padded[:-2] + padded[1:-1] + padded[2:]  # separable: three rows, then three columns
    return (rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:])[:height, :width] * np.float32(1.0 / 9.0)
