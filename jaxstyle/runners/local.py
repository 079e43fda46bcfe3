"""The in-process backend: work executes in the calling thread of this process (nothing to start)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from jaxstyle import devices, transfer

if TYPE_CHECKING:
    from jaxstyle.instant import models
    from jaxstyle.weights import Weights

T = TypeVar("T")


class InProcessBackend:
    """Executes in the calling thread (see :class:`jaxstyle.runners.Backend`). ``weights_loader``
    is asked for the weights each time: the job queue's loader loads them once and keeps them."""

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

    def train(self, name, styles, photos, settings, report, *, gallery_path, resume=False, add_to=None,
              start_from=None, report_every=10) -> models.Model:  # fmt: skip
        from jaxstyle.instant import train

        return train.train(
            name,
            list(styles),
            photos,
            settings,
            self._weights_loader(),
            gallery_path=gallery_path,
            resume=resume,
            add_to=add_to,
            start_from=start_from,
            callback=report,
            report_every=report_every,
        )

    def video(self, prepared, destination, progress, *, gallery_path=None) -> Any:
        from jaxstyle.video.run import paint_prepared

        return paint_prepared(prepared, destination, progress=progress)

    def instant(self, work: Callable[[Weights], T]) -> T:
        return work(self._weights_loader())

    def describe(self) -> str:
        return f"in this process ({devices.description()})"

    def close(self) -> None:
        pass
