"""Faults, tried for real: through the job runner and the gallery, in this process and in a child
process that is killed. Hostile input (URLs, files, settings, the app's refusals) is test_hostile_input.py.

What test_gallery.py and test_jobs.py already prove is not repeated here; this file adds what they
leave open (docs/limits.md's "Faults" table maps every case): a worker thread killed mid-run, a
process killed mid-run, a full disk and a gallery made read-only mid-run, and a weights download
killed halfway.

The disk is made full by SQLite itself (``PRAGMA max_page_count``), which raises its real
SQLITE_FULL; the weights come from a real server on 127.0.0.1.
"""

from __future__ import annotations

import ctypes
import hashlib
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from jaxstyle import gallery, images, inputs, weights
from jaxstyle.errors import GalleryError
from jaxstyle.jobs import JobRunner
from tests.support import (
    LONG,
    REPO,
    TINY,
    RoutedHandler,
    encode,
    get_run,
    local_http_server,
    seed_run,
    subprocess_env,
    wait_until,
)

pytestmark = pytest.mark.timeout(300)


# ----- helpers ----------------------------------------------------------------------------------


def integrity(path: Path) -> str:
    with gallery.connect(path) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def without_file_permission_override(command: list[str]) -> list[str]:
    """Root writes anywhere: drop the capabilities that let it ignore file permissions."""
    if os.geteuid() == 0:
        return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--", *command]
    return command


# ----- a weights server on 127.0.0.1 -------------------------------------------------------------


class WeightsHandler(RoutedHandler):
    def routes(self):
        return {
            "/slow-weights": self.slow_weights,
            "/weights": lambda: self.send_body(WEIGHTS_BODY, "application/octet-stream"),
        }

    def slow_weights(self) -> None:
        # Announces the whole file, then sends it slowly: a download that a kill can interrupt.
        self.send_response(200)
        self.send_header("Content-Length", str(len(WEIGHTS_BODY)))
        self.end_headers()
        try:
            for start in range(0, len(WEIGHTS_BODY), 16384):
                self.wfile.write(WEIGHTS_BODY[start : start + 16384])
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass


WEIGHTS_BODY = bytes(range(256)) * 8192  # 2 MB standing in for the weight file
WEIGHTS_MD5 = hashlib.md5(WEIGHTS_BODY).hexdigest()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with local_http_server(WeightsHandler) as url:
        yield url


# ----- faults: a worker dies ---------------------------------------------------------------------


def kill_thread(thread: threading.Thread, exception: type[BaseException] = SystemExit) -> None:
    """Raise ``exception`` inside another thread, as CPython does for a KeyboardInterrupt.

    It lands at the thread's next Python instruction: between two compiled steps, in the middle of
    whatever the run is doing. It is the nearest thing to killing a thread from outside.
    """
    hit = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(exception))
    assert hit == 1, "the thread was not found"


@pytest.fixture
def loaded(shared_data) -> tuple[inputs.LoadedImage, inputs.LoadedImage]:
    return (
        inputs.load_source(str(shared_data / "content" / "tubingen.jpg")),
        inputs.load_source(str(shared_data / "styles" / "starry_night.jpg")),
    )


def test_a_worker_killed_mid_run_fails_that_run_with_the_reason_and_the_queue_goes_on(
    gallery_path, fallback_weights, loaded
):
    workers_seen: list[threading.Thread] = []

    def load_weights():  # runs in the worker thread: tells the test which thread that is
        workers_seen.append(threading.current_thread())
        return fallback_weights

    content, style = loaded
    runner = JobRunner(gallery_path, weights_loader=load_weights, report_every=1)
    try:
        victim = runner.submit(LONG, content, [style])
        after = runner.submit(TINY, content, [style])
        wait_until(lambda: runner.progress(victim).step >= 2, what="the run to be under way")
        kill_thread(workers_seen[0])

        wait_until(lambda: runner.progress(victim).finished, what="the killed run to be marked")
        progress = runner.progress(victim)
        assert progress.status == "failed"
        assert progress.error.startswith("the worker running it stopped unexpectedly (SystemExit)")
        run = get_run(gallery_path, victim)
        assert (run.status, run.error) == ("failed", progress.error)
        assert run.step >= 1  # what it did is kept (progress is written at most once a second)

        wait_until(lambda: runner.progress(after).finished, what="the next run to end")
        assert get_run(gallery_path, after).status == "done"  # a new worker took over
        assert runner.worker_deaths == 1
        assert not workers_seen[0].is_alive()
    finally:
        runner.shutdown()


