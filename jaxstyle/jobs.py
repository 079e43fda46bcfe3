"""Background style-transfer runs: a bounded queue and worker threads that hand each run to a
backend (:mod:`jaxstyle.runners`: in this process by default, or a Ray cluster) and write its
progress (:class:`jaxstyle.runs.Progress`), result or failure to the gallery. The queue, positions
and every gallery write stay in this process whichever backend executes the runs.

Fair shares (a shared site, :mod:`jaxstyle.site`): each run remembers its owner, a signed-in user
under their :class:`~jaxstyle.site.UserLimits` can't have more than ``active_runs`` queued or
running, and free workers serve the owners in turn (:mod:`jaxstyle.shares`), so one
user's ten runs don't all wait ahead of another user's first. With one owner (personal mode) the
queue is plain first in, first out.

:meth:`JobRunner.submit` stores the inputs and a ``queued`` run in the gallery before it returns,
so a run outlives the browser tab that started it and always ends in the gallery (done, failed or
cancelled). Everything is keyed by run id: runs of different sessions never share images or
progress. Nothing here knows about Streamlit; pages poll :meth:`JobRunner.progress` (live, in
memory) or the gallery (for runs this process no longer follows).

Faults: the workers are supervised. Whatever escapes a run, even a ``BaseException`` such as
``SystemExit`` that ends its thread, marks that run failed with the reason, and a fresh worker
takes the dead one's place, so the queue goes on. An outcome the gallery can't take (a full
disk, a locked file) stays in memory, is shown by :meth:`JobRunner.progress`, and is written again
until it lands. A process killed outright leaves its runs queued/running in the gallery;
:func:`jaxstyle.gallery.connect` marks them failed, naming the dead pid, at the next open.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jaxstyle import images, inputs, runners, shares, site, transfer
from jaxstyle.errors import Cancelled, JaxstyleError, QueueFullError, SettingsError, VideoError
from jaxstyle.recorder import GalleryRecorder
from jaxstyle.runs import CANCELLED, DONE, FAILED, QUEUED, RUNNING, Progress
from jaxstyle.settings import TransferSettings

if TYPE_CHECKING:
    from jaxstyle.weights import Weights

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 1  # one run already keeps every CPU core busy
DEFAULT_MAX_QUEUED = 16
_LIMITS = {"workers": (1, 16), "max_queued": (1, 1000)}
_RETRY_RECORD_S = 5.0  # how often an outcome the gallery refused is written again


@dataclasses.dataclass
class _Job:
    run_id: int
    settings: TransferSettings
    content: Any  # PIL.Image.Image
    styles: list[Any]
    cancel: threading.Event = dataclasses.field(default_factory=threading.Event)
    video: Any = None  # a video run's jaxstyle.video.run.PreparedVideo (then content and styles are unused)
    delete_source: bool = False  # the video's file is the queue's to delete once the run ends
    owner: str | None = None  # the signed-in user who submitted it (None: personal mode)


def options_from_env(environ: Mapping[str, str] | None = None) -> dict[str, int]:
    """The runner's ``workers`` and ``max_queued`` from ``JAXSTYLE_WORKERS`` and ``JAXSTYLE_MAX_QUEUED``.

    Args:
        environ: the environment to read (default ``os.environ``).

    Returns:
        ``{"workers": …, "max_queued": …}``, defaults 1 and 16 where a variable is unset.

    Raises:
        SettingsError: a value is not a whole number in its range (workers 1–16, max_queued 1–1000).
    """
    environ = os.environ if environ is None else environ
    options = {}
    for name, default in (("workers", DEFAULT_WORKERS), ("max_queued", DEFAULT_MAX_QUEUED)):
        variable = f"JAXSTYLE_{name.upper()}"
        text = environ.get(variable, "").strip()
        low, high = _LIMITS[name]
        if not text:
            options[name] = default
            continue
        if not text.isdigit() or not low <= int(text) <= high:
            raise SettingsError(f"{variable} must be a whole number between {low} and {high}, got {text!r}")
        options[name] = int(text)
    return options


class JobRunner:
    """Runs style transfers one after another (or ``workers`` at a time) in daemon threads.

    Args:
        gallery_path: the SQLite gallery every run is written to.
        weights: VGG19 weights to use; if None they are loaded once, lazily, by the first run
            (with ``weights_loader``), so creating a runner is instant.
        weights_loader: how to load weights when ``weights`` is None; defaults to
            ``weights.load_weights(allow_fallback=True)``.
        backend: where runs execute (:func:`jaxstyle.runners.backend_for`); default in this process,
            with the weights above. A Ray cluster's workers load their own.
        workers: runs optimized at the same time. One suits a CPU (a run already uses every core);
            the app reads it from ``JAXSTYLE_WORKERS`` (see :func:`options_from_env`). A backend
            with more workers (a Ray cluster) gets one thread per worker once it is joined.
        max_queued: runs that may wait; :meth:`submit` refuses more with :class:`QueueFullError`
            (the app: ``JAXSTYLE_MAX_QUEUED``).
        report_every: steps between progress reports (each one updates memory and the gallery).
        preview_every: steps between preview images.
        keep_finished: finished runs whose last snapshot stays in memory.
    """

    def __init__(
        self,
        gallery_path: str | Path,
        *,
        weights: Weights | None = None,
        weights_loader: Callable[[], Weights] | None = None,
        backend: runners.Backend | None = None,
        workers: int = DEFAULT_WORKERS,
        max_queued: int = DEFAULT_MAX_QUEUED,
        report_every: int = 10,
        preview_every: int = 20,
        keep_finished: int = 64,
    ) -> None:
        if workers < 1 or max_queued < 1:
            raise SettingsError(f"workers and max_queued must be at least 1, got {workers} and {max_queued}")
        self.gallery_path = Path(gallery_path)
        self.max_queued = max_queued
        self.report_every = report_every
        self.preview_every = preview_every
        self._keep_finished = keep_finished
        self._weights = weights
        self._weights_loader = weights_loader or runners.default_weights_loader
        self.backend = backend or runners.InProcessBackend(self._load_weights)
        self._weights_lock = threading.Lock()
        self._cond = threading.Condition()
        self._pending: collections.deque[_Job] = collections.deque()
        self._active: dict[int, _Job] = {}
        self._served = 0  # runs handed to workers so far
        self._last_served: dict[str | None, int] = {}  # by owner: the value of _served when last handed one
        self._progress: dict[int, Progress] = {}
        self._finished_order: collections.deque[int] = collections.deque()
        self._unrecorded: dict[int, BaseException] = {}  # outcomes the gallery refused, by run id
        self._closing = False
        self._workers_started = 0
        self.worker_deaths = 0  # workers that died and were replaced (read-only, for status and tests)
        self._threads: list[threading.Thread] = []
        with self._cond:
            for _ in range(workers):
                self._start_worker()

    # ----- what pages call -------------------------------------------------------------------

    def submit(
        self,
        settings: TransferSettings,
        content: inputs.LoadedImage,
        styles: Sequence[inputs.LoadedImage],
        *,
        style_blend: Sequence[float] | None = None,
        title: str | None = None,
        group_id: str | None = None,
        tags: Sequence[str] = (),
        viewer: site.Viewer | None = None,
        limits: site.UserLimits | None = None,
    ) -> int:
        """Store the inputs and a queued run in the gallery, queue it, and return its id.

        Args:
            settings: the run's settings; ``style_blend`` here overrides ``settings.style_blend``.
            content: the content image.
            styles: one or more style images.
            style_blend: one weight per style image (None: the settings' blend, else equal).
            title, group_id, tags: stored with the run.
            viewer: who submits it (a shared site): the run and its inputs are stored as theirs,
                and they take their turn with the other users. None: personal mode, no owner.
            limits: the viewer's share, checked when the viewer is a signed-in user who is not an
                admin: runs at once, size and iterations.

        Raises:
            QueueFullError: ``max_queued`` runs are already waiting.
            LimitError: over the viewer's ``limits`` (nothing is stored).
            SettingsError: no style image, or a blend that doesn't match the styles.
            ClusterError: the Ray cluster the runs go to can't be reached.
        """
        if style_blend is not None:
            settings = settings.replace(style_blend=tuple(style_blend))
        settings.blend_for(len(styles))  # refused before it takes a place in the queue
        limited = shares.limited(viewer, limits)
        if limited:
            site.check_run(limits, viewer, size_px=settings.size_px, iterations=settings.iterations)
            shares.check_storage(self.gallery_path, viewer.subject, limits)
        slots = self.backend.connect()  # an unreachable cluster is refused here: nothing is stored
        owner = viewer.subject if viewer is not None else None
        job = _Job(0, settings, content.image, [style.image for style in styles], owner=owner)
        with self._cond:
            self._check_room()
            if limited:
                shares.check_active(owner, [*self._pending, *self._active.values()], limits)
            # Written while holding the lock so that two submits can't both take the last slot;
            # these are a few small inserts (and a check of each input image).
            recorder = GalleryRecorder.create(
                self.gallery_path,
                settings,
                content,
                styles,
                title=title,
                tags=tuple(tags),
                group_id=group_id,
                start=False,
                owner=owner,
            )
            job.run_id = recorder.run_id
            while len(self._threads) < slots:
                self._start_worker()
            self._pending.append(job)
            self._progress[job.run_id] = Progress(QUEUED, total_steps=settings.total_iterations(), run_id=job.run_id)
            self._cond.notify()
        return job.run_id

    def submit_video(
        self,
        prepared: Any,
        *,
        delete_source: bool = False,
        viewer: site.Viewer | None = None,
        limits: site.UserLimits | None = None,
    ) -> int:
        """Queue a video run (:func:`jaxstyle.video.run.prepare` has checked it): stored as a queued
        run now, painted in its turn like any run, its progress counted in frames. With
        ``delete_source`` the video's file (an upload saved for the run) is deleted when the run ends.
        ``viewer`` and ``limits`` as in :meth:`submit`; a limited user's video must also be no
        longer than ``limits.video_s``.

        A video refused while it is decoded (truncated, more frames than allowed) leaves no run.

        Raises:
            QueueFullError: ``max_queued`` runs are already waiting.
            LimitError: over the viewer's ``limits`` (nothing is stored).
        """
        from jaxstyle.video import run as video_run

        limited = shares.limited(viewer, limits)
        if limited:
            shares.check_video(prepared.info.duration_s, limits)
            shares.check_storage(self.gallery_path, viewer.subject, limits)
        expected = prepared.info.frames or round(prepared.info.duration_s * prepared.info.fps)
        slots = self.backend.connect()  # an unreachable cluster is refused here: nothing is stored
        owner = viewer.subject if viewer is not None else None
        job = _Job(0, prepared.settings, None, [], video=prepared, delete_source=delete_source, owner=owner)
        with self._cond:
            self._check_room()
            if limited:
                shares.check_active(owner, [*self._pending, *self._active.values()], limits)
            job.run_id = video_run.add_run(prepared, self.gallery_path, start=False, owner=owner).run_id
            while len(self._threads) < slots:
                self._start_worker()
            self._pending.append(job)
            self._progress[job.run_id] = Progress(QUEUED, total_steps=expected, run_id=job.run_id)
            self._cond.notify()
        return job.run_id

    def _check_room(self) -> None:
        """Refuse a new run when the queue is full or shut down (call with ``self._cond`` held)."""
        if self._closing:
            raise QueueFullError("the job runner has shut down; reload the app")
        if len(self._pending) >= self.max_queued:
            raise QueueFullError(
                f"{len(self._pending)} runs are already waiting (the limit is {self.max_queued}); "
                "wait for some to finish or cancel one"
            )

    def _serving_order(self) -> list[_Job]:
        """The waiting runs in the order the workers will take them, users in turn
        (:func:`jaxstyle.shares.serving_order`; call with ``self._cond`` held)."""
        return shares.serving_order(self._pending, self._last_served, self._served)

    def progress(self, run_id: int) -> Progress | None:
        """The latest snapshot of a run this runner took, or None (then read the gallery)."""
        with self._cond:
            return self._progress.get(run_id)

    def position(self, run_id: int) -> int | None:
        """0 while the run is optimizing, k ≥ 1 while k-1 runs wait before it, None otherwise."""
        with self._cond:
            if run_id in self._active:
                return 0
            for k, job in enumerate(self._serving_order(), start=1):
                if job.run_id == run_id:
                    return k
        return None

    def queued_ids(self) -> list[int]:
        """Ids of runs waiting, next first (owners take turns: see :meth:`_serving_order`)."""
        with self._cond:
            return [job.run_id for job in self._serving_order()]

    def active_ids(self) -> list[int]:
        """Ids of runs being optimized now."""
        with self._cond:
            return list(self._active)

    def cancel(self, run_id: int) -> bool:
        """Stop a run: a waiting one is dropped at once, a running one at its next report.

        Returns:
            True if the run was waiting or running here, False if it wasn't (e.g. finished).
        """
        with self._cond:
            if run_id in self._active:
                self._active[run_id].cancel.set()
                return True
            job = next((job for job in self._pending if job.run_id == run_id), None)
            if job is None:
                return False
            self._pending.remove(job)
        self._end(job, None, CANCELLED, Cancelled("cancelled before it started"))
        return True

    @property
    def weights(self) -> Weights | None:
        """The weights in use, once the first run has loaded them."""
        return self._weights

    def reset_weights(self) -> None:
        """Forget the loaded weights so the next run loads them again (e.g. after a download)."""
        with self._weights_lock:
            self._weights = None

    def shutdown(self, *, timeout_s: float | None = 10.0) -> None:
        """Cancel waiting and running runs, stop the workers and let go of the backend."""
        with self._cond:
            self._closing = True
            dropped = list(self._pending)
            self._pending.clear()
            for job in self._active.values():
                job.cancel.set()
            self._cond.notify_all()
        for job in dropped:
            self._end(job, None, CANCELLED, Cancelled("cancelled: the app shut down before it started"))
        with self._cond:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout_s)
        self._record_unrecorded()
        self.backend.close()

    # ----- the worker ------------------------------------------------------------------------

    def _start_worker(self) -> None:
        """Start one more worker thread (call with ``self._cond`` held)."""
        thread = threading.Thread(target=self._work, name=f"jaxstyle-worker-{self._workers_started}", daemon=True)
        self._workers_started += 1
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        """One worker's loop. It is supervised: whatever escapes a run, even a BaseException that
        ends this thread, fails that run with the reason, and another worker takes this one's place."""
        job: _Job | None = None
        try:
            while True:
                self._record_unrecorded()
                with self._cond:
                    if not self._pending and not self._closing:
                        # Wake up now and then while a refused outcome waits to be written again.
                        self._cond.wait(_RETRY_RECORD_S if self._unrecorded else None)
                    if self._closing:
                        return
                    if not self._pending:
                        continue
                    job = self._serving_order()[0]
                    self._pending.remove(job)
                    self._last_served[job.owner] = self._served
                    self._served += 1
                    self._active[job.run_id] = job
                try:
                    self._run(job)
                except Exception:  # noqa: BLE001 — a worker must survive anything a run does
                    log.exception("run %s: unexpected failure while recording its result", job.run_id)
                finally:
                    with self._cond:
                        self._active.pop(job.run_id, None)
                job = None
        except BaseException as error:  # noqa: BLE001 — SystemExit, KeyboardInterrupt, … end this thread
            self._worker_died(job, error)

    def _worker_died(self, job: _Job | None, error: BaseException) -> None:
        """Fail the run a dying worker held (unless it had ended) and start a replacement."""
        thread = threading.current_thread()
        log.error("worker %s died (%s)%s", thread.name, _describe(error), f" during run {job.run_id}" if job else "")
        if job is not None:
            with self._cond:
                self._active.pop(job.run_id, None)
                ended = self._progress.get(job.run_id)
            if ended is None or not ended.finished:
                reason = RuntimeError(
                    f"the worker running it stopped unexpectedly ({_describe(error)}); "
                    "a new worker has taken its place, so you can start the run again"
                )
                self._end(job, None, FAILED, reason)
        with self._cond:
            self._threads.remove(thread)
            self.worker_deaths += 1
            if not self._closing:
                self._start_worker()

    def load_weights(self) -> Weights:
        """The weights runs use, loaded now if no run has yet (for work beside the runs, e.g. an
        instant run or a training: they score with the same VGG19)."""
        return self._load_weights()

    def _load_weights(self) -> Weights:
        with self._weights_lock:
            if self._weights is None:
                self._weights = self._weights_loader()
            return self._weights

    def _run(self, job: _Job) -> None:
        if job.video is not None:
            try:
                self._run_video(job)
            finally:
                if job.delete_source:
                    Path(job.video.request.source).unlink(missing_ok=True)
            return
        recorder = GalleryRecorder(self.gallery_path, job.run_id)
        try:
            if job.cancel.is_set():
                raise Cancelled("cancelled before it started")
            recorder.start(job.settings)
            self._update(job.run_id, status=RUNNING, total_steps=job.settings.total_iterations())
            result = self.backend.run(
                job.content,
                job.styles,
                job.settings,
                _Reporter(self, job, recorder),
                report_every=self.report_every,
                preview_every=self.preview_every,
            )
        except Exception as error:  # noqa: BLE001 — each kind ends the run its own way (_stopped)
            self._stopped(job, recorder, error)
        else:
            try:
                recorder.finish(result)
            except Exception as error:  # noqa: BLE001 — e.g. a full disk; the run must still end
                log.exception("run %s: could not store its result", job.run_id)
                self._end(job, recorder, FAILED, RuntimeError(f"could not store the result: {error}"))
                return
            self._update(job.run_id, status=DONE, step=len(result.loss_history))
            self._retire(job.run_id)

    def _run_video(self, job: _Job) -> None:
        """Paint a video run where runs execute (this process, or a Ray worker), its progress in frames."""
        import tempfile

        from jaxstyle.video import run as video_run

        recorder = GalleryRecorder(self.gallery_path, job.run_id)
        prepared = job.video
        started = time.monotonic()

        def report(done: int, expected: int) -> bool:
            elapsed = time.monotonic() - started
            self._update(job.run_id, step=done, total_steps=max(expected, done), elapsed_s=elapsed,
                         its_per_s=done / elapsed if elapsed else 0.0)  # fmt: skip
            return job.cancel.is_set()

        try:
            if job.cancel.is_set():
                raise Cancelled("cancelled before it started")
            recorder.start(job.settings)
            self._update(job.run_id, status=RUNNING)
            with tempfile.TemporaryDirectory(prefix="jaxstyle-video-") as folder:
                destination = Path(folder) / "painted.mp4"
                result = self.backend.video(prepared, destination, report, gallery_path=self.gallery_path)
                video_run.finish_run(recorder, result)
        except Exception as error:  # noqa: BLE001 — each kind ends the run its own way (_stopped)
            self._stopped(job, recorder, error)
        else:
            self._update(job.run_id, status=DONE, step=result.frames, total_steps=result.frames)
            self._retire(job.run_id)

    def _stopped(self, job: _Job, recorder: GalleryRecorder, error: Exception) -> None:
        """End a run that raised ``error`` (call it in the ``except`` block): cancelled; a video
        refused while decoding (truncated, too many frames) leaves no run, like a refusal at upload;
        a user's error fails it with its message; anything else fails it as unexpected, logged in full."""
        if isinstance(error, Cancelled):
            self._end(job, recorder, CANCELLED, error)
        elif isinstance(error, VideoError):
            self._forget(job.run_id)
            self._update(job.run_id, status=FAILED, error=str(error))
            self._retire(job.run_id)
        elif isinstance(error, JaxstyleError):
            self._end(job, recorder, FAILED, error)
        else:
            log.exception("run %s failed", job.run_id)
            self._end(job, recorder, FAILED, RuntimeError(f"unexpected error: {type(error).__name__}: {error}"))

    def _forget(self, run_id: int) -> None:
        """Delete a run from the gallery (a video refused once decoding showed what it is)."""
        from jaxstyle import gallery

        try:
            with gallery.connect(self.gallery_path) as db:
                gallery.delete_run(db, run_id, force=True)
        except Exception:  # noqa: BLE001 — it stays as a failed run then, which says why
            log.exception("run %s: could not delete the refused video's run", run_id)
            GalleryRecorder(self.gallery_path, run_id).fail(RuntimeError("the video was refused"))

    def _end(self, job: _Job, recorder: GalleryRecorder | None, status: str, error: BaseException) -> None:
        """Record a failed or cancelled run in the gallery and in memory; never raises.

        If the gallery refuses the record (e.g. the disk is full), the outcome stays in memory and
        the workers write it again every few seconds, so the run never stays "running" there.
        """
        recorder = recorder or GalleryRecorder(self.gallery_path, job.run_id)
        try:
            recorder.fail(error)
        except Exception:  # noqa: BLE001
            log.exception("run %s: could not record that it %s; will try again", job.run_id, status)
            with self._cond:
                self._unrecorded[job.run_id] = error
                self._cond.notify()
        self._update(job.run_id, status=status, error=str(error) or status)
        self._retire(job.run_id)

    def _record_unrecorded(self) -> None:
        """Write again the failures the gallery refused before; keep those it still refuses."""
        with self._cond:
            waiting = dict(self._unrecorded)
        for run_id, error in waiting.items():
            try:
                GalleryRecorder(self.gallery_path, run_id).fail(error)
            except Exception:  # noqa: BLE001 — still full or locked: the next round tries again
                log.debug("run %s: its outcome still can't be recorded", run_id, exc_info=True)
                continue
            with self._cond:
                self._unrecorded.pop(run_id, None)

    def _update(self, run_id: int, **changes: Any) -> None:
        with self._cond:
            current = self._progress.get(run_id) or Progress(QUEUED, run_id=run_id)
            self._progress[run_id] = dataclasses.replace(current, **changes)

    def _retire(self, run_id: int) -> None:
        """Keep only the last ``keep_finished`` finished snapshots in memory."""
        with self._cond:
            self._finished_order.append(run_id)
            while len(self._finished_order) > self._keep_finished:
                self._progress.pop(self._finished_order.popleft(), None)


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class _Reporter:
    """The callback one run hands to ``stylize``: records each report, answers "cancel?"."""

    def __init__(self, runner: JobRunner, job: _Job, recorder: GalleryRecorder) -> None:
        self.runner = runner
        self.job = job
        self.recorder = recorder
        self.history: list[dict[str, float]] = []

    def __call__(self, iterate: transfer.Iterate) -> bool:
        losses = {name: float(value) for name, value in iterate.losses.items()}
        if self.history and iterate.step < self.history[-1]["step"]:
            self.history.clear()  # the run started over (its Ray worker died and it is tried again)
        self.history.append({"step": iterate.step, "size_px": iterate.size_px, **losses})
        changes: dict[str, Any] = {
            "step": iterate.step,
            "total_steps": iterate.total_steps,
            "size_px": iterate.size_px,
            "losses": losses,
            "elapsed_s": iterate.elapsed_s,
            "its_per_s": iterate.its_per_s,
            "history": tuple(self.history),
        }
        if iterate.preview is not None:
            changes["preview"] = images.png_bytes(iterate.preview)
        self.runner._update(self.job.run_id, **changes)
        try:
            self.recorder.progress(iterate)  # throttled: the gallery is shared by every session
        except Exception:  # noqa: BLE001 — a busy database must not stop the optimization
            log.warning("run %s: could not record progress", self.job.run_id, exc_info=True)
        return self.job.cancel.is_set()
