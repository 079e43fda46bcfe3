"""Load: 8 sessions submit 5 tiny runs each to one job runner while the real app serves its pages.

Everything stays on 127.0.0.1. The runs go through one :class:`~jaxstyle.jobs.JobRunner` (2 workers, a
queue of 8, so sessions also meet a full queue and retry); meanwhile ``streamlit run dashboard.py``
serves the same gallery file, and its Home and Gallery pages are run again and again over the app's
own websocket (the page script runs in full, as for a browser), each load timed. Checked: every run
ends done or failed, the gallery holds exactly the runs submitted with each session's own images,
no lock error shows anywhere, and every page load succeeds. The figures are printed; nothing about
time is asserted.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.sync.client import connect

from jaxstyle import gallery, inputs
from jaxstyle.jobs import JobRunner, QueueFullError
from jaxstyle.settings import TransferSettings
from tests.servers import app_health, serve, streamlit_command
from tests.support import free_port

SESSIONS = 8
RUNS_PER_SESSION = 5
TINY = TransferSettings(size_px=32, iterations=2)
PAGES = {"Home": "", "Gallery": "gallery"}

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]


@dataclasses.dataclass
class PageLoad:
    page: str
    seconds: float
    errors: list[str]


@pytest.fixture
def app_port(gallery_path: Path, warm_cache_dir: Path, tmp_path: Path):
    """`streamlit run dashboard.py` on a free local port, serving ``gallery_path``."""
    port = free_port()
    log_path = tmp_path / "streamlit.log"
    env = {
        **os.environ,
        "JAXSTYLE_GALLERY": str(gallery_path),
        "JAXSTYLE_CACHE_DIR": str(warm_cache_dir),
        "NO_PROXY": "127.0.0.1,localhost",
    }
    url = f"http://127.0.0.1:{port}"
    with serve(streamlit_command(port), f"{url}/_stcore/health", log_path, env, ok=app_health) as server:
        yield port
        assert server.poll() is None, f"the app went down:\n{log_path.read_text()[-3000:]}"


def _healthy(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=5).text == "ok"
    except requests.RequestException:
        return False


def load_page(port: int, name: str) -> PageLoad:
    """Open a new session over the app's websocket, run one page, time it until the script finishes.

    Returns the seconds taken and every error or exception the page showed.
    """
    started = time.monotonic()
    errors: list[str] = []
    with connect(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"], open_timeout=60) as ws:
        request = BackMsg()
        request.rerun_script.query_string = ""
        request.rerun_script.page_name = PAGES[name]
        ws.send(request.SerializeToString())
        while True:
            message = ForwardMsg()
            message.ParseFromString(ws.recv(timeout=120))
            kind = message.WhichOneof("type")
            if kind == "delta" and message.delta.WhichOneof("type") == "new_element":
                element = message.delta.new_element
                if element.WhichOneof("type") == "exception":
                    errors.append(f"exception: {element.exception.message}")
                elif element.WhichOneof("type") == "alert" and element.alert.format == element.alert.ERROR:
                    errors.append(element.alert.body)
            elif kind == "page_not_found":
                errors.append(f"page not found: {name}")
                break
            elif kind == "script_finished":
                if message.script_finished != message.FINISHED_SUCCESSFULLY:
                    errors.append(f"script ended with status {message.script_finished}")
                break
    return PageLoad(name, time.monotonic() - started, errors)


def session_photos(shared_data: Path) -> list[inputs.LoadedImage]:
    """One photo per session: the same size (one compiled step for all), different pixels."""
    with Image.open(shared_data / "content" / "tubingen.jpg") as photo:
        photo = photo.convert("RGB")
        photos = []
        for k in range(SESSIONS):
            crop = photo.crop((40 * k, 20 * k, 40 * k + 512, 20 * k + 384))
            buffer = io.BytesIO()
            crop.save(buffer, format="JPEG", quality=90)
            photos.append(inputs.from_upload(buffer.getvalue(), f"session-{k}.jpg"))
    return photos


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def test_eight_sessions_of_five_runs_while_the_pages_stay_responsive(
    gallery_path, fallback_weights, shared_data, app_port, caplog, capsys
):
    caplog.set_level(logging.WARNING, logger="jaxstyle")
    photos = session_photos(shared_data)
    style = inputs.load_source("starry_night")
    runner = JobRunner(gallery_path, weights=fallback_weights, workers=2, max_queued=8, report_every=1)
    idle = [load_page(app_port, page) for _ in range(3) for page in PAGES]  # also warms the app up

    submitted: dict[int, int] = {}  # run id -> session
    refusals = [0] * SESSIONS
    mixed: list[str] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def session(k: int) -> None:
        try:
            mine = []
            for n in range(RUNS_PER_SESSION):
                while True:
                    try:
                        run_id = runner.submit(TINY, photos[k], [style], title=f"session {k} run {n}")
                        break
                    except QueueFullError:
                        refusals[k] += 1
                        time.sleep(0.5)  # as a person would: try again a little later
                with lock:
                    submitted[run_id] = k
                mine.append(run_id)
            while mine:  # follow my runs as a page would: only my ids, only my progress
                for run_id in list(mine):
                    progress = runner.progress(run_id)
                    if progress.run_id != run_id or progress.total_steps != TINY.total_iterations():
                        mixed.append(f"session {k} got {progress} for run {run_id}")
                    if progress.finished:
                        mine.remove(run_id)
                time.sleep(0.1)
        except BaseException as error:  # noqa: BLE001 — reported by the test
            failures.append(error)

    started = time.monotonic()
    threads = [threading.Thread(target=session, args=(k,), name=f"session-{k}") for k in range(SESSIONS)]
    for thread in threads:
        thread.start()
    loaded: list[PageLoad] = []
    health_s: list[float] = []
    try:
        while any(thread.is_alive() for thread in threads):
            if time.monotonic() - started > 420:
                pytest.fail("the runs did not finish within 7 minutes")
            for page in PAGES:
                loaded.append(load_page(app_port, page))
            health_started = time.monotonic()
            assert _healthy(app_port)
            health_s.append(time.monotonic() - health_started)
            time.sleep(0.2)
        wall_s = time.monotonic() - started
    finally:
        for thread in threads:
            thread.join(timeout=60)
        runner.shutdown()

    assert failures == []
    assert mixed == []
    with gallery.connect(gallery_path) as db:
        runs = {run_id: gallery.get_run(db, run_id) for run_id in submitted}
        stored = gallery.count_runs(db)
        sizes = {run_id: Image.open(io.BytesIO(gallery.run_image(db, run_id))).size for run_id, run in runs.items()
                 if run.status == "done"}  # fmt: skip
    done = [run for run in runs.values() if run.status == "done"]
    failed = [run for run in runs.values() if run.status == "failed"]
    lost = len(submitted) - len(done) - len(failed)
    lock_messages = [r.getMessage() for r in caplog.records if "lock" in (r.getMessage() + str(r.exc_info)).lower()]
    lock_messages += [run.error for run in failed if "lock" in run.error]
    page_errors = [error for load in idle + loaded for error in load.errors]

    with capsys.disabled():
        print(f"\n--- load test: {SESSIONS} sessions x {RUNS_PER_SESSION} runs, {TINY.size_px} px, "
              f"{TINY.iterations} iterations, 2 workers, queue of 8 ---")  # fmt: skip
        print(f"runs submitted {len(submitted)}, finished {len(done)}, failed {len(failed)}, lost {lost}; "
              f"'queue full' refusals {sum(refusals)} (retried); wall {wall_s:.1f} s; "
              f"{len(done) / wall_s * 60:.0f} runs/min")  # fmt: skip
        for page in PAGES:
            under = [load.seconds for load in loaded if load.page == page]
            calm = [load.seconds for load in idle if load.page == page]
            print(f"{page} page, full script run over the websocket: idle p50 {percentile(calm, 50):.3f} s; "
                  f"under load n={len(under)} p50 {percentile(under, 50):.3f} s, p95 {percentile(under, 95):.3f} s, "
                  f"max {max(under, default=float('nan')):.3f} s")  # fmt: skip
        print(f"/_stcore/health under load: n={len(health_s)} p50 {percentile(health_s, 50) * 1000:.0f} ms, "
              f"p95 {percentile(health_s, 95) * 1000:.0f} ms")  # fmt: skip
        print(f"lock errors {len(lock_messages)}, page errors {len(page_errors)}, gallery runs {stored}")

    assert len(submitted) == SESSIONS * RUNS_PER_SESSION
    assert lost == 0
    assert stored == len(submitted)  # exactly the runs submitted, no more
    assert lock_messages == []
    assert page_errors == []
    assert len(loaded) >= 2  # the pages were really loaded while the runs went
    for run_id, run in runs.items():
        k = submitted[run_id]
        assert run.title.startswith(f"session {k} run ")
        assert run.content.sha256 == photos[k].sha256  # each session's own photo, never another's
        if run.status == "done":
            assert sizes[run_id] == (32, 24) and len(run.loss_history) == TINY.iterations
        else:
            assert run.error, run
