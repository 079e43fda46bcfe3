"""Video files: read what a file claims, refuse what is too big before decoding it, then decode →
paint → encode with PyAV, keeping the frame count, frame rate, timestamps and the audio.

A file is trusted only as far as it is checked: its size on disk first, then what its header
claims (frame size, duration, frame count, rate) before any frame is decoded, then the frames
actually decoded (a header can lie: decoding stops at the limit, and a file that ends before the
frames it announced is refused as truncated). Every refusal is a :class:`VideoError` with one line
naming the file; the output is written beside its destination and moved there only when the whole
video was painted, so a refused or cancelled video leaves nothing behind.

The video is encoded as H.264 (yuv420p, what every browser plays) in MP4/MOV/MKV; the audio stream
is copied as it is when the container takes its codec, else re-encoded as AAC.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fractions
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from jaxstyle.errors import Cancelled, VideoError
from jaxstyle.video.flicker import FlickerMeter
from jaxstyle.video.frames import FramePainter

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".m4v")  # what the upload and the CLI take
OUTPUT_SUFFIXES = (".mp4", ".mov", ".mkv")  # H.264 in these
_COPY_AUDIO = {".mp4": {"aac", "mp3", "alac", "opus", "ac3"}, ".mov": {"aac", "mp3", "alac", "ac3"},
               ".m4v": {"aac"}, ".mkv": None}  # fmt: skip  # None: any codec is copied


@dataclasses.dataclass(frozen=True)
class VideoLimits:
    """What a video may be. The defaults keep one video to minutes of painting on a CPU."""

    max_bytes: int = 500 * 1024 * 1024
    max_duration_s: float = 10 * 60.0
    max_frames: int = 18_000  # 10 minutes at 30 frames per second
    max_long_side_px: int = 1920
    max_pixels: int = 1920 * 1080
    max_fps: float = 120.0

    def describe(self) -> str:
        return (f"at most {self.max_bytes // 2**20} MB, {self.max_duration_s / 60:g} minutes, {self.max_frames:,} "
                f"frames and {self.max_long_side_px} px on the long side (1080p)")  # fmt: skip


DEFAULT_LIMITS = VideoLimits()


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What a video file's header says (checked against :class:`VideoLimits` by :func:`probe`)."""

    width: int
    height: int
    fps: float
    frames: int  # as the header claims; 0 when it does not say (then duration × fps is checked)
    duration_s: float
    codec: str
    has_audio: bool
    audio_codec: str = ""

    def line(self) -> str:
        audio = f", audio ({self.audio_codec})" if self.has_audio else ", no audio"
        return f"{self.width}×{self.height}, {self.fps:g} fps, {self.duration_s:.1f} s, {self.frames} frames{audio}"


@dataclasses.dataclass(frozen=True)
class VideoResult:
    """A painted video: what it is, what it took, how much it flickers, and a poster frame."""

    path: Path
    frames: int
    fps: float
    duration_s: float
    width: int
    height: int
    has_audio: bool
    total_s: float  # decode, paint, encode: the whole job, compile_s included
    paint_s: float  # the painting alone (scale, pass, scale back, temporal filter)
    compile_s: float  # compiling the network for this frame size (0 when done before)
    flicker: dict[str, float | None]
    poster: np.ndarray  # the painted frame from the middle of the video, upright
    input_poster: np.ndarray  # the same frame as it came in
    rotation: int = 0  # degrees counterclockwise its player turns the frames (kept from the source)

    @property
    def frames_per_s(self) -> float:
        """Frames per second of the job (decode, paint, encode) once compiled: the rate a video of
        any length goes at; ``compile_s`` (seconds, once per frame size) comes on top."""
        working = self.total_s - self.compile_s
        return self.frames / working if working > 0 else 0.0

    def stats(self) -> dict[str, Any]:
        """What the gallery and ``--json`` record of it."""
        return {
            "frames": self.frames, "fps": self.fps, "duration_s": round(self.duration_s, 3), "width": self.width,
            "height": self.height, "has_audio": self.has_audio, "total_s": round(self.total_s, 3),
            "paint_s": round(self.paint_s, 3), "compile_s": round(self.compile_s, 3),
            "rotation": self.rotation, "frames_per_s": round(self.frames_per_s, 2),
            "realtime": round(self.frames_per_s / self.fps, 3) if self.fps else None,
            **{k: (round(v, 4) if v is not None else None) for k, v in self.flicker.items()},
        }  # fmt: skip


def _name(path: str | os.PathLike) -> str:
    return Path(path).name


