"""The Ray backend: work on a Ray cluster, one worker actor per GPU (or per CPU node)
(:class:`~jaxstyle.runners.ray_worker.StyleWorker`), with progress streamed back.

The app process stays the gallery's only writer: a worker returns progress reports, previews and
the final :class:`~jaxstyle.transfer.TransferResult` through a Ray streaming generator, and the
job queue in the app records them. jaxstyle's own code travels to the cluster with each worker
(``py_modules``), so a node needs only the packages of requirements.txt.

Faults: a worker process that dies in the middle of a run (a SIGKILL, the OOM killer, a lost node)
is restarted by Ray, and the run is tried once more from the start on it; a second death fails the
run with a message naming both. A cluster that can't be reached is one :class:`ClusterError`,
found before a run is stored (:mod:`jaxstyle.runners.ray_cluster`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import ray
import ray.exceptions

from jaxstyle import errors
from jaxstyle.errors import ClusterError
from jaxstyle.runners import ray_cluster
from jaxstyle.runners.ray_worker import WORKER_ENV, StyleWorker, model_files

if TYPE_CHECKING:
    from jaxstyle.instant import models
    from jaxstyle.instant.train import PhotoSource
    from jaxstyle.weights import Weights

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRY_CONNECT_S = 15.0  # a failed connection is tried again after this long, not on every page load
WORKER_START_S = 300.0  # a worker imports JAX and loads the weights; longer means no room for it
# Ray errors that mean the worker process (not the run) died: the run is tried once more.
WORKER_LOST = (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError, ray.exceptions.ObjectLostError)


def _token() -> str:
    """A name for one run or training, unique over the app's processes and threads (for cancel)."""
    return f"{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}"


def _remote_error(kind: str, message: str) -> Exception:
    """The error a worker reported, as the class it named (ours), else a RuntimeError."""
    from jaxstyle.instant import models

    error_class = getattr(errors, kind, None) or getattr(models, kind, None)
    if isinstance(error_class, type) and issubclass(error_class, errors.JaxstyleError):
        return error_class(message)
    return RuntimeError(message)


