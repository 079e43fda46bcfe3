"""Runs on a Ray cluster: one actor per GPU (or per CPU node) that loads the VGG19 weights once and
keeps its compiled steps for the shapes it has seen, with progress streamed back.

The app process stays the gallery's only writer: a worker returns progress reports, previews and
the final :class:`~jaxstyle.transfer.TransferResult` through a Ray streaming generator, and the
job queue in the app records them. jaxstyle's own code travels to the cluster with each worker
(``py_modules``), so a node needs only the packages of requirements.txt.

Faults: a worker process that dies in the middle of a run (a SIGKILL, the OOM killer, a lost node)
is restarted by Ray, and the run is tried once more from the start on it; a second death fails the
run with a message naming both. A cluster that can't be reached is one :class:`ClusterError`,
found before a run is stored (a quick TCP check first, so a wrong address never hangs).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ray
import ray.exceptions

import jaxstyle
from jaxstyle import devices, errors, transfer
from jaxstyle.errors import ClusterError, SettingsError
from jaxstyle.settings import TransferSettings

log = logging.getLogger(__name__)

NAMESPACE = "jaxstyle"
CONNECT_CHECK_S = 3.0  # a TCP connect to the head that takes longer means nothing is there
RETRY_CONNECT_S = 15.0  # a failed connection is tried again after this long, not on every page load
WORKER_START_S = 300.0  # a worker imports JAX and loads the weights; longer means no room for it
TOKEN_FILE = Path.home() / ".ray" / "auth_token"
# Worker processes: JAX must not take all of a GPU's memory at start (it would by default).
WORKER_ENV = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
# Ray errors that mean the worker process (not the run) died: the run is tried once more.
WORKER_LOST = (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError, ray.exceptions.ObjectLostError)


class StyleWorker:
    """A Ray actor: optimizes runs with weights loaded once (``max_concurrency=2``: ``cancel``
    arrives while ``run`` streams)."""

    def __init__(self) -> None:
        from jaxstyle import weights

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
            try:
                reports.put(work(report))
            except errors.JaxstyleError as error:
                reports.put(("error", type(error).__name__, str(error)))
            except Exception as error:  # noqa: BLE001 — sent to the app, which shows it
                reports.put(("error", "RuntimeError", f"{type(error).__name__}: {error}"))

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
            here = _model_files(name, gallery_path)
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

    def video(self, token: str, parcel: Any):
        """Paint a video parcel (:class:`jaxstyle.video.run.VideoParcel`) in a folder of this
        worker's own. Yield ``("progress", (done, expected))``, then ``("video", VideoResult
        without its file, the painted bytes)`` or ``("error", class name, message)``."""
        with tempfile.TemporaryDirectory(prefix="jaxstyle-video-") as folder:

            def work(report: Callable) -> tuple:
                result, data = parcel.paint(Path(folder), progress=lambda done, expected: report((done, expected)))
                return ("video", result, data)

            yield from self._stream(token, work)


def _model_files(name: str, gallery_path: str | os.PathLike | None) -> dict[str, Path]:
    """A model's file and its checkpoint beside a gallery, by suffix."""
    from jaxstyle.instant import models

    return {
        models.MODEL_SUFFIX: models.model_path(name, gallery_path),
        models.CHECKPOINT_SUFFIX: models.checkpoint_path(name, gallery_path),
    }


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


def ray_endpoint(address: str) -> tuple[str, int] | None:
    """The head's (host, port) of a Ray address, or None for ``auto`` (found from this machine).

    Raises:
        SettingsError: an address that is not ``auto``, ``HOST:PORT`` or ``ray://HOST[:PORT]``.
    """
    if address == "auto":
        return None
    rest = address.removeprefix("ray://")
    host, _, port = rest.rpartition(":")
    if address.startswith("ray://") and not port.isdigit():
        host, port = rest, "10001"
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in host:
        raise SettingsError(
            f"a Ray address is 'auto', HOST:PORT (e.g. 10.0.0.5:6379) or ray://HOST:10001, got {address!r}"
        )
    return host, int(port)


def _check_reachable(address: str) -> None:
    endpoint = ray_endpoint(address)
    if endpoint is None:
        return
    try:
        socket.create_connection(endpoint, timeout=CONNECT_CHECK_S).close()
    except OSError as error:
        raise ClusterError(
            f"no Ray cluster answers at {address} ({error.strerror or error}): start one with "
            "`ray start --head` on that host, or fix JAXSTYLE_RAY_ADDRESS / --ray-address"
        ) from None


