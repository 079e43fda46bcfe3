"""Trainings in the background: one thread per training, its progress readable from any thread,
and a cancel that stops it after a checkpoint (what the app's Models page starts and watches).
Each thread hands its training to a backend (:mod:`jaxstyle.runners`: this process, or a worker of
the Ray cluster the app's runs go to), so the model and its checkpoints always land here.

A :class:`Trainings` registry holds one gallery's trainings by model name, so a page that is
rendered again (or another browser tab) finds a training that is still going. Everything a
person can get wrong (a name that is taken, no styles, no photos, settings out of range) is
refused by :meth:`Trainings.start` before a thread starts; what fails later (a photo that does not
decode, a full disk) ends the training as failed, with its one-line reason in its
:class:`~jaxstyle.runs.Progress`.

Uploaded photos are kept in ``<name>-photos/`` beside the model, so a stopped training resumes on
the very photos it started with, also after a restart; the gallery's photos are read again at a
resume. Nothing here imports Streamlit.
"""

from __future__ import annotations

import collections
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image

from jaxstyle import images, runners
from jaxstyle.errors import Cancelled, JaxstyleError
from jaxstyle.instant import models
from jaxstyle.instant.train import (
    TrainProgress,
    TrainSettings,
    gallery_photos,
    photo_files,
    recorded_settings,
)
from jaxstyle.runs import CANCELLED, DONE, FAILED, RUNNING, Progress

log = logging.getLogger(__name__)

GALLERY_PHOTOS = "the gallery's photos"  # what train() records for photos given as a list
_MAX_POINTS = 4000  # loss points kept for the live chart (thinned beyond that)
_RATE_WINDOW = 20  # reports averaged for images per second


class TrainingJob:
    """One training on its own thread. Start with :meth:`Trainings.start` or :meth:`Trainings.resume`."""

    def __init__(
        self,
        name: str,
        styles: Sequence[tuple[str, Image.Image]],
        photo_source: str | os.PathLike | Sequence[tuple[str, bytes]],
        settings: TrainSettings,
        backend: runners.Backend,
        *,
        gallery_path: str | os.PathLike | None,
        resume: bool = False,
        history: Sequence[float] = (),
        start_step: int = 0,
        start_from: models.Model | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.backend = backend
        self._args = (list(styles), photo_source, gallery_path, resume, start_from)
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._status = RUNNING
        self._error: str | None = None
        self._step = start_step
        self._start_step = start_step
        self._loss: float | None = history[-1] if history else None
        self._losses = [(k + 1, float(v)) for k, v in enumerate(history)]
        self._rates: collections.deque[tuple[float, int]] = collections.deque(maxlen=_RATE_WINDOW)
        self._elapsed = 0.0
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._work, name=f"jaxstyle-train-{name}", daemon=True)

    def start(self) -> TrainingJob:
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Stop at the next step, after writing a checkpoint (a resume continues from there)."""
        self._cancel.set()

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait for the thread; True once it has ended."""
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def snapshot(self) -> Progress:
        """Where the training is: its steps per second are the recent rate (images per second is
        that times ``settings.batch``), its history ``{"step", "total"}`` points for a chart."""
        with self._lock:
            rates = list(self._rates)
            rate = 0.0
            if len(rates) >= 2 and rates[-1][0] > rates[0][0]:
                rate = (rates[-1][1] - rates[0][1]) / (rates[-1][0] - rates[0][0])
            return Progress(
                self._status,
                step=self._step,
                total_steps=self.settings.steps,
                losses={} if self._loss is None else {"total": self._loss},
                error=self._error,
                history=tuple({"step": step, "total": loss} for step, loss in self._losses),
                elapsed_s=self._elapsed if self._status != RUNNING else time.monotonic() - self._started,
                its_per_s=rate,
                start_step=self._start_step,
            )

    def _report(self, progress: TrainProgress) -> bool:
        with self._lock:
            if progress.step > self._start_step + 1:  # the first step's time is mostly compiling
                self._rates.append((progress.elapsed_s, progress.step))
            self._step, self._loss = progress.step, progress.loss
            self._losses.append((progress.step, progress.loss))
            if len(self._losses) > _MAX_POINTS:
                self._losses = self._losses[::2]
        return self._cancel.is_set()

    def _work(self) -> None:
        styles, photo_source, gallery_path, resume, start_from = self._args
        status, error = DONE, None
        try:
            self.backend.train(
                self.name,
                styles,
                photo_source,
                self.settings,
                self._report,
                gallery_path=gallery_path,
                resume=resume,
                start_from=start_from,
                report_every=1,
            )
        except Cancelled as stopped:
            status, error = CANCELLED, str(stopped).replace("--resume continues it", "Resume continues it")
        except JaxstyleError as failure:
            status, error = FAILED, str(failure)
        except Exception as failure:  # noqa: BLE001 — shown as one line, logged in full
            log.exception("training %s failed", self.name)
            status, error = FAILED, f"unexpected error: {type(failure).__name__}: {failure}"
        with self._lock:
            self._status, self._error = status, error
            self._elapsed = time.monotonic() - self._started


