"""The Ray side of the Ray backend: :class:`StyleWorker`, the actor each worker process runs,
which loads the VGG19 weights once and keeps its compiled steps for the shapes it has seen.

It never writes a gallery: it streams progress reports, previews, checkpoint files and the final
result back to the app (:class:`jaxstyle.runners.ray.RayBackend`), whose process records them.
Errors travel as ``("error", class name, message)`` items, so the app raises them as its own.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ray

from jaxstyle import devices, errors, transfer
from jaxstyle.settings import TransferSettings

# Worker processes: JAX must not take all of a GPU's memory at start (it would by default).
WORKER_ENV = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}


class StyleWorker:
    """A Ray actor: optimizes runs, trains models, paints videos and instant images with weights
    loaded once (``max_concurrency=2``: ``cancel`` arrives while ``run`` streams)."""

    def __init__(self) -> None:
        from jaxstyle import transfer, weights

        # A new worker (one per CLI command, a restarted one) finds the steps its node compiled before.
        transfer.enable_compilation_cache()
        self._weights = weights.load_weights(allow_fallback=True)
        self._cancelled: set[str] = set()

    def ready(self) -> dict[str, Any]:
        """Who this worker is: process id, node, device and weights (answers once loaded)."""
        return {
            "pid": os.getpid(),
            "node": ray.util.get_node_ip_address(),
            "device": devices.description(),
            "weights": self._weights.source,
        }

    def cancel(self, token: str) -> None:
        self._cancelled.add(token)

    def _stream(self, token: str, work: Callable, between: Callable | None = None):
        """Run ``work(report)`` in a thread of its own (``stylize`` and ``train`` report through a
        callback) and yield what it reports: ``("progress", …)`` items, then the item it returns
        (``("result", …)``, ``("done",)``) or ``("error", class name, message)``. ``report``
        answers True once the app has cancelled ``token``. ``between()`` may give one more item to
        yield before each (new checkpoint files)."""
        reports: queue.Queue = queue.Queue()

        def report(progress: Any) -> bool:
            reports.put(("progress", progress))
            return token in self._cancelled

        def target() -> None:
            reports.put(_outcome(work, report))

        threading.Thread(target=target, name=f"work-{token}", daemon=True).start()
        try:
            while True:
                item = reports.get()
                extra = between() if between is not None else None
                if extra is not None:
                    yield extra
                yield item
                if item[0] != "progress":
                    return
        finally:
            self._cancelled.discard(token)

    def run(
        self,
        token: str,
        content: Any,
        styles: Sequence[Any],
        settings: TransferSettings,
        report_every: int,
        preview_every: int,
    ):
        """Yield ``("progress", Iterate)`` items, then ``("result", TransferResult)`` or
        ``("error", class name, message)``."""

        def work(report: Callable) -> tuple:
            result = transfer.stylize(
                content,
                list(styles),
                settings,
                self._weights,
                callback=report,
                report_every=report_every,
                preview_every=preview_every,
            )
            where = f"{result.device} on Ray node {ray.util.get_node_ip_address()}"
            return ("result", dataclasses.replace(result, device=where))

        yield from self._stream(token, work)

    def train(
        self,
        token: str,
        name: str,
        styles: Sequence[tuple[str, Any]],
        photos: Sequence[tuple[str, bytes]],
        settings: Any,
        files: dict[str, bytes],
        adding: bool,
        resume: bool,
        photos_label: str,
        report_every: int,
        start_from: Any = None,
    ):
        """Train an instant model in a folder of this worker's own, starting from ``files`` (the
        model and checkpoint the app holds, by suffix) or from the model ``start_from``. Yield
        ``("progress", TrainProgress)``, ``("files", {suffix: bytes})`` after each new checkpoint,
        then ``("done",)`` or ``("error", class name, message)``."""
        from jaxstyle.instant import models
        from jaxstyle.instant import train as training

        with tempfile.TemporaryDirectory(prefix="jaxstyle-train-") as folder:
            gallery_path = Path(folder) / "gallery.db"
            here = model_files(name, gallery_path)
            models.models_dir(gallery_path).mkdir(parents=True)
            for suffix, data in files.items():
                here[suffix].write_bytes(data)

            def work(report: Callable) -> tuple:
                training.train(
                    name, list(styles), list(photos), settings, self._weights, gallery_path=gallery_path,
                    resume=resume, add_to=models.read_model(here[models.MODEL_SUFFIX]) if adding else None,
                    start_from=start_from, callback=report, report_every=report_every, photos_label=photos_label,
                )  # fmt: skip
                return ("done",)

            def stamps() -> dict[str, int]:
                return {suffix: path.stat().st_mtime_ns for suffix, path in here.items() if path.exists()}

            seen = stamps()

            def new_files() -> tuple | None:
                """The model and checkpoint once both exist and either changed (checkpoints land
                between reports, so they are passed on before the next one)."""
                now = stamps()
                if now == seen or len(now) < len(here):
                    return None
                seen.clear()
                seen.update(now)
                return ("files", {suffix: here[suffix].read_bytes() for suffix in now})

            yield from self._stream(token, work, between=new_files)

    def instant(self, work: Callable[[Any], Any]) -> tuple:
        """Do ``work(weights)``, a piece of an instant run (:meth:`jaxstyle.runners.Backend.instant`):
        return ``("result", what it returns)`` or ``("error", class name, message)``."""
        return _outcome(lambda: ("result", work(self._weights)))

    def video(self, token: str, parcel: Any):
        """Paint a video parcel (:class:`jaxstyle.video.run.VideoParcel`) in a folder of this
        worker's own. Yield ``("progress", (done, expected))``, then ``("video", VideoResult
        without its file, the painted bytes)`` or ``("error", class name, message)``."""
        with tempfile.TemporaryDirectory(prefix="jaxstyle-video-") as folder:

            def work(report: Callable) -> tuple:
                result, data = parcel.paint(Path(folder), progress=lambda done, expected: report((done, expected)))
                return ("video", result, data)

            yield from self._stream(token, work)


def _outcome(work: Callable[..., tuple], *args: Any) -> tuple:
    """What ``work(*args)`` returns, or the error it raises as ``("error", class name, message)``."""
    try:
        return work(*args)
    except errors.JaxstyleError as error:
        return ("error", type(error).__name__, str(error))
    except Exception as error:  # noqa: BLE001 — sent to the app, which shows it
        return ("error", "RuntimeError", f"{type(error).__name__}: {error}")


def model_files(name: str, gallery_path: str | os.PathLike | None) -> dict[str, Path]:
    """A model's file and its checkpoint beside a gallery, by suffix."""
    from jaxstyle.instant import models

    return {
        models.MODEL_SUFFIX: models.model_path(name, gallery_path),
        models.CHECKPOINT_SUFFIX: models.checkpoint_path(name, gallery_path),
    }