def probe(path: str | os.PathLike, limits: VideoLimits = DEFAULT_LIMITS) -> VideoInfo:
    """What ``path``'s header says, refused when beyond ``limits`` (nothing decoded yet).

    Raises:
        VideoError: not a file, too large, not a video (or no video stream), or a header claiming
            a frame size, duration, frame count or rate beyond the limits.
    """
    import av

    path = Path(path)
    name = path.name
    try:
        size = path.stat().st_size
    except OSError as error:
        raise VideoError(f"{path}: cannot read it ({error.strerror or error})") from None
    if not path.is_file():
        raise VideoError(f"{path} is not a file")
    if size > limits.max_bytes:
        raise VideoError(f"{name} is {size / 2**20:.0f} MB; videos are {limits.describe()}")
    if size == 0:
        raise VideoError(f"{name} is empty")
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            info = _header(container, name)
    except VideoError:
        raise
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as error:
        raise VideoError(f"{name} is not a video we can read ({_short(error)})") from None
    _check(info, name, limits)
    return info


def _header(container: Any, name: str) -> VideoInfo:
    # FFmpeg reads a still image as a one-frame video through its image demuxers.
    if container.format.name.endswith("_pipe") or container.format.name in ("image2", "gif", "apng", "webp_pipe"):
        raise VideoError(f"{name} is an image ({container.format.name.removesuffix('_pipe')}), not a video we can "
                         "read; paint it on the Generate page or with `generate`")  # fmt: skip
    if not container.streams.video:
        raise VideoError(f"{name} has no video stream")
    stream = container.streams.video[0]
    context = stream.codec_context
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    duration_s = 0.0
    if stream.duration is not None and stream.time_base:
        duration_s = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration_s = container.duration / 1_000_000
    audio = container.streams.audio[0] if container.streams.audio else None
    return VideoInfo(
        width=int(context.width or 0), height=int(context.height or 0), fps=fps, frames=int(stream.frames or 0),
        duration_s=max(duration_s, 0.0), codec=context.name or "", has_audio=audio is not None,
        audio_codec=audio.codec_context.name if audio is not None else "",
    )  # fmt: skip


def _check(info: VideoInfo, name: str, limits: VideoLimits) -> None:
    if info.width <= 0 or info.height <= 0:
        raise VideoError(f"{name}: its video stream has no frame size; the file is damaged")
    if max(info.width, info.height) > limits.max_long_side_px or info.width * info.height > limits.max_pixels:
        raise VideoError(f"{name} has {info.width}×{info.height} frames; videos are {limits.describe()}: "
                         "scale it down first (e.g. ffmpeg -vf scale=-2:720)")  # fmt: skip
    if not 0 < info.fps <= limits.max_fps:
        raise VideoError(f"{name} claims {info.fps:g} frames per second; at most {limits.max_fps:g} are taken")
    if info.duration_s > limits.max_duration_s:
        raise VideoError(f"{name} lasts {_minutes(info.duration_s)}; videos are {limits.describe()}: cut it first")
    claimed = info.frames or round(info.duration_s * info.fps)
    if claimed > limits.max_frames:
        raise VideoError(f"{name} claims {claimed:,} frames; videos are {limits.describe()}")


def _minutes(seconds: float) -> str:
    return f"{seconds / 3600:.1f} hours" if seconds >= 3600 else f"{seconds / 60:.1f} minutes"


def _short(error: BaseException) -> str:
    """FFmpeg's own words for what went wrong, without its error number and the file's path."""
    text = getattr(error, "strerror", None) or str(error).strip() or type(error).__name__
    return text.splitlines()[0][:160]


def first_frame(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """The first decodable frame of a video as stored (H, W, 3 uint8) and the rotation its player
    applies (degrees counterclockwise: phones store portrait videos as landscape frames and a
    rotation of 90 or -90).

    Raises:
        VideoError: no frame can be decoded.
    """
    import av

    name = Path(path).name
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            for frame in container.decode(video=0):
                return frame.to_ndarray(format="rgb24"), int(round(frame.rotation or 0))
    except (av.FFmpegError, OSError, ValueError) as error:
        raise VideoError(f"{name} is truncated or damaged: {_short(error)}") from None
    raise VideoError(f"{name} has no frame that could be decoded; the file is damaged")


def upright(frame: np.ndarray, rotation: int) -> np.ndarray:
    """``frame`` as its player shows it, turned by ``rotation`` degrees counterclockwise."""
    turns = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(frame, k=turns)) if turns else frame


Progress = Callable[[int, int], bool | None]  # (frames done, frames expected) -> True to cancel