def test_a_base_exception_from_a_run_fails_it_and_a_new_worker_takes_over(gallery_path, fallback_weights, loaded):
    calls = []

    def load_weights():
        calls.append(threading.current_thread())
        if len(calls) == 1:
            raise KeyboardInterrupt  # not an Exception: escapes the run's own handling
        return fallback_weights

    content, style = loaded
    runner = JobRunner(gallery_path, weights_loader=load_weights)
    try:
        first = runner.submit(TINY, content, [style])
        second = runner.submit(TINY, content, [style])
        wait_until(lambda: runner.progress(second).finished, what="the second run to end")
        assert runner.progress(first).status == "failed"
        assert "KeyboardInterrupt" in get_run(gallery_path, first).error
        assert get_run(gallery_path, second).status == "done"
        assert calls[0] is not calls[1]  # the second ran on the replacement worker
        assert runner.worker_deaths == 1
    finally:
        runner.shutdown()


# A child process's runner, up to a first run finished (what the killed process and the read-only
# gallery keep intact); the script goes on from there.
RUNNER_WITH_A_FINISHED_RUN = """
import sys, time
from jaxstyle import gallery, inputs, weights
from jaxstyle.jobs import JobRunner
from jaxstyle.settings import TransferSettings

path, content, style = sys.argv[1:4]
runner = JobRunner(path, weights=weights.load_weights(), report_every=1)
content, style = inputs.load_source(content), inputs.load_source(style)
finished = runner.submit(TransferSettings(size_px=32, iterations=2), content, [style])
while not runner.progress(finished).finished:
    time.sleep(0.05)
"""

KILLED_PROCESS = (
    RUNNER_WITH_A_FINISHED_RUN
    + """
running = runner.submit(TransferSettings(size_px=32, iterations=5000), content, [style])
waiting = runner.submit(TransferSettings(size_px=32, iterations=2), content, [style])
while runner.progress(running).step < 2:
    time.sleep(0.05)
print(finished, running, waiting, flush=True)
time.sleep(300)
"""
)


def test_a_process_killed_mid_run_leaves_its_runs_failed_naming_it_and_earlier_runs_intact(
    gallery_path, warm_cache_dir, fallback_weights, content_path, style_path
):
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_PROCESS, str(gallery_path), str(content_path), str(style_path)],
        env=subprocess_env(JAXSTYLE_CACHE_DIR=str(warm_cache_dir)), stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        finished, running, waiting = (int(word) for word in process.stdout.readline().split())
        assert get_run(gallery_path, running).status == "running"  # its process lives: left alone
        image_before = _image(gallery_path, finished)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        process.stdout.close()
    killed = f"the process that ran it (pid {process.pid} on {socket.gethostname()}) ended before it finished"
    run = get_run(gallery_path, running)
    assert (run.status, run.error) == ("failed", f"interrupted: {killed}")
    assert run.step >= 1  # what it did is kept
    assert get_run(gallery_path, waiting).status == "failed"  # queued there: it will never run
    assert get_run(gallery_path, finished).status == "done"
    assert _image(gallery_path, finished) == image_before
    assert integrity(gallery_path) == "ok"


def _image(path: Path, run_id: int) -> bytes:
    with gallery.connect(path) as db:
        data = gallery.run_image(db, run_id)
    Image.open(io.BytesIO(data)).load()  # decodes in full
    return data


