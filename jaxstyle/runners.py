"""Where a run's optimization executes: in this process (the default) or on a Ray cluster.

A runner is the one step the job queue (:class:`jaxstyle.jobs.JobRunner`) and the CLI hand off:
``run(content, styles, settings, report)`` optimizes and returns a
:class:`~jaxstyle.transfer.TransferResult`, calling ``report`` with each progress report (a True
answer cancels the run); ``video(prepared, destination, progress)`` paints a video file.
Everything around it stays in the calling process whichever runner is used: the queue, positions,
cancel requests and every gallery write (the SQLite file lives on the app's host, and the app is
its only writer). So the pages never know which runner runs.

Runners are chosen in one table, :data:`RUNNERS`: a new one is one class plus one entry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from jaxstyle import devices, transfer
from jaxstyle.settings import TransferSettings

if TYPE_CHECKING:
    from PIL import Image

    from jaxstyle.weights import Weights

RAY_ADDRESS_VARIABLE = "JAXSTYLE_RAY_ADDRESS"
Report = Callable[[transfer.Iterate], bool]


class Runner(Protocol):
    """What the job queue and the CLI need of a place that runs optimizations."""

    name: str

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
        report: Report,
        *,
        report_every: int,
        preview_every: int,
    ) -> transfer.TransferResult:
        """Optimize one run; raises Cancelled when ``report`` answered True, JaxstyleError on bad input."""

    def video(
        self, prepared: Any, destination: Path, progress: Callable[[int, int], bool], *, gallery_path: Any = None
    ) -> Any:
        """Paint a prepared video (:class:`jaxstyle.video.run.PreparedVideo`) into ``destination``;
        ``progress(frames done, frames expected)`` answers True to cancel. Returns its
        :class:`~jaxstyle.video.files.VideoResult`; raises VideoError, Cancelled as in this process."""

    def describe(self) -> str:
        """One line for the Home page and the CLI: where runs execute."""

    def close(self) -> None:
        """Let go of what the runner holds (workers, connections)."""


class InProcessRunner:
    """Runs in the calling thread of this process (nothing to start). ``weights_loader`` is asked
    for the weights at each run: the job queue's loader loads them once and keeps them."""

    name = "in-process"

    def __init__(self, weights_loader: Callable[[], Weights]) -> None:
        self._weights_loader = weights_loader

    def connect(self) -> int:
        return 1  # one run already keeps every CPU core busy; JAXSTYLE_WORKERS asks for more

    def run(self, content, styles, settings, report, *, report_every=10, preview_every=20):
        return transfer.stylize(
            content,
            list(styles),
            settings,
            self._weights_loader(),
            callback=report,
            report_every=report_every,
            preview_every=preview_every,
        )

    def video(self, prepared, destination, progress, *, gallery_path=None):
        from jaxstyle.video.run import paint_prepared

        return paint_prepared(prepared, destination, progress=progress)

    def describe(self) -> str:
        return f"in this process ({devices.description()})"

    def close(self) -> None:
        pass


def _ray_runner(address: str, weights_loader: Callable[[], Weights], workers: int | None) -> Runner:
    from jaxstyle.ray_runner import RayRunner  # ray is imported only when a cluster is asked for

    return RayRunner(address, workers=workers)


def _in_process(address: str, weights_loader: Callable[[], Weights], workers: int | None) -> Runner:
    return InProcessRunner(weights_loader)


# name -> factory(address, weights_loader, workers). The address picks the entry (see runner_for).
RUNNERS: dict[str, Callable[[str, Callable[[], Weights], int | None], Runner]] = {
    "in-process": _in_process,
    "ray": _ray_runner,
}


def default_weights_loader() -> Weights:
    from jaxstyle import weights

    return weights.load_weights(allow_fallback=True)


def runner_for(
    address: str | None,
    *,
    weights_loader: Callable[[], Weights] | None = None,
    workers: int | None = None,
) -> Runner:
    """The runner for a Ray address (``auto``, ``HOST:PORT``, ``ray://HOST:10001``), or the
    in-process runner for None or an empty address. Nothing connects yet: see ``Runner.connect``.

    Raises:
        SettingsError: an address that is none of those forms.
    """
    address = (address or "").strip()
    loader = weights_loader or default_weights_loader
    if not address:
        return RUNNERS["in-process"](address, loader, workers)
    return RUNNERS["ray"](address, loader, workers)
