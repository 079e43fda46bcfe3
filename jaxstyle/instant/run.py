"""One instant run, as the CLI and the app make it: paint, score, store in the gallery; with a
trained model (:func:`run_instant`) or a built-in one (:func:`run_builtin`).

The image is scored with the optimization's loss (same VGG19 weights, layers and relative
weights; :func:`jaxstyle.objective.losses_of`), beside the photo's own loss, so an instant run and
an optimization run compare by one number in the gallery and on Compare.

Painting and scoring happen where the backend executes (:meth:`jaxstyle.runners.Backend.instant`:
this process, or a Ray worker with its own weights); the gallery is written here.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from PIL import Image

from jaxstyle import images, inputs, objective
from jaxstyle.instant.builtin import BuiltinPainter, Styles26Painter, check_sizes
from jaxstyle.instant.paint import Painter
from jaxstyle.instant.passes import InstantResult
from jaxstyle.runs import METHOD_INSTANT
from jaxstyle.settings import TransferSettings
from jaxstyle.weights import Weights

if TYPE_CHECKING:
    from jaxstyle.runners import Backend


@dataclasses.dataclass(frozen=True)
class InstantRun:
    """An instant run's image and timings, its loss and the photo's, and its gallery id."""

    result: InstantResult
    losses: dict[str, float]  # empty until scored when painted with score=False
    photo_losses: dict[str, float]
    run_id: int | None  # None when it was not stored
    # Painted with score=False: scores the image and stores its losses in the gallery (seconds on a
    # CPU, where the pass took a fraction of one); the caller runs it when it suits, e.g. on a thread.
    score_later: Callable[[], None] | None = None


def run_instant(
    painter: Painter,
    content: inputs.LoadedImage,
    styles: Sequence[str],
    blend: Sequence[float] | None,
    size_px: int,
    backend: Backend,
    *,
    gallery_path: str | os.PathLike | None = None,
    store: bool = True,
    title: str | None = None,
    tags: Sequence[str] = (),
    score: bool = True,
    owner: str | None = None,
) -> InstantRun:
    """Paint ``content`` with the painter's trained model in ``styles`` (blended by ``blend``) at
    ``size_px`` and score it where ``backend`` executes, and store it in the gallery at
    ``gallery_path`` unless ``store`` is False.
    With ``score=False`` the image is stored at once and :attr:`InstantRun.score_later` scores it.
    ``owner``: on a shared site, the signed-in user the run belongs to.

    Raises:
        ModelError: a style the model does not hold.
        SettingsError: a size out of range or a bad blend (nothing is stored).
        GalleryError: a gallery that cannot be written (the run is marked failed if it was added).
    """
    model = painter.model
    settings = TransferSettings(size_px=size_px, style_blend=tuple(blend) if blend is not None else None)
    model.style_weights(styles, blend)  # a style it does not hold: refused before anything is stored
    style_inputs = [inputs.from_model(model, style) for style in styles]
    return _paint_and_store(
        lambda: painter.paint(content.image, styles, blend, size_px=size_px),
        model.name, settings, content, style_inputs, backend,
        gallery_path=gallery_path, store=store, title=title, tags=tags, score=score, owner=owner,
    )  # fmt: skip


def run_builtin(
    painter: BuiltinPainter,
    content: inputs.LoadedImage,
    styles: Sequence[inputs.LoadedImage] | Sequence[str],
    blend: Sequence[float] | None,
    backend: Backend,
    *,
    size_px: int = 512,
    strength: float = 1.0,
    stroke_px: int = 0,
    preserve_color: str = "none",
    gallery_path: str | os.PathLike | None = None,
    store: bool = True,
    title: str | None = None,
    tags: Sequence[str] = (),
    score: bool = True,
    owner: str | None = None,
) -> InstantRun:
    """Paint ``content`` with a built-in model: ``arbitrary`` takes paintings (loaded images),
    ``styles26`` style numbers ("0" … "25"); score it and store it as an instant run (its settings
    hold the strength, stroke size and colour mode; for ``styles26`` each style's swatch stands for
    its painting). ``score=False`` and ``owner``: as in :func:`run_instant`.

    Raises:
        SettingsError: a size, stroke size, strength, blend, colour mode or style out of range
            (nothing is stored).
        GalleryError: a gallery that cannot be written (the run is marked failed if it was added).
    """
    check_sizes(size_px, stroke_px)  # the built-in models' sizes; the settings check the rest
    settings = TransferSettings(
        size_px=size_px, style_blend=tuple(blend) if blend is not None else None, strength=strength,
        stroke_px=stroke_px, preserve_color=preserve_color,
    )  # fmt: skip
    settings.blend_for(len(styles))
    if isinstance(painter, Styles26Painter):
        names = [str(s).strip() for s in styles]
        painter.style_weights(names, blend)  # an unknown style: refused before anything is stored
        style_inputs = [inputs.from_builtin_style(painter.name, name, painter.swatch(name)) for name in names]
        paint_styles: Sequence = names
    else:
        style_inputs = list(styles)
        paint_styles = [style.image for style in style_inputs]
    return _paint_and_store(
        lambda: painter.paint(
            content.image, paint_styles, blend, size_px=size_px, strength=strength, stroke_px=stroke_px,
            preserve_color=preserve_color,
        ),
        painter.name, settings, content, style_inputs, backend,
        gallery_path=gallery_path, store=store, title=title, tags=tags, score=score, owner=owner,
    )  # fmt: skip


def store_painted(
    result: InstantResult,
    model_name: str,
    settings: TransferSettings,
    content: inputs.LoadedImage,
    style_inputs: Sequence[inputs.LoadedImage],
    backend: Backend,
    *,
    gallery_path: str | os.PathLike | None = None,
    title: str | None = None,
    tags: Sequence[str] = (),
    score: bool = True,
    owner: str | None = None,
) -> InstantRun:
    """Store an image already painted (a frame from the camera) as an instant run, scored like
    any other where ``backend`` executes (now, or by the run's ``score_later`` when ``score`` is
    False); ``owner``: a shared site's user it belongs to."""
    return _paint_and_store(
        lambda: result, model_name, settings, content, style_inputs, backend,
        gallery_path=gallery_path, store=True, title=title, tags=tags, score=score, owner=owner,
    )  # fmt: skip