def paint_video(
    source: str | os.PathLike,
    destination: str | os.PathLike,
    frames: FramePainter,
    *,
    limits: VideoLimits = DEFAULT_LIMITS,
    progress: Progress | None = None,
) -> VideoResult:
    """Paint every frame of ``source`` with ``frames`` into ``destination`` (same frame count,
    rate, timestamps; audio kept); ``progress`` is called after each frame, True cancels.

    Raises:
        VideoError: a file refused by :func:`probe`, a destination we do not write, one that
            decodes to more frames than the limits allow, or a truncated or damaged file.
        Cancelled: ``progress`` answered True (nothing is left at ``destination``).
    """
    import av

    source, destination = Path(source), Path(destination)
    if destination.suffix.lower() not in OUTPUT_SUFFIXES:
        raise VideoError(f"{destination.name}: the painted video is written as {', '.join(OUTPUT_SUFFIXES)}")
    info = probe(source, limits)
    partial = destination.with_name(f".{destination.name}.partial{destination.suffix}")
    started = time.perf_counter()
    height, width = info.height, info.width
    _, rotation = first_frame(source)
    compile_s = frames.warm_up(height, width)
    suffix = destination.suffix.lower()
    try:
        with av.open(str(source), metadata_errors="ignore") as reader, av.open(str(partial), "w") as writer:
            counts = _transcode(reader, writer, info, frames, limits, progress, source.name, suffix, rotation)
        if counts.frames == 0:
            raise VideoError(f"{source.name} has no frame that could be decoded; the file is damaged")
        if info.frames and counts.frames < info.frames - 1:
            raise VideoError(f"{source.name} is truncated or damaged: {counts.frames} of the {info.frames} frames "
                             "it announces could be decoded")  # fmt: skip
        if not info.frames and info.duration_s and counts.duration_s < 0.9 * info.duration_s - 1 / info.fps:
            raise VideoError(f"{source.name} is truncated or damaged: {counts.duration_s:.1f} s of the "
                             f"{info.duration_s:.1f} s it announces could be decoded")  # fmt: skip
        os.replace(partial, destination)
    except av.FFmpegError as error:
        raise VideoError(f"{source.name} is truncated or damaged: {_short(error)}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return VideoResult(
        path=destination, frames=counts.frames, fps=info.fps, duration_s=counts.duration_s or info.duration_s,
        width=width - width % 2, height=height - height % 2, has_audio=counts.audio_packets > 0,
        total_s=time.perf_counter() - started, paint_s=counts.paint_s, compile_s=compile_s,
        flicker=counts.flicker.summary(), poster=upright(counts.poster, rotation),
        input_poster=upright(counts.input_poster, rotation), rotation=rotation,
    )  # fmt: skip


@dataclasses.dataclass
class _Counts:
    frames: int = 0
    audio_packets: int = 0
    paint_s: float = 0.0
    duration_s: float = 0.0
    flicker: FlickerMeter = dataclasses.field(default_factory=FlickerMeter)
    poster: np.ndarray | None = None
    input_poster: np.ndarray | None = None


def _demuxed(reader, streams: list, audio_in: Any, *, transcode_audio: bool) -> Iterator[tuple[str, Any, Any]]:
    """The source's items in file order: ("audio packet", packet, None) to copy, ("audio frame",
    frame, None) to re-encode, ("video", frame, its RGB array)."""
    for packet in reader.demux(*streams):
        if packet.stream is audio_in:
            if packet.dts is None:
                continue
            if not transcode_audio:
                yield "audio packet", packet, None
                continue
            for decoded in packet.decode():
                yield "audio frame", decoded, None
            continue
        for decoded in packet.decode():
            yield "video", decoded, decoded.to_ndarray(format="rgb24")