# ----- faults: the disk is full, the gallery is read-only ----------------------------------------


def fill_the_disk(db) -> None:
    """Let this connection's file grow no more: SQLite then fails writes with its real SQLITE_FULL."""
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")


def test_a_full_disk_is_named_and_earlier_runs_stay_intact(gallery_path, shared_data):
    earlier = seed_run(gallery_path, shared_data)
    image_before = _image(gallery_path, earlier)
    big_png = encode(Image.effect_noise((128, 128), 64).convert("RGB"), "PNG")  # incompressible: new pages
    with gallery.connect(gallery_path) as db:
        sha = gallery.store_image(db, images.png_bytes(Image.new("RGB", (8, 8))), origin_kind="upload", origin="a")
        run_id = gallery.add_run(db, TINY.to_dict(), content_sha=sha, style_shas=[sha])
        gallery.start_run(db, run_id, total_steps=2)
        fill_the_disk(db)
        with pytest.raises(GalleryError) as raised:
            gallery.finish_run(
                db, run_id, image_png=big_png, initial_losses={}, final_losses={}, loss_history=[],
                compile_s=0, run_s=0, device="cpu", weights_source="random-fallback",
            )  # fmt: skip
        assert str(raised.value) == f"cannot write {gallery_path}: the disk is full"
        with pytest.raises(GalleryError, match="the disk is full"):
            gallery.store_image(db, big_png, origin_kind="upload", origin="b.png")
    run = get_run(gallery_path, run_id)
    assert (run.status, run.has_image) == ("running", False)  # no half-finished run
    assert _image(gallery_path, earlier) == image_before
    assert integrity(gallery_path) == "ok"


@pytest.fixture
def small_disk(monkeypatch) -> threading.Event:
    """While the returned event is set, every gallery connection the app opens finds the disk full."""
    full = threading.Event()
    real_connect = gallery.connect

    def connect(path=None, **kwargs):
        db = real_connect(path, **kwargs)
        if full.is_set():
            fill_the_disk(db)
        return db

    monkeypatch.setattr(gallery, "connect", connect)
    return full


def test_a_full_disk_fails_the_run_with_the_cause_and_the_runner_goes_on(
    gallery_path, fallback_weights, loaded, small_disk, shared_data
):
    content, style = loaded
    runner = JobRunner(gallery_path, weights=fallback_weights, report_every=1, preview_every=1)
    try:
        earlier = runner.submit(TINY, content, [style])
        wait_until(lambda: runner.progress(earlier).finished, what="the first run")
        image_before = _image(gallery_path, earlier)

        doomed = runner.submit(TINY.replace(size_px=96), content, [style])  # its result needs new pages
        small_disk.set()
        wait_until(lambda: runner.progress(doomed).finished, what="the run on a full disk to end")
        progress = runner.progress(doomed)
        assert progress.status == "failed"
        assert progress.error == f"could not store the result: cannot write {gallery_path}: the disk is full"

        # New inputs can't be stored either: the submit says why and queues nothing.
        other = inputs.load_source(str(shared_data / "content" / "chicago.jpg"))
        with pytest.raises(GalleryError, match="the disk is full"):
            runner.submit(TINY, other, [style])
        assert runner.queued_ids() == []

        small_disk.clear()  # space again: the failure is in the gallery, and the next run works
        wait_until(lambda: get_run(gallery_path, doomed).status == "failed", what="the failure to be recorded")
        assert get_run(gallery_path, doomed).error == progress.error
        after = runner.submit(TINY, other, [style])
        wait_until(lambda: runner.progress(after).finished, what="the run after the full disk")
        assert get_run(gallery_path, after).status == "done"
    finally:
        runner.shutdown()
    assert _image(gallery_path, earlier) == image_before
    assert integrity(gallery_path) == "ok"


