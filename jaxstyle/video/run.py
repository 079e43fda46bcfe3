"""Video runs and camera captures, as the CLI and the app make them and the gallery keeps them.

A video run (method ``video``) stores the painted video, a poster frame (its result image), the
video's first frame as its content, the paintings (or a model's styles) as its styles, every
setting (the frames' long side as ``size_px``, the working size as ``stroke_px``, strength,
blend, smooth) and what it measured (frames, rate, duration, timings, frames per second, flicker).

Everything that can be refused is checked by :func:`prepare` before anything is stored or
painted: the model and its styles, the sizes, and the file's header (:func:`files.probe`). A file
that turns out truncated while it is decoded is refused then, and leaves no run behind.

A capture from the camera is an instant run: the camera frame as its content, the painted frame
as its result (:func:`store_capture`).
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from jaxstyle import devices, images, inputs
from jaxstyle.instant import builtin
from jaxstyle.instant.passes import InstantResult, StyledNetwork
from jaxstyle.runs import METHOD_VIDEO
from jaxstyle.settings import TransferSettings, blend_weights
from jaxstyle.video import files
from jaxstyle.video.flicker import DEFAULT_SMOOTH, TemporalFilter, check_smooth
from jaxstyle.video.frames import DEFAULT_WORK_PX, FramePainter, check_work_px, styled_network

if TYPE_CHECKING:
    from jaxstyle.runners import Backend


@dataclasses.dataclass(frozen=True)
class VideoRequest:
    """A video to paint, as the CLI's flags or the Live page's widgets say."""

    source: Path
    model: str = builtin.ARBITRARY  # a built-in model or a trained model's name
    styles: tuple = ()  # arbitrary: paintings (inputs.LoadedImage); styles26 and trained models: style names
    blend: tuple[float, ...] | None = None
    work_px: int = DEFAULT_WORK_PX  # the long side each frame is painted at
    strength: float = 1.0  # arbitrary only
    smooth: float = DEFAULT_SMOOTH
    name: str = ""  # the file's name as the user knows it (an upload's), else the path's
    title: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def display_name(self) -> str:
        return self.name or Path(self.source).name


def painter_for(model: str, gallery_path: str | os.PathLike | None = None) -> Any:
    """A painter for ``model``: a built-in one (its weights read now), or a trained model's.

    Raises:
        WeightsError: a built-in model's weight file is missing or altered.
        ModelError: no trained model of that name.
    """
    if builtin.is_builtin(model):
        painter = builtin.BUILTIN_MODELS[model].painter()
        painter.load()
        return painter
    from jaxstyle.instant import models
    from jaxstyle.instant.paint import Painter

    return Painter(models.load_model(model, gallery_path))


def model_name(painter: Any) -> str:
    return painter.name if isinstance(painter, builtin.BuiltinPainter) else painter.model.name


@dataclasses.dataclass(frozen=True)
class PreparedVideo:
    """A request with everything checked and worked out once: nothing stored yet."""

    request: VideoRequest
    info: files.VideoInfo
    settings: TransferSettings
    content: inputs.LoadedImage  # the video's first frame, as a PNG
    style_inputs: tuple[inputs.LoadedImage, ...]
    network: StyledNetwork
    model: str


def first_frame(path: str | os.PathLike) -> np.ndarray:
    """The first frame of a video, upright as its player shows it (H, W, 3 uint8).

    Raises:
        VideoError: no frame can be decoded.
    """
    return files.upright(*files.first_frame(path))


def _style_inputs(request: VideoRequest, painter: Any) -> tuple[tuple, tuple[inputs.LoadedImage, ...]]:
    """What the network is styled with, and what the gallery stores as the run's styles."""
    if isinstance(painter, builtin.ArbitraryPainter):
        paintings = tuple(request.styles)
        return tuple(p.image for p in paintings), paintings
    names = tuple(str(s).strip() for s in request.styles)
    if isinstance(painter, builtin.Styles26Painter):
        painter.style_weights(names, request.blend)  # an unknown style: refused before the swatches
        return names, tuple(inputs.from_builtin_style(painter.name, n, painter.swatch(n)) for n in names)
    painter.model.style_weights(names, request.blend)
    return names, tuple(inputs.from_model(painter.model, n) for n in names)