def _paint_and_store(
    paint: Callable[[], InstantResult],
    model_name: str,
    settings: TransferSettings,
    content: inputs.LoadedImage,
    style_inputs: Sequence[inputs.LoadedImage],
    backend: Backend,
    *,
    gallery_path: str | os.PathLike | None,
    store: bool,
    title: str | None,
    tags: Sequence[str],
    score: bool,
    owner: str | None = None,
) -> InstantRun:
    """The run added to the gallery (unless not ``store``), painted and scored beside the photo
    where ``backend`` executes (scored now, or by the returned run's ``score_later``), finished.
    Its weights are recorded when it finishes: a Ray worker's are its own."""
    recorder = None
    if store:
        from jaxstyle.recorder import GalleryRecorder

        recorder = GalleryRecorder.create(
            gallery_path,
            settings,
            content,
            style_inputs,
            title=title if title is not None else inputs.default_title(content, style_inputs),
            tags=tags,
            method=METHOD_INSTANT,
            model=model_name,
            owner=owner,
        )

    paintings = [s.image for s in style_inputs]

    def scores(image: Image.Image, weights: Weights) -> tuple[dict[str, float], dict[str, float]]:
        losses = objective.losses_of(image, content.image, paintings, settings, weights)
        photo = images.fit_long_side(content.image.convert("RGB"), settings.size_px)
        return losses, objective.losses_of(photo, content.image, paintings, settings, weights)

    def paint_and_score(weights: Weights) -> tuple[InstantResult, dict, dict, str]:
        result = paint()
        return result, *(scores(result.image, weights) if score else ({}, {})), weights.source

    try:
        result, losses, photo_losses, weights_source = backend.instant(paint_and_score)
        run_id = None
        if recorder is not None:
            run_id = recorder.finish_instant(
                result.image,
                photo_losses=photo_losses,
                losses=losses,
                compile_s=result.compile_s,
                run_s=result.run_s,
                device=result.device,
                weights_source=weights_source,
                size_px=settings.size_px,
            )
    except BaseException as error:
        if recorder is not None:
            recorder.fail(error)
        raise
    if score:
        return InstantRun(result, losses, photo_losses, run_id)

    def score_later() -> None:
        losses, photo_losses = backend.instant(lambda weights: scores(result.image, weights))
        if recorder is not None:
            recorder.record_scores(photo_losses=photo_losses, losses=losses, size_px=settings.size_px)

    return InstantRun(result, {}, {}, run_id, score_later)