class _ReadAhead:
    """Runs an iterator on a thread, at most ``depth`` items ahead of its reader; an error on the
    thread comes out of the loop that reads it, and leaving the loop early stops the thread."""

    _END = object()

    def __init__(self, source: Iterator[Any], depth: int = 4) -> None:
        self._source = source
        self._items: queue.Queue = queue.Queue(depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jaxstyle-video-read", daemon=True)

    def _run(self) -> None:
        try:
            for item in self._source:
                if not self._put(item):
                    return
        except BaseException as error:  # noqa: BLE001 — handed to the reading thread, which raises it
            self._put(error)
            return
        self._put(self._END)

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __enter__(self) -> Iterator[Any]:
        self._thread.start()
        return self._iterate()

    def _iterate(self) -> Iterator[Any]:
        while True:
            item = self._items.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class _WriteBehind:
    """Runs calls in order on a thread, at most ``depth`` behind their caller; the first error on
    the thread comes out of the next :meth:`do` or of leaving the ``with`` block."""

    def __init__(self, depth: int = 4) -> None:
        self._calls: queue.Queue = queue.Queue(depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="jaxstyle-video-write", daemon=True)

    def _run(self) -> None:
        while (call := self._calls.get()) is not None:
            if self._error is None:
                try:
                    call[0](*call[1:])
                except BaseException as error:  # noqa: BLE001 — raised in the calling thread
                    self._error = error

    def do(self, function: Callable, *args: Any) -> None:
        if self._error is not None:
            raise self._error
        self._calls.put((function, *args))

    def __enter__(self) -> _WriteBehind:
        self._thread.start()
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        self._calls.put(None)
        self._thread.join()
        if self._error is not None and kind is None:
            raise self._error


def _transcode(reader, writer, info: VideoInfo, frames: FramePainter, limits: VideoLimits,
               progress: Progress | None, name: str, suffix: str, rotation: int) -> _Counts:  # fmt: skip
    import av

    video_in = reader.streams.video[0]
    video_in.thread_type = "AUTO"
    rate = video_in.average_rate or fractions.Fraction(info.fps).limit_denominator(1001)
    video_out = writer.add_stream("libx264", rate=rate)
    # Even sizes: yuv420p halves the chroma. The time base of the source keeps its timestamps.
    video_out.width, video_out.height = info.width - info.width % 2, info.height - info.height % 2
    video_out.pix_fmt = "yuv420p"
    video_out.time_base = video_in.time_base
    if rotation:  # the frames are painted as stored; the player turns them, as it did the source's
        video_out.set_display_rotation(rotation)
    video_out.options = {"crf": "20", "preset": "veryfast"}
    audio_in = reader.streams.audio[0] if reader.streams.audio else None
    audio_out, resampler = None, None
    if audio_in is not None:
        copyable = _COPY_AUDIO.get(suffix)
        if copyable is None or audio_in.codec_context.name in copyable:
            audio_out = writer.add_stream_from_template(audio_in)
        else:
            audio_out = writer.add_stream("aac", rate=audio_in.codec_context.sample_rate or 48000)
            resampler = av.AudioResampler(format="fltp", layout="stereo", rate=audio_out.rate)
            audio_out.layout = "stereo"
    expected = info.frames or round(info.duration_s * info.fps)
    middle = max(expected // 2, 0)
    counts = _Counts()
    first_pts, last_pts, last_duration = None, None, 0
    streams = [video_in] + ([audio_in] if audio_in is not None else [])

    # Decoding runs a few frames ahead on a thread of its own (FFmpeg and XLA let go of the GIL),
    # so it overlaps the network's pass instead of waiting its turn.
    def write_audio(kind: str, item: Any) -> None:
        if kind == "audio packet":
            item.stream = audio_out
            writer.mux(item)
        else:
            for chunk in resampler.resample(item):
                chunk.pts = None
                writer.mux(audio_out.encode(chunk))
        counts.audio_packets += 1

    def write_video(index: int, image: np.ndarray, painted: np.ndarray, pts: int) -> None:
        counts.flicker.add(image, painted)
        if index == middle or counts.poster is None:
            counts.poster, counts.input_poster = painted, image
        out = av.VideoFrame.from_ndarray(painted, format="rgb24")
        out.pts, out.time_base = pts, video_in.time_base
        writer.mux(video_out.encode(out))

    # Decoding runs a few frames ahead, and measuring and encoding a few frames behind, each on a
    # thread of its own (FFmpeg, NumPy and XLA let go of the GIL): they overlap the network's pass.
    demuxed = _demuxed(reader, streams, audio_in, transcode_audio=resampler is not None)
    with _ReadAhead(demuxed) as items, _WriteBehind() as behind:
        for kind, item, image in items:
            if kind != "video":
                behind.do(write_audio, kind, item)
                continue
            if counts.frames >= limits.max_frames:
                raise VideoError(f"{name} holds more than {limits.max_frames:,} frames (its header said "
                                 f"{info.frames or 'nothing'}); videos are {limits.describe()}")  # fmt: skip
            if image.shape[:2] != (info.height, info.width):
                raise VideoError(f"{name} changes frame size mid-stream ({image.shape[1]}×{image.shape[0]}); "
                                 "it is not taken")  # fmt: skip
            image = image[: video_out.height, : video_out.width]
            started = time.perf_counter()
            painted = frames.paint(image)
            counts.paint_s += time.perf_counter() - started
            pts = item.pts if item.pts is not None else counts.frames
            if first_pts is None:
                first_pts = pts
            last_pts, last_duration = pts, item.duration or 0
            behind.do(write_video, counts.frames, image, painted, pts)
            counts.frames += 1
            if progress is not None and progress(counts.frames, expected):
                raise Cancelled(f"cancelled after {counts.frames} of {expected} frames")
    writer.mux(video_out.encode(None))
    if resampler is not None:
        writer.mux(audio_out.encode(None))
    if first_pts is not None and video_in.time_base:
        span = last_pts - first_pts + (last_duration or (1 / info.fps) / video_in.time_base)
        counts.duration_s = float(span * video_in.time_base)
    return counts