def prepare(request: VideoRequest, painter: Any, limits: files.VideoLimits = files.DEFAULT_LIMITS) -> PreparedVideo:
    """Check ``request`` (model, styles, sizes, strength, smooth, the file's header) and fix the
    style once, from the paintings and (below full strength) the video's first frame.

    Raises:
        SettingsError, ModelError: a setting or style the model refuses.
        VideoError: a file that is not a video we take (:func:`files.probe`).
    """
    work_px = check_work_px(painter, request.work_px)
    smooth = check_smooth(request.smooth)
    blend_weights(request.blend, len(request.styles))
    if not request.styles:
        from jaxstyle.errors import SettingsError

        raise SettingsError("name at least one style (a painting, or a style of the model)")
    info = files.probe(request.source, limits)
    frame = first_frame(request.source)
    styles, style_inputs = _style_inputs(request, painter)
    network = styled_network(painter, styles, request.blend, strength=request.strength, photo=Image.fromarray(frame))
    long_side = max(info.width, info.height)
    settings = TransferSettings(
        size_px=long_side, stroke_px=work_px if work_px < long_side else 0, strength=request.strength,
        style_blend=request.blend, smooth=smooth,
    )  # fmt: skip
    content = inputs.LoadedImage(Image.fromarray(frame), images.png_bytes(Image.fromarray(frame)), "file",
                                 request.display_name)  # fmt: skip
    return PreparedVideo(request, info, settings, content, style_inputs, network, model_name(painter))


def paint_prepared(
    prepared: PreparedVideo,
    destination: str | os.PathLike,
    *,
    limits: files.VideoLimits = files.DEFAULT_LIMITS,
    progress: files.Progress | None = None,
) -> files.VideoResult:
    """Paint the prepared video into ``destination`` (see :func:`files.paint_video`)."""
    frames = FramePainter(prepared.network, prepared.request.work_px, TemporalFilter(prepared.settings.smooth))
    return files.paint_video(prepared.request.source, destination, frames, limits=limits, progress=progress)


@dataclasses.dataclass(frozen=True)
class VideoParcel:
    """A prepared video as bytes, for a worker on another machine (a Ray cluster) to paint: the
    file, the paintings (or style names), the model's file when it is a trained one, the settings."""

    video: bytes
    suffix: str
    name: str
    model: str
    styles: tuple  # (name, bytes) of each painting for arbitrary; style names otherwise
    blend: tuple[float, ...] | None
    work_px: int
    strength: float
    smooth: float
    model_file: bytes | None = None  # a trained model's file; None for a built-in model

    @classmethod
    def of(cls, prepared: PreparedVideo, gallery_path: str | os.PathLike | None = None) -> VideoParcel:
        request = prepared.request
        model_file = None
        if not builtin.is_builtin(prepared.model):
            from jaxstyle.instant import models

            model_file = models.model_path(prepared.model, gallery_path).read_bytes()
        styles = (
            tuple((s.origin, s.data) for s in request.styles) if prepared.model == builtin.ARBITRARY else request.styles
        )
        return cls(
            Path(request.source).read_bytes(), Path(request.source).suffix.lower(), request.display_name,
            prepared.model, styles, request.blend, request.work_px, request.strength, request.smooth, model_file,
        )  # fmt: skip

    def paint(self, folder: Path, progress: files.Progress | None = None) -> tuple[files.VideoResult, bytes]:
        """Unpack into ``folder``, prepare (every check again: this is another machine) and paint;
        the result and the painted video's bytes."""
        source = folder / f"source{self.suffix}"
        source.write_bytes(self.video)
        gallery_path = None
        if self.model_file is not None:
            from jaxstyle.instant import models

            gallery_path = folder / "gallery.db"
            models.model_path(self.model, gallery_path).parent.mkdir(parents=True, exist_ok=True)
            models.model_path(self.model, gallery_path).write_bytes(self.model_file)
        styles = self.styles
        if self.model == builtin.ARBITRARY:
            styles = tuple(inputs.from_upload(data, name) for name, data in self.styles)
        request = VideoRequest(source, model=self.model, styles=styles, blend=self.blend, work_px=self.work_px,
                               strength=self.strength, smooth=self.smooth, name=self.name)  # fmt: skip
        prepared = prepare(request, painter_for(self.model, gallery_path))
        result = paint_prepared(prepared, folder / "painted.mp4", progress=progress)
        return result, result.path.read_bytes()


@dataclasses.dataclass(frozen=True)
class VideoRun:
    result: files.VideoResult
    run_id: int | None  # None when not stored


