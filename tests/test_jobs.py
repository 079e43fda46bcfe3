"""The background job runner: runs land in the gallery done, cancelled or failed, and never mix."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
from PIL import Image

from jaxstyle import gallery, inputs, weights
from jaxstyle.errors import SettingsError
from jaxstyle.jobs import JobRunner, QueueFullError
from jaxstyle.settings import TransferSettings
from tests.support import wait_until

TINY = TransferSettings(size_px=32, iterations=3)
LONG = TransferSettings(size_px=32, iterations=2000)  # long enough to be caught running and cancelled


@pytest.fixture(scope="module")
def fallback_weights(tmp_path_factory, request):
    """The offline fallback VGG19, computed once for the module (it takes seconds)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JAXSTYLE_CACHE_DIR", str(tmp_path_factory.mktemp("weights-cache")))
        loaded = weights.load_weights(allow_fallback=True)
    assert not loaded.pretrained
    return loaded


@pytest.fixture
def runner(gallery_path: Path, fallback_weights):
    jobs = JobRunner(gallery_path, weights=fallback_weights, report_every=1, preview_every=1)
    yield jobs
    jobs.shutdown()


def load(path: Path) -> inputs.LoadedImage:
    return inputs.load_source(str(path))


def status(gallery_path: Path, run_id: int) -> str:
    with gallery.connect(gallery_path) as db:
        return gallery.get_run(db, run_id).status


def wait_finished(gallery_path: Path, run_id: int) -> gallery.Run:
    wait_until(lambda: status(gallery_path, run_id) in ("done", "failed", "cancelled"), what=f"run {run_id} to end")
    with gallery.connect(gallery_path) as db:
        return gallery.get_run(db, run_id)


def test_a_submitted_run_is_in_the_gallery_at_once_and_ends_done_with_its_image(
    runner, gallery_path, content_path, style_path
):
    run_id = runner.submit(TINY, load(content_path), [load(style_path)], title="tübingen", tags=("test",))
    assert status(gallery_path, run_id) in ("queued", "running")

    run = wait_finished(gallery_path, run_id)
    assert (run.status, run.error, run.title, run.tags) == ("done", "", "tübingen", ("test",))
    assert run.settings == TINY.to_dict()
    assert len(run.loss_history) == 3
    with gallery.connect(gallery_path) as db:
        result = Image.open(io.BytesIO(gallery.run_image(db, run_id)))
    assert max(result.size) == 32
    progress = runner.progress(run_id)
    assert (progress.status, progress.step, progress.total_steps) == ("done", 3, 3)
    assert [entry["step"] for entry in progress.history] == [1, 2, 3]
    assert progress.preview is not None
    assert runner.position(run_id) is None


def test_cancel_stops_a_running_run_and_drops_a_waiting_one(runner, gallery_path, content_path, style_path):
    running = runner.submit(LONG, load(content_path), [load(style_path)])
    waiting = runner.submit(LONG, load(content_path), [load(style_path)])
    wait_until(lambda: runner.progress(running).step > 0, what="the first report")
    assert runner.position(running) == 0
    assert runner.position(waiting) == 1

    assert runner.cancel(waiting)
    assert status(gallery_path, waiting) == "cancelled"
    assert runner.cancel(running)
    run = wait_finished(gallery_path, running)
    assert run.status == "cancelled"
    assert not run.has_image
    assert runner.progress(running).step < LONG.iterations
    assert not runner.cancel(running)  # already over


def test_a_failing_run_is_marked_failed_and_the_worker_runs_the_next(runner, gallery_path, content_path, style_path):
    # A 400×4 px panorama is too thin for VGG's pooling at 32 px: the engine refuses it mid-run.
    sliver = Image.new("RGB", (400, 4), (120, 80, 40))
    buffer = io.BytesIO()
    sliver.save(buffer, format="PNG")
    bad = inputs.from_upload(buffer.getvalue(), "sliver.png")

    failing = runner.submit(TINY, bad, [load(style_path)])
    good = runner.submit(TINY, load(content_path), [load(style_path)])

    failed = wait_finished(gallery_path, failing)
    assert failed.status == "failed"
    assert "short side" in failed.error
    assert runner.progress(failing).error == failed.error
    assert wait_finished(gallery_path, good).status == "done"


def test_a_full_queue_refuses_clearly_and_stores_nothing(gallery_path, fallback_weights, content_path, style_path):
    jobs = JobRunner(gallery_path, weights=fallback_weights, max_queued=1)
    try:
        first = jobs.submit(LONG, load(content_path), [load(style_path)])
        wait_until(lambda: jobs.position(first) == 0, what="the first run to start")
        second = jobs.submit(LONG, load(content_path), [load(style_path)])
        with pytest.raises(QueueFullError, match="already waiting"):
            jobs.submit(TINY, load(content_path), [load(style_path)])
        with gallery.connect(gallery_path) as db:
            assert [run.id for run in gallery.list_runs(db)] == [second, first]
    finally:
        jobs.shutdown()
    assert status(gallery_path, first) == "cancelled"
    assert status(gallery_path, second) == "cancelled"


def test_a_blend_that_does_not_match_the_styles_is_refused(runner, content_path, style_path):
    with pytest.raises(SettingsError, match=r"style_blend has 2 weights for 1 style image"):
        runner.submit(TINY, load(content_path), [load(style_path)], style_blend=[0.5, 0.5])
    with pytest.raises(SettingsError, match="at least one style"):
        runner.submit(TINY, load(content_path), [])


def test_concurrent_runs_of_two_sessions_never_mix(gallery_path, fallback_weights, shared_data):
    jobs = JobRunner(gallery_path, weights=fallback_weights, workers=2, report_every=1)
    session_inputs = {
        "landscape": (load(shared_data / "content" / "chicago.jpg"), load(shared_data / "styles" / "udnie.jpg"), 3),
        "portrait": (
            inputs.from_upload(_portrait(shared_data / "content" / "golden_gate.jpg"), "portrait.png"),
            load(shared_data / "styles" / "the_scream.jpg"),
            5,
        ),
    }
    ids: dict[str, int] = {}

    def session(name: str) -> None:
        content, style, iterations = session_inputs[name]
        ids[name] = jobs.submit(TINY.replace(iterations=iterations), content, [style], title=name)

    try:
        threads = [threading.Thread(target=session, args=(name,)) for name in session_inputs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        runs = {name: wait_finished(gallery_path, run_id) for name, run_id in ids.items()}
    finally:
        jobs.shutdown()
    with gallery.connect(gallery_path) as db:
        for name, run in runs.items():
            content, style, iterations = session_inputs[name]
            assert (run.status, run.title) == ("done", name)
            assert run.content.sha256 == content.sha256
            assert [s.sha256 for s in run.styles] == [style.sha256]
            assert len(run.loss_history) == iterations
            assert jobs.progress(run.id).total_steps == iterations
            width, height = Image.open(io.BytesIO(gallery.run_image(db, run.id))).size
            assert (width > height) == (name == "landscape")


def _portrait(path: Path) -> bytes:
    """A portrait crop of a landscape photo, as PNG bytes."""
    image = Image.open(path).convert("RGB")
    width, height = image.size
    buffer = io.BytesIO()
    image.crop((0, 0, height // 2, height)).save(buffer, format="PNG")
    return buffer.getvalue()
