"""One run's life in the gallery: inputs stored and the run added before it starts, progress
while it runs, then its image and losses — or why it failed. Used by the CLI and the job worker,
so both store runs the same way.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence

from PIL import Image

from jaxstyle import gallery, images, inputs
from jaxstyle.errors import Cancelled
from jaxstyle.runs import METHOD_OPTIMIZE
from jaxstyle.settings import TransferSettings
from jaxstyle.transfer import Iterate, TransferResult
from jaxstyle.weights import Weights

# Progress rows are written at most this often: the gallery is shared by every session.
_PROGRESS_EVERY_S = 1.0


@dataclasses.dataclass
class GalleryRecorder:
    """Writes one run's progress and outcome to the gallery at ``path`` (a connection per write)."""

    path: os.PathLike | str | None
    run_id: int
    _last_write: float = 0.0

    @classmethod
    def create(
        cls,
        path: os.PathLike | str | None,
        settings: TransferSettings,
        content: inputs.LoadedImage,
        styles: Sequence[inputs.LoadedImage],
        *,
        weights: Weights | None = None,
        device: str = "",
        title: str | None = None,
        tags: Sequence[str] = (),
        group_id: str | None = None,
        start: bool = True,
        method: str = METHOD_OPTIMIZE,
        model: str | None = None,
        owner: str | None = None,
    ) -> GalleryRecorder:
        """Store the inputs and add the run: running if ``start`` (it runs now, as in the CLI), else
        queued (a job runner starts it when a worker is free). This is the one place a run is submitted.

        Args:
            weights, device: what it runs with, when already known (a queued run records them
                when it finishes).
            owner: on a shared site, the signed-in user the run and its inputs belong to.

        Raises:
            SettingsError: no style image, or a ``style_blend`` that doesn't fit the styles (nothing is stored).
            ImageError, GalleryError: an input the gallery refuses, or a gallery that can't be written.
        """
        settings.blend_for(len(styles))  # refused before any input is stored
        with gallery.connect(path) as db:
            content_sha = gallery.store_image(
                db, content.data, origin_kind=content.origin_kind, origin=content.origin, owner=owner
            )
            style_shas = [
                gallery.store_image(db, s.data, origin_kind=s.origin_kind, origin=s.origin, owner=owner) for s in styles
            ]
            run_id = gallery.add_run(
                db,
                settings.to_dict(),
                content_sha=content_sha,
                style_shas=style_shas,
                title=title,
                tags=tags,
                group_id=group_id,
                weights_source=weights.source if weights is not None else "",
                device=device,
                method=method,
                model=model,
                owner=owner,
            )
            if start:
                gallery.start_run(db, run_id, total_steps=settings.total_iterations())
        return cls(path=path, run_id=run_id)

    def start(self, settings: TransferSettings) -> None:
        with gallery.connect(self.path) as db:
            gallery.start_run(db, self.run_id, total_steps=settings.total_iterations())

    def progress(self, iterate: Iterate, *, force: bool = False) -> None:
        """Record progress (throttled; a report that carries a preview is always written)."""
        now = time.monotonic()
        if not force and iterate.preview is None and now - self._last_write < _PROGRESS_EVERY_S:
            return
        self._last_write = now
        preview = images.png_bytes(iterate.preview) if iterate.preview is not None else None
        with gallery.connect(self.path) as db:
            gallery.record_progress(
                db,
                self.run_id,
                step=iterate.step,
                total_steps=iterate.total_steps,
                losses=iterate.losses,
                preview_png=preview,
            )

    def finish(self, result: TransferResult) -> int:
        with gallery.connect(self.path) as db:
            gallery.finish_run(
                db,
                self.run_id,
                image_png=images.png_bytes(result.image),
                initial_losses=result.initial_losses,
                final_losses=result.final_losses,
                loss_history=result.loss_history,
                compile_s=result.compile_s,
                run_s=result.run_s,
                device=result.device,
                weights_source=result.weights_source,
            )
        return self.run_id

    def finish_instant(
        self,
        image: Image.Image,
        *,
        photo_losses: dict[str, float],
        losses: dict[str, float],
        compile_s: float,
        run_s: float,
        device: str,
        weights_source: str,
        size_px: int,
    ) -> int:
        """Store an instant run's image: its losses as an optimization scores them, beside the
        photo's own (the "initial" losses, as an optimization starting from the photo has them),
        and a one-point history (one pass of the network). Empty losses: scored later
        (:meth:`record_scores`)."""
        with gallery.connect(self.path) as db:
            gallery.finish_run(
                db,
                self.run_id,
                image_png=images.png_bytes(image),
                initial_losses=photo_losses,
                final_losses=losses,
                loss_history=_instant_history(losses, size_px),
                compile_s=compile_s,
                run_s=run_s,
                device=device,
                weights_source=weights_source,
            )
        return self.run_id

    def record_scores(self, *, photo_losses: dict[str, float], losses: dict[str, float], size_px: int) -> bool:
        """Store the losses of an instant run finished without them (see :meth:`finish_instant`)."""
        with gallery.connect(self.path) as db:
            return gallery.record_scores(
                db,
                self.run_id,
                initial_losses=photo_losses,
                final_losses=losses,
                loss_history=_instant_history(losses, size_px),
            )

    def fail(self, error: BaseException) -> None:
        """Mark the run failed (or cancelled) with a readable reason."""
        cancelled = isinstance(error, (Cancelled, KeyboardInterrupt))
        reason = str(error) or type(error).__name__
        if not cancelled and not isinstance(error, Exception):
            reason = f"stopped: {type(error).__name__}"
        with gallery.connect(self.path) as db:
            gallery.fail_run(db, self.run_id, reason, cancelled=cancelled)


def _instant_history(losses: dict[str, float], size_px: int) -> list[dict]:
    """An instant run's loss history: one point (one pass of the network), or none before it is scored."""
    return [{"step": 1, "size_px": size_px, **losses}] if losses else []