def add_run(
    prepared: PreparedVideo, gallery_path: str | os.PathLike | None, *, start: bool, owner: str | None = None
) -> Any:
    """The video run added to the gallery (queued, or running if ``start``), owned by ``owner`` on
    a shared site: its GalleryRecorder."""
    from jaxstyle.recorder import GalleryRecorder

    request = prepared.request
    title = request.title
    if title is None:
        title = inputs.default_title(prepared.content, prepared.style_inputs)
    return GalleryRecorder.create(
        gallery_path, prepared.settings, prepared.content, list(prepared.style_inputs), title=title,
        tags=request.tags, method=METHOD_VIDEO, model=prepared.model, start=start, owner=owner,
    )  # fmt: skip


def finish_run(recorder: Any, result: files.VideoResult) -> int:
    """Store the painted video of ``recorder``'s run (its poster frame as the result image)."""
    from jaxstyle import gallery

    data = Path(result.path).read_bytes()
    with gallery.connect(recorder.path) as db:
        gallery.finish_video(
            db, recorder.run_id, poster_png=images.png_bytes(Image.fromarray(result.poster)), video=data,
            suffix=Path(result.path).suffix.lower(), stats=result.stats(), compile_s=result.compile_s,
            run_s=result.total_s, device=devices.description(),
        )  # fmt: skip
    return recorder.run_id


def run_video(
    request: VideoRequest,
    destination: str | os.PathLike,
    *,
    painter: Any = None,
    gallery_path: str | os.PathLike | None = None,
    store: bool = True,
    limits: files.VideoLimits = files.DEFAULT_LIMITS,
    progress: files.Progress | None = None,
) -> VideoRun:
    """Paint ``request``'s video into ``destination`` and store it as a video run (unless not
    ``store``). The run is added only once the whole video is painted: a refused, truncated or
    cancelled video leaves nothing in the gallery and nothing at ``destination``.

    Raises:
        SettingsError, ModelError, VideoError: see :func:`prepare` and :func:`files.paint_video`.
        Cancelled: ``progress`` answered True.
    """
    painter = painter if painter is not None else painter_for(request.model, gallery_path)
    prepared = prepare(request, painter, limits)
    result = paint_prepared(prepared, destination, limits=limits, progress=progress)
    if not store:
        return VideoRun(result, None)
    recorder = add_run(prepared, gallery_path, start=True)
    try:
        return VideoRun(result, finish_run(recorder, result))
    except BaseException as error:
        recorder.fail(error)
        raise


def store_capture(
    live_style: Any,
    camera_frame: np.ndarray,
    painted: np.ndarray,
    style_inputs: Sequence[inputs.LoadedImage],
    backend: Backend,
    *,
    gallery_path: str | os.PathLike | None = None,
    title: str | None = None,
    paint_s: float = 0.0,
    score: bool = False,
    owner: str | None = None,
) -> Any:
    """Store a camera frame and its painting (from :meth:`LivePainter.latest`) as an instant run
    of ``live_style``'s model; scored where ``backend`` executes, now or by the returned run's
    ``score_later`` (see :func:`jaxstyle.instant.run.run_builtin`).

    Raises:
        GalleryError: a gallery that cannot be written.
    """
    from jaxstyle.instant.run import store_painted

    painter = live_style.painter
    height, width = camera_frame.shape[:2]
    long_side = max(height, width)
    settings = TransferSettings(
        size_px=long_side, stroke_px=live_style.work_px if live_style.work_px < long_side else 0,
        strength=live_style.strength, style_blend=live_style.blend, smooth=live_style.smooth,
    )  # fmt: skip
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    buffer = io.BytesIO()
    Image.fromarray(camera_frame).save(buffer, format="PNG")
    content = inputs.LoadedImage(Image.fromarray(camera_frame), buffer.getvalue(), "upload", f"camera {stamp}")
    name = model_name(painter)
    result = InstantResult(
        image=Image.fromarray(painted), model=name, styles=tuple(s.origin for s in style_inputs),
        blend=blend_weights(live_style.blend, len(style_inputs)), size_px=long_side, compile_s=0.0, run_s=paint_s,
        device=devices.description(), strength=live_style.strength, work_px=min(live_style.work_px, long_side),
    )  # fmt: skip
    return store_painted(
        result, name, settings, content, style_inputs, backend, gallery_path=gallery_path,
        title=title if title is not None else f"Live: {inputs.default_title(content, style_inputs)}",
        tags=("live",), score=score, owner=owner,
    )  # fmt: skip