READ_ONLY_MID_RUN = (
    RUNNER_WITH_A_FINISHED_RUN
    + """
run = runner.submit(TransferSettings(size_px=32, iterations=300), content, [style])
while runner.progress(run).step < 1:
    time.sleep(0.05)
print(finished, run, flush=True)
sys.stdin.readline()  # meanwhile the test makes the gallery file read-only
while not runner.progress(run).finished:
    time.sleep(0.05)
print(runner.progress(run).status, "|", runner.progress(run).error, flush=True)
sys.stdin.readline()  # meanwhile the test makes it writable again
while True:  # the runner writes the refused outcome again, every few seconds
    with gallery.connect(path) as db:
        if gallery.get_run(db, run).status != "running":
            break
    time.sleep(0.2)
runner.shutdown()
"""
)


def test_a_gallery_made_read_only_mid_run_fails_the_run_naming_the_cause(
    gallery_path, warm_cache_dir, fallback_weights, content_path, style_path
):
    command = [sys.executable, "-c", READ_ONLY_MID_RUN, str(gallery_path), str(content_path), str(style_path)]
    log_path = gallery_path.with_name("runner.log")  # its warnings (progress it could not record) go here
    with log_path.open("w") as log:
        process = subprocess.Popen(
            without_file_permission_override(command), env=subprocess_env(JAXSTYLE_CACHE_DIR=str(warm_cache_dir)),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, cwd=REPO,
        )  # fmt: skip
    try:
        finished, run_id = (int(word) for word in process.stdout.readline().split())
        image_before = _image(gallery_path, finished)
        gallery_path.chmod(0o444)
        process.stdin.write("\n")
        process.stdin.flush()
        status, error = process.stdout.readline().strip().split(" | ", 1)
        assert status == "failed"
        assert error == (
            f"could not store the result: {gallery_path} is read-only; "
            "choose a writable gallery file with --gallery or JAXSTYLE_GALLERY"
        )
        assert get_run(gallery_path, run_id).status == "running"  # the gallery couldn't take it yet
        gallery_path.chmod(0o644)
        process.stdin.write("\n")
        process.stdin.flush()
        assert process.wait(timeout=60) == 0, log_path.read_text()[-3000:]
    finally:
        gallery_path.chmod(0o644)
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdin.close()
        process.stdout.close()
    run = get_run(gallery_path, run_id)
    assert (run.status, run.error) == ("failed", error)
    assert _image(gallery_path, finished) == image_before
    assert integrity(gallery_path) == "ok"


# ----- faults: a download killed halfway ---------------------------------------------------------


KILLED_DOWNLOAD = """
import sys
from jaxstyle import weights

url, md5, folder = sys.argv[1:4]
started = []

def progress(done, total):
    if not started and done > 200_000:
        started.append(done)
        print("downloading", done, total, flush=True)

weights.download_weights(progress=progress, urls=[url], md5=md5, dest_dir=folder)
print("finished", flush=True)
"""


def test_a_weights_download_killed_halfway_leaves_nothing_that_is_trusted(server, tmp_path, monkeypatch):
    monkeypatch.setenv("JAXSTYLE_CACHE_DIR", str(tmp_path / "cache"))
    folder = weights.weights_dir()
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_DOWNLOAD, f"{server}/slow-weights", WEIGHTS_MD5, str(folder)],
        env=subprocess_env(), stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        line = process.stdout.readline().split()
        assert line[0] == "downloading" and int(line[1]) < int(line[2]) == len(WEIGHTS_BODY)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        process.stdout.close()
    final = folder / weights.KERAS_FILE_NAME
    leftovers = list(folder.iterdir())
    assert not final.exists()
    assert leftovers and all(path.name != final.name for path in leftovers)  # a killed process can't clean up
    assert sum(path.stat().st_size for path in leftovers) < len(WEIGHTS_BODY)
    assert not weights.weights_status().pretrained  # the half file is never taken for the weights

    path = weights.download_weights(urls=[f"{server}/weights"], md5=WEIGHTS_MD5, dest_dir=folder)
    assert path == final and weights.md5_of(final) == WEIGHTS_MD5
