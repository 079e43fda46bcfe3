"""follow.py: a run's latest state, live from the runner that follows it, else from the gallery."""

from __future__ import annotations

import threading
from pathlib import Path

from jaxstyle import follow, gallery, inputs
from jaxstyle.errors import WeightsError
from jaxstyle.jobs import JobRunner
from jaxstyle.settings import TransferSettings

TINY = TransferSettings(size_px=32, iterations=3)


def _no_weights():
    raise WeightsError("no weights in this test")


def test_a_run_of_another_process_is_read_from_the_gallery_and_an_unknown_one_is_none(
    gallery_path: Path, content_path: Path
):
    photo = inputs.from_path(content_path)
    with gallery.connect(gallery_path) as db:
        sha = gallery.store_image(db, photo.data, origin_kind="file", origin=photo.origin)
        run_id = gallery.add_run(db, TINY.to_dict(), content_sha=sha, style_shas=[sha], status="running")
        gallery.record_progress(db, run_id, step=2, total_steps=3, losses={"total": 2.0, "content": 1.0})
    runner = JobRunner(gallery_path, weights_loader=_no_weights)  # this runner never saw that run
    try:
        snap = follow.snapshot(runner, run_id)
        assert (snap.run_id, snap.status, snap.step, snap.total_steps) == (run_id, "running", 2, 3)
        assert snap.fraction == 2 / 3
        assert not snap.finished and snap.preview is None
        assert follow.snapshot(runner, run_id + 1) is None
    finally:
        runner.shutdown()


def test_a_run_this_runner_follows_is_read_live(gallery_path: Path, content_path: Path):
    photo = inputs.from_path(content_path)
    release = threading.Event()

    def weights_after_the_check():  # holds the run still (queued, or loading weights) while it is read
        release.wait(30)
        _no_weights()

    runner = JobRunner(gallery_path, weights_loader=weights_after_the_check)
    try:
        run_id = runner.submit(TINY, photo, [photo])
        snap = follow.snapshot(runner, run_id)
        assert snap == runner.progress(run_id)
        assert (snap.status, snap.total_steps) == ("queued", 3)
    finally:
        release.set()
        runner.shutdown()
    snap = follow.snapshot(runner, run_id)
    assert snap.finished and snap.error  # the missing weights failed it (or the shutdown cancelled it)