def photos_folder(name: str, gallery_path: str | os.PathLike | None = None) -> Path:
    """Where the photos uploaded for the training of model ``name`` are kept."""
    return models.models_dir(gallery_path) / f"{models.check_name(name)}-photos"


def save_photos(name: str, photos: Sequence[tuple[str, bytes]], gallery_path: str | os.PathLike | None = None) -> Path:
    """Keep uploaded photos beside the model (each checked to be an image), for training and resume.

    Raises:
        ModelError: no photos.
        ImageError: one of them is not a usable image (the message names it).
    """
    if not photos:
        raise models.ModelError("no photos to train on: upload some, or train on the gallery's photos")
    kept = []
    for label, data in photos:
        label = images.safe_filename(label)
        image = images.open_image(data, name=label)  # the upload guard: refused before anything is written
        suffix = Path(label).suffix.lower()
        # As uploaded when its name says what it is; else as PNG, so the folder's reader knows it.
        if suffix in images.IMAGE_SUFFIXES:
            kept.append((Path(label).stem, suffix, data))
        else:
            kept.append((label, ".png", images.png_bytes(image)))
    folder = photos_folder(name, gallery_path)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for k, (stem, suffix, data) in enumerate(kept):
        (folder / f"{k:04d}-{stem}{suffix}").write_bytes(data)
    return folder


def delete_model(name: str, gallery_path: str | os.PathLike | None = None) -> None:
    """Delete a model, its checkpoint and the photos kept for its training."""
    models.delete_model(name, gallery_path)
    shutil.rmtree(photos_folder(name, gallery_path), ignore_errors=True)


def resume_inputs(
    name: str, gallery_path: str | os.PathLike | None = None
) -> tuple[list[tuple[str, Image.Image]], str | Path | list[tuple[str, bytes]], TrainSettings, list[float]]:
    """What a stopped training of ``name`` resumes with: its styles (the paintings its checkpoint
    keeps), its photos, its settings and its loss history so far.

    Raises:
        ModelError: no checkpoint, a training that added a style (resume that one with the CLI), or
            photos that are gone.
    """
    path = models.checkpoint_path(name, gallery_path)
    if not path.is_file():
        raise models.ModelError(f"model {name} has no checkpoint to resume from")
    saved = models.decode(path.read_bytes(), str(path))
    meta = saved["meta"]
    record = meta.get("train", {})
    if record.get("added"):
        raise models.ModelError(
            f"the training of {name} added a style to it: resume it with "
            f"`python -m jaxstyle train --model {name} --add-style … --resume`"
        )
    styles = [(style, images.open_image(saved["style_images"][style], name=style)) for style in meta["styles"]]
    photos = record.get("photos")
    if photos == GALLERY_PHOTOS:
        source: str | Path | list[tuple[str, bytes]] = gallery_photos(gallery_path)
    elif photos and Path(photos).is_dir():
        source = Path(photos)
    else:
        raise models.ModelError(f"the photos {name} was trained on ({photos}) are gone: train a new model instead")
    settings = TrainSettings(**recorded_settings(record["settings"]))
    return styles, source, settings, list(meta.get("loss_history", []))


