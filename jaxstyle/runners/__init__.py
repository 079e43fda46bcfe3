"""Backends: where background work executes, in this process (the default) or on a Ray cluster.

A backend is the one step the job queue (:class:`jaxstyle.jobs.JobRunner`), the app's trainings
(:class:`jaxstyle.instant.background.Trainings`), instant runs (:mod:`jaxstyle.instant.run`) and
the CLI hand off: ``run`` optimizes one image, ``train`` trains an instant model, ``video`` paints
a video file and ``instant`` paints and scores one instant image. Everything around that stays in
the calling process whichever backend is used: the queue, positions, cancel requests and every
gallery write (the SQLite file lives on the app's host, and the app is its only writer). So the
pages never know which backend executes their work.

Backends are chosen in one table, :data:`BACKENDS`: a new one is one class (in a module of this
package) plus one entry, which says which addresses it serves.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from jaxstyle.errors import SettingsError
from jaxstyle.runners.local import InProcessBackend

if TYPE_CHECKING:
    from PIL import Image

    from jaxstyle import transfer
    from jaxstyle.instant import models
    from jaxstyle.instant.train import PhotoSource, TrainProgress, TrainSettings
    from jaxstyle.settings import TransferSettings
    from jaxstyle.weights import Weights

__all__ = ["BACKENDS", "RAY_ADDRESS_VARIABLE", "Backend", "BackendEntry", "InProcessBackend", "backend_for"]

RAY_ADDRESS_VARIABLE = "JAXSTYLE_RAY_ADDRESS"  # the app's backend: unset runs here, else on that Ray cluster
T = TypeVar("T")
WeightsLoader = Callable[[], "Weights"]


class Backend(Protocol):
    """What the job queue, the app's trainings and instant runs, and the CLI need of a place that
    executes their work."""

    name: str  # its key in BACKENDS

    def connect(self) -> int:
        """Get ready (at once if already ready); return how many runs can execute at the same time.

        Raises:
            ClusterError: the place can't be reached (a clear message, no traceback).
        """

    def run(
        self,
        content: Image.Image,
        styles: Sequence[Image.Image],
        settings: TransferSettings,
        report: Callable[[transfer.Iterate], bool],
        *,
        report_every: int,
        preview_every: int,
    ) -> transfer.TransferResult:
        """Optimize one run, calling ``report`` with each progress report (a True answer cancels it).

        Raises:
            Cancelled: ``report`` answered True.
            JaxstyleError: bad input, or (ClusterError) a cluster that failed the run.
        """

    def train(
        self,
        name: str,
        styles: Sequence[tuple[str, Image.Image]],
        photos: PhotoSource,
        settings: TrainSettings,
        report: Callable[[TrainProgress], bool | None] | None,
        *,
        gallery_path: str | os.PathLike | None,
        resume: bool = False,
        add_to: models.Model | None = None,
        start_from: models.Model | None = None,
        report_every: int = 10,
    ) -> models.Model:
        """Train the instant model ``name`` as :func:`jaxstyle.instant.train.train` does, its model
        file and checkpoints kept beside ``gallery_path`` (a True answer of ``report`` cancels it
        after a checkpoint). Returns the trained model.

        Raises:
            ModelError, Cancelled: as :func:`~jaxstyle.instant.train.train`.
            ClusterError: a cluster that failed the training (the checkpoints received stay here).
        """

    def video(
        self, prepared: Any, destination: Path, progress: Callable[[int, int], bool], *, gallery_path: Any = None
    ) -> Any:
        """Paint a prepared video (:class:`jaxstyle.video.run.PreparedVideo`) into ``destination``;
        ``progress(frames done, frames expected)`` answers True to cancel. Returns its
        :class:`~jaxstyle.video.files.VideoResult`; raises VideoError, Cancelled as in this process."""

    def instant(self, work: Callable[[Weights], T]) -> T:
        """Do a short piece of an instant run that needs the VGG19 weights (paint and score one
        image, or score it later): ``work(weights)``, with this backend's weights, where it
        executes. ``work`` must pickle to go to a cluster (a painter travels as its model).

        Raises:
            what ``work`` raises; ClusterError: a cluster that failed it.
        """

    def describe(self) -> str:
        """One line for the Home page and the CLI: where work executes."""

    def close(self) -> None:
        """Let go of what the backend holds (workers, connections)."""


@dataclasses.dataclass(frozen=True)
class BackendEntry:
    """One row of :data:`BACKENDS`: which addresses the backend serves, and how to make it."""

    serves: Callable[[str], bool]  # the address, stripped ("" for none)
    make: Callable[[str, WeightsLoader, int | None], Backend]  # (address, weights_loader, workers)


def _in_process(address: str, weights_loader: WeightsLoader, workers: int | None) -> Backend:
    return InProcessBackend(weights_loader)


def _ray(address: str, weights_loader: WeightsLoader, workers: int | None) -> Backend:
    from jaxstyle.runners.ray import RayBackend  # ray is imported only when a cluster is asked for

    return RayBackend(address, workers=workers)


# name -> entry. backend_for takes the first entry that serves the address.
BACKENDS: dict[str, BackendEntry] = {
    "in-process": BackendEntry(serves=lambda address: not address, make=_in_process),
    # ``auto``, ``HOST:PORT`` or ``ray://HOST:10001``; RayBackend refuses any other form.
    "ray": BackendEntry(serves=bool, make=_ray),
}


def default_weights_loader() -> Weights:
    from jaxstyle import weights

    return weights.load_weights(allow_fallback=True)


def backend_for(
    address: str | None,
    *,
    weights_loader: WeightsLoader | None = None,
    workers: int | None = None,
) -> Backend:
    """The backend of :data:`BACKENDS` that serves ``address``: the in-process backend (which
    loads its weights with ``weights_loader``) for None or an empty address, a Ray cluster for
    ``auto``, ``HOST:PORT`` or ``ray://HOST:10001`` (``workers`` actors on it). Nothing connects
    yet: see :meth:`Backend.connect`.

    Raises:
        SettingsError: an address that no backend serves, or that its backend refuses.
    """
    address = (address or "").strip()
    for entry in BACKENDS.values():
        if entry.serves(address):
            return entry.make(address, weights_loader or default_weights_loader, workers)
    raise SettingsError(f"no backend serves the address {address!r}")
