"""Short clips made from a still photo, for the tests and the benchmark (the project ships no
videos): a camera that pans across the photo, holds still, then pans back, with sensor noise on
every frame (what makes a painted video flicker where the scene is still), and a tone as audio.
"""

from __future__ import annotations

import fractions
import os
from pathlib import Path

import numpy as np
from PIL import Image

CLIP_NOISE = 3.0  # standard deviation of the sensor noise, in 0–255 steps (a phone camera in daylight)


def clip_frames(photo: Image.Image, frames: int, width: int, height: int, *, noise: float = CLIP_NOISE,
                seed: int = 0) -> list[np.ndarray]:  # fmt: skip
    """``frames`` views (``width`` × ``height``) of ``photo``: a pan over the first third, still over
    the middle third, and a pan back; each with Gaussian noise of ``noise`` steps."""
    photo = photo.convert("RGB")
    scale = max(width * 1.25 / photo.width, height / photo.height)
    wide = photo.resize((max(round(photo.width * scale), width + 1), max(round(photo.height * scale), height)),
                        Image.Resampling.LANCZOS)  # fmt: skip
    base = np.asarray(wide).astype(np.float32)
    travel = wide.width - width
    rng = np.random.default_rng(seed)
    third = max(frames // 3, 1)
    out = []
    for i in range(frames):
        if i < third:
            x = travel * i / third
        elif i < 2 * third:
            x = travel
        else:
            x = travel * (1 - (i - 2 * third) / max(frames - 2 * third, 1))
        left = int(x)
        frac = x - left
        right = min(left + 1, travel)
        view = (1 - frac) * base[:height, left : left + width] + frac * base[:height, right : right + width]
        if noise:
            view = view + rng.normal(0.0, noise, view.shape)
        out.append(np.clip(view + 0.5, 0, 255).astype(np.uint8))
    return out


def write_clip(path: str | os.PathLike, frame_list: list[np.ndarray], fps: int = 25, *, audio: bool = True,
               codec: str = "libx264", audio_codec: str = "aac", audio_hz: int = 44100) -> Path:  # fmt: skip
    """Encode ``frame_list`` at ``fps`` into ``path`` (container by its suffix), with a 440 Hz tone
    as long as the video when ``audio``."""
    import av

    path = Path(path)
    height, width = frame_list[0].shape[:2]
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=fps)
        video.width, video.height = width, height
        video.pix_fmt = "yuv420p"
        if codec == "libx264":
            video.options = {"crf": "18", "preset": "veryfast"}
        sound = None
        if audio:
            sound = container.add_stream(audio_codec, rate=audio_hz)
            sound.layout = "mono"
        for i, frame in enumerate(frame_list):
            out = av.VideoFrame.from_ndarray(frame, format="rgb24")
            out.pts, out.time_base = i, fractions.Fraction(1, fps)
            container.mux(video.encode(out))
        container.mux(video.encode(None))
        if sound is not None:
            samples = round(len(frame_list) / fps * audio_hz)
            t = np.arange(samples) / audio_hz
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            chunk = 1024
            fmt = "fltp" if audio_codec in ("aac", "libopus") else "s16"
            for start in range(0, samples, chunk):
                piece = tone[start : start + chunk][None]
                if fmt == "s16":
                    piece = (piece * 32767).astype(np.int16)
                block = av.AudioFrame.from_ndarray(piece, format=fmt, layout="mono")
                block.sample_rate, block.pts = audio_hz, start
                container.mux(sound.encode(block))
            container.mux(sound.encode(None))
    return path