class Trainings:
    """One gallery's trainings by model name: start, resume, find, forget.

    Args:
        gallery_path: the gallery the models are kept beside.
        backend: where the trainings execute (the app's: :func:`jaxstyle.runners.backend_for`);
            default in this process, with :func:`jaxstyle.runners.default_weights_loader`.
    """

    def __init__(
        self, gallery_path: str | os.PathLike | None = None, *, backend: runners.Backend | None = None
    ) -> None:
        self.gallery_path = gallery_path
        self.backend = backend or runners.InProcessBackend(runners.default_weights_loader)
        self._jobs: dict[str, TrainingJob] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> TrainingJob | None:
        with self._lock:
            return self._jobs.get(name)

    def names(self) -> list[str]:
        with self._lock:
            return list(self._jobs)

    def running(self, name: str) -> bool:
        job = self.get(name)
        return job is not None and not job.snapshot().finished

    def forget(self, name: str) -> None:
        """Drop a finished training from the registry (a running one is kept)."""
        with self._lock:
            job = self._jobs.get(name)
            if job is not None and job.snapshot().finished:
                del self._jobs[name]

    def start(
        self,
        name: str,
        styles: Sequence[tuple[str, Image.Image]],
        photo_source: str | os.PathLike | Sequence[tuple[str, bytes]],
        settings: TrainSettings,
        *,
        keep_photos: bool = False,
        start_from: models.Model | None = None,
    ) -> TrainingJob:
        """Start training a new model ``name`` in the background (from the params of ``start_from``,
        which holds ``styles``, if given); with ``keep_photos`` the photos (a list of (name, bytes),
        e.g. uploads) are first kept beside the model (:func:`save_photos`).

        Raises:
            ModelError: a bad or taken name (a built-in model's included), no styles or a style named
                twice, no photos.
            ImageError: a photo to keep that is not an image.
        """
        models.check_new_name(name)
        style_names = [style for style, _ in styles]
        if not styles:
            raise models.ModelError("choose at least one style to train")
        if len(set(style_names)) != len(style_names):
            raise models.ModelError(f"a style is named twice: {', '.join(style_names)}")
        if isinstance(photo_source, (str, os.PathLike)):
            if not photo_files(photo_source):  # a missing folder: its own ModelError
                raise models.ModelError(f"no photos to train on in {photo_source}")
        elif not photo_source:
            raise models.ModelError(
                "no photos to train on: generate an image first (its photo joins the gallery), or upload photos"
            )

        def make() -> TrainingJob:
            source = photo_source
            if keep_photos and not isinstance(photo_source, (str, os.PathLike)):
                source = save_photos(name, photo_source, self.gallery_path)
            return TrainingJob(
                name, styles, source, settings, self.backend, gallery_path=self.gallery_path, start_from=start_from
            )

        return self._launch(name, make, taken=True)

    def resume(self, name: str) -> TrainingJob:
        """Continue a stopped training of ``name`` from its last checkpoint.

        Raises:
            ModelError: see :func:`resume_inputs`; or it is running already.
        """
        styles, source, settings, history = resume_inputs(name, self.gallery_path)
        step = len(history)
        return self._launch(
            name,
            lambda: TrainingJob(
                name,
                styles,
                source,
                settings,
                self.backend,
                gallery_path=self.gallery_path,
                resume=True,
                history=history,
                start_step=step,
            ),  # fmt: skip
            taken=False,
        )

    def _launch(self, name: str, make: Callable[[], TrainingJob], *, taken: bool) -> TrainingJob:
        with self._lock:
            current = self._jobs.get(name)
            if current is not None and not current.snapshot().finished:
                raise models.ModelError(f"model {name} is training already")
            if taken and (
                models.model_path(name, self.gallery_path).exists()
                or models.checkpoint_path(name, self.gallery_path).exists()
            ):
                raise models.ModelError(
                    f"a model called {name!r} exists already: pick another name, or delete it first"
                )
            job = make()
            self._jobs[name] = job
        return job.start()