def use_token_if_there() -> None:
    """``ray start --head`` turns on token authentication when its machine has a token (Ray 2.60:
    ``~/.ray/auth_token``, which a first local ``ray.init()`` creates, or ``RAY_AUTH_TOKEN_PATH``),
    and a driver that names the address must then say so (``RAY_AUTH_MODE=token``): do it for the
    user when this machine has a token.

    Ray reads the variable when it is imported, so it is told to read its settings again.
    """
    token_path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    has_token = os.environ.get("RAY_AUTH_TOKEN") or Path(token_path or TOKEN_FILE).is_file()
    if "RAY_AUTH_MODE" in os.environ or not has_token:
        return
    os.environ["RAY_AUTH_MODE"] = "token"
    try:
        from ray._raylet import AuthenticationTokenLoader, Config

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()
    except Exception:  # noqa: BLE001 — a private API; without it a named address asks for the variable
        log.debug("could not make Ray read RAY_AUTH_MODE again", exc_info=True)


class RayRunner:
    """Runs on the Ray cluster at ``address``: ``auto``, ``HOST:PORT`` or ``ray://HOST:10001``.

    Args:
        address: the cluster to join (``JAXSTYLE_RAY_ADDRESS`` in the app, ``--ray-address`` in the CLI).
        workers: actors to start (default: one per GPU in the cluster, else one per node).
    """

    name = "ray"

    def __init__(self, address: str, *, workers: int | None = None) -> None:
        ray_endpoint(address)  # a bad address is refused here, before anything connects
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
        _check_reachable(self.address)
        if not ray.is_initialized():
            use_token_if_there()
            try:
                ray.init(
                    address=self.address,
                    namespace=NAMESPACE,
                    # jaxstyle's code goes to the cluster with this job (Ray only uploads at this level)
                    runtime_env={"py_modules": [str(Path(jaxstyle.__file__).parent)]},
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                )
            except Exception as error:  # noqa: BLE001 — ConnectionError, RuntimeError, …: one clear line
                if ray.is_initialized():
                    ray.shutdown()
                hint = (
                    "it may ask for a token: copy ~/.ray/auth_token from the head to this machine "
                    "(or set RAY_AUTH_TOKEN) and set RAY_AUTH_MODE=token"
                    if "auth" in str(error).lower() or ray_endpoint(self.address) is not None
                    else "is `ray start --head` running on this machine?"
                )
                reason = str(error).strip().rstrip(".")
                raise ClusterError(f"could not join the Ray cluster at {self.address}: {reason}; {hint}") from None
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

    def train(
        self,
        name: str,
        styles: Sequence[tuple[str, Any]],
        photos: Sequence[tuple[str, bytes]],
        settings: Any,
        *,
        gallery_path: str | os.PathLike | None,
        adding: bool = False,
        resume: bool = False,
        photos_label: str = "",
        report: Callable[[Any], bool | None] | None = None,
        report_every: int = 10,
        start_from: Any = None,
    ) -> Any:
        """Train an instant model on a worker (from the model ``start_from``, if given); its
        checkpoints come back as they are written and are kept beside ``gallery_path`` (whole or
        not at all), so ``--resume`` continues here after anything. Returns the trained
        :class:`~jaxstyle.instant.models.Model`.

        Raises:
            ClusterError: the worker died (the checkpoints received so far stay).
            ModelError, Cancelled: as a training in this process.
        """
        from jaxstyle import files as file_io
        from jaxstyle.instant import models

        self.connect()
        here = _model_files(name, gallery_path)
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
                token, name, list(styles), list(photos), settings, start_files, adding, resume, photos_label,
                report_every, start_from,
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


def _short(error: BaseException) -> str:
    text = str(error).split("\n")[0].split(":")[0]
    return f"{type(error).__name__}: {text[:80]}"


def _ray_command() -> list[str]:
    beside_python = Path(sys.executable).with_name("ray")
    return [str(beside_python) if beside_python.exists() else shutil.which("ray") or "ray"]


def start_local_head(*, num_cpus: int, temp_dir: str, env: dict[str, str] | None = None) -> str:
    """Start a Ray head on 127.0.0.1 (for tests and benchmarks: nothing leaves this machine) and
    return its address, ``127.0.0.1:PORT``. ``temp_dir`` must be short (Ray's socket paths)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        *_ray_command(),
        "start",
        "--head",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        f"--num-cpus={num_cpus}",
        "--num-gpus=0",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--object-store-memory={100 * 2**20}",
        f"--temp-dir={temp_dir}",
    ]
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=180)
    return f"127.0.0.1:{port}"


def stop_local_heads() -> None:
    """Stop the Ray processes of this machine (``ray stop --force``), after leaving the cluster."""
    if ray.is_initialized():
        ray.shutdown()
    subprocess.run([*_ray_command(), "stop", "--force"], capture_output=True, timeout=120)