class RayBackend:
    """Runs on the Ray cluster at ``address``: ``auto``, ``HOST:PORT`` or ``ray://HOST:10001``.

    Args:
        address: the cluster to join (``JAXSTYLE_RAY_ADDRESS`` in the app, ``--ray-address`` in the CLI).
        workers: actors to start (default: one per GPU in the cluster, else one per node).
    """

    name = "ray"

    def __init__(self, address: str, *, workers: int | None = None) -> None:
        ray_cluster.ray_endpoint(address)  # a bad address is refused here, before anything connects
        self.address = address
        self._wanted = workers
        self._lock = threading.Lock()
        self._workers: list[Any] = []
        self._free: queue.Queue = queue.Queue()
        self._busy: list[Any] = []  # workers running a run now
        self._error: ClusterError | None = None
        self._error_at = 0.0
        self._started_ray = False
        self.retries = 0  # runs tried again after their worker died (read-only, for status and tests)
        self.runs_started = 0  # runs (tries included) handed to a worker
        self.gpus = 0

    # ----- connecting ---------------------------------------------------------------------------

    def connect(self) -> int:
        with self._lock:
            if self._workers:
                return len(self._workers)
            if self._error is not None and time.monotonic() - self._error_at < RETRY_CONNECT_S:
                raise self._error
            try:
                self._connect()
            except ClusterError as error:
                self._error, self._error_at = error, time.monotonic()
                raise
            self._error = None
            return len(self._workers)

    def _connect(self) -> None:
        if ray_cluster.join(self.address):
            self._started_ray = True
        resources = ray.cluster_resources()
        self.gpus = int(resources.get("GPU", 0))
        nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
        count = self._wanted or self.gpus or max(1, nodes)
        options: dict[str, Any] = {
            "max_restarts": -1,  # Ray starts a dead worker again; the run it held is tried once more
            "max_concurrency": 2,
            "scheduling_strategy": "SPREAD",
            "runtime_env": {"env_vars": WORKER_ENV},
        }
        if self.gpus:
            options.update(num_gpus=1, num_cpus=0)
        else:
            options.update(num_cpus=1)
        actor = ray.remote(StyleWorker)
        self._workers = [actor.options(**options).remote() for _ in range(count)]
        for worker in self._workers:
            self._free.put(worker)

    # ----- running ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _borrow(self):
        """A free worker for one run or training (waits for one), marked busy meanwhile."""
        worker = self._free.get()
        with self._lock:
            self._busy.append(worker)
        try:
            yield worker
        finally:
            with self._lock:
                self._busy.remove(worker)
            self._free.put(worker)

    def run(self, content, styles, settings, report, *, report_every=10, preview_every=20):
        self.connect()
        with self._borrow() as worker:
            first_death = None
            for attempt in (1, 2):
                try:
                    return self._run_on(worker, content, styles, settings, report, report_every, preview_every)
                except WORKER_LOST as error:
                    if attempt == 2:
                        raise ClusterError(
                            f"its Ray worker process died twice (killed, out of memory or crashed: "
                            f"{first_death}; then {_short(error)}); the other runs go on, start it again"
                        ) from None
                    first_death = _short(error)
                    self.retries += 1
                    log.warning("a Ray worker died during a run (%s); trying the run once more", first_death)
            raise AssertionError("unreachable")

    def _run_on(self, worker, content, styles, settings, report, report_every, preview_every):
        self._wait_ready(worker)
        token = _token()
        stream = worker.run.options(num_returns="streaming").remote(
            token, content, list(styles), settings, report_every, preview_every
        )
        self.runs_started += 1  # from here on, a worker's death shows on the stream
        for item in self._follow(worker, token, stream, report):
            if item[0] == "result":
                return item[1]
        raise ClusterError("the Ray worker ended the run without a result")

    def _follow(self, worker, token: str, stream, report: Callable[[Any], bool | None] | None):
        """The items of a worker's stream but progress (handed to ``report``, whose first True
        answer sends the cancel) and errors (raised as the class the worker named)."""
        cancel_sent = False
        for ref in stream:
            item = ray.get(ref)
            if item[0] == "progress":
                if report is not None and report(item[1]) and not cancel_sent:
                    worker.cancel.remote(token)
                    cancel_sent = True
            elif item[0] == "error":
                raise _remote_error(item[1], item[2])
            else:
                yield item

    def train(self, name, styles, photos, settings, report, *, gallery_path, resume=False, add_to=None,
              start_from=None, report_every=10) -> models.Model:  # fmt: skip
        """Train an instant model on a worker: the photos go there as bytes (the worker has no
        access to this disk; the model's record names them as here), and so do the model and
        checkpoint this gallery holds (to resume, or ``add_to`` this model). The checkpoints come
        back as they are written and are kept beside ``gallery_path`` (whole or not at all), so a
        resume continues here after anything. Returns the trained
        :class:`~jaxstyle.instant.models.Model`.

        Raises:
            ClusterError: the worker died (the checkpoints received so far stay).
            ModelError, Cancelled: as a training in this process.
        """
        from jaxstyle import files as file_io
        from jaxstyle.instant import models
        from jaxstyle.instant.train import describe_photos

        self.connect()
        here = model_files(name, gallery_path)
        start_files = {suffix: path.read_bytes() for suffix, path in here.items() if path.is_file()}
        token = _token()
        step = 0

        def on_progress(progress: Any) -> bool | None:
            nonlocal step
            step = progress.step
            return report(progress) if report is not None else None

        with self._borrow() as worker:
            self._wait_ready(worker)
            stream = worker.train.options(num_returns="streaming").remote(
                token, name, list(styles), _photo_bytes(photos), settings, start_files, add_to is not None, resume,
                describe_photos(photos), report_every, start_from,
            )  # fmt: skip
            try:
                for item in self._follow(worker, token, stream, on_progress):
                    if item[0] == "files":
                        here[models.MODEL_SUFFIX].parent.mkdir(parents=True, exist_ok=True)
                        for suffix in (models.CHECKPOINT_SUFFIX, models.MODEL_SUFFIX):  # as train() writes
                            file_io.atomic_write(here[suffix], item[1][suffix])
                    elif item[0] == "done":
                        return models.read_model(here[models.MODEL_SUFFIX])
            except WORKER_LOST as error:
                kept = (
                    models.read_checkpoint_meta(name, gallery_path).get("step")
                    if here[models.CHECKPOINT_SUFFIX].is_file()
                    else None
                )
                where = f"the checkpoint of step {kept} is kept here" if kept else "no checkpoint was written yet"
                raise ClusterError(
                    f"the Ray worker training {name} died near step {step} ({_short(error)}); {where}: "
                    "train again with --resume to continue from it"
                ) from None
            raise ClusterError("the Ray worker ended the training without a result")

    def instant(self, work: Callable[[Weights], T]) -> T:
        """Do ``work(weights)`` on a free worker (waits for one), with the worker's weights.

        Raises:
            ClusterError: the worker died (paint again).
        """
        self.connect()
        with self._borrow() as worker:
            self._wait_ready(worker)
            try:
                outcome = ray.get(worker.instant.remote(work))
            except WORKER_LOST as error:
                raise ClusterError(f"the Ray worker painting it died ({_short(error)}); paint it again") from None
        if outcome[0] == "error":
            raise _remote_error(outcome[1], outcome[2])
        return outcome[1]

    def video(self, prepared, destination, progress, *, gallery_path=None):
        """Paint a prepared video on a worker: the file and its inputs go there as bytes, the
        painted video comes back into ``destination``. A worker's death fails the run (a video is
        minutes of work at most; start it again)."""
        from jaxstyle import files as file_io
        from jaxstyle.video.run import VideoParcel

        self.connect()
        parcel = VideoParcel.of(prepared, gallery_path)
        token = _token()
        with self._borrow() as worker:
            self._wait_ready(worker)
            stream = worker.video.options(num_returns="streaming").remote(token, parcel)
            self.runs_started += 1
            try:
                for item in self._follow(worker, token, stream, lambda done_expected: progress(*done_expected)):
                    if item[0] == "video":
                        file_io.atomic_write(destination, item[2])
                        return dataclasses.replace(item[1], path=Path(destination))
            except WORKER_LOST as error:
                raise ClusterError(
                    f"the Ray worker painting the video died ({_short(error)}); start it again"
                ) from None
        raise ClusterError("the Ray worker ended the video without a result")

    def _wait_ready(self, worker) -> None:
        """Wait for a worker to answer: at its start, and while Ray restarts one that died."""
        deadline = time.monotonic() + WORKER_START_S
        while True:
            try:
                ray.get(worker.ready.remote(), timeout=max(0.1, deadline - time.monotonic()))
                return
            except ray.exceptions.ActorUnavailableError:  # restarting: ask again shortly
                if time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            except ray.exceptions.GetTimeoutError:
                break
        raise ClusterError(
            f"no Ray worker started within {WORKER_START_S:.0f} s: does the cluster have a free "
            f"{'GPU' if self.gpus else 'CPU'} for each of its {len(self._workers)} workers?"
        )

    # ----- status -------------------------------------------------------------------------------

    def worker_info(self, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        """Each worker's process id, node, device and weights (waits for them to start)."""
        self.connect()
        return ray.get([worker.ready.remote() for worker in self._workers], timeout=timeout_s)

    def busy_worker_pids(self, timeout_s: float = 30.0) -> list[int]:
        """Process ids of the workers running a run now (to follow, or to kill in a test)."""
        with self._lock:
            busy = list(self._busy)
        return [info["pid"] for info in ray.get([worker.ready.remote() for worker in busy], timeout=timeout_s)]

    def describe(self) -> str:
        if self._error is not None:
            return f"Ray cluster at {self.address}: {self._error}"
        if not self._workers:
            return f"Ray cluster at {self.address} (not joined yet)"
        kind = f"{self.gpus} GPU(s)" if self.gpus else "CPU nodes"
        return f"Ray cluster at {self.address}: {len(self._workers)} worker(s) on {kind}"

    def close(self) -> None:
        with self._lock:
            workers, self._workers = self._workers, []
            self._free = queue.Queue()
            for worker in workers:
                try:
                    ray.kill(worker)
                except Exception:  # noqa: BLE001 — already gone
                    log.debug("could not kill a Ray worker", exc_info=True)
            if self._started_ray and ray.is_initialized():
                ray.shutdown()
                self._started_ray = False


def _photo_bytes(source: PhotoSource) -> list[tuple[str, bytes]]:
    """Training photos as (name, bytes), to send to a worker (it has no access to this disk)."""
    from jaxstyle.instant.train import photo_files

    if isinstance(source, (str, os.PathLike)):
        return [(path.name, path.read_bytes()) for path in photo_files(source)]
    return list(source)


def _short(error: BaseException) -> str:
    text = str(error).split("\n")[0].split(":")[0]
    return f"{type(error).__name__}: {text[:80]}"
