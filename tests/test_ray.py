"""Runs on a Ray cluster: a real local cluster (``ray start --head`` on 127.0.0.1, 2 CPUs) that the
app, the job queue and the CLI join by address, as a user's would be joined.

What is shown: runs from several app sessions all finish and land in the gallery (written by the
app's process alone); a worker killed in the middle of a run is restarted and the run tried once
more, a second death fails it with the reason, and the other runs go on; cancel reaches the worker;
a wrong address is one clear message in the app and the CLI, and nothing is stored.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from jaxstyle import gallery, inputs, runners, sweeps
from jaxstyle.errors import ClusterError
from jaxstyle.jobs import JobRunner
from jaxstyle.runners import ray_cluster
from jaxstyle.settings import TransferSettings
from tests.support import APP, CONTENT_DIR, REPO, STYLES_DIR, free_port, wait_until

TINY = TransferSettings(size_px=32, iterations=3)
RETRIED = TransferSettings(size_px=32, iterations=400)  # long enough to be killed mid-run, short to redo
LONG = TransferSettings(size_px=32, iterations=5000)  # runs until it is cancelled
SWEPT = TransferSettings(size_px=32, iterations=100)  # long enough for two runs of a sweep to be seen at once


@pytest.fixture(scope="module")
def cluster(warm_cache_dir, fallback_weights) -> str:
    """A Ray head on 127.0.0.1 with 2 CPUs and token authentication (a token of its own, so the
    head asks for it on any machine), whose workers find the fallback weights already made. Yields
    its address as a user would give it, ``HOST:PORT``: jaxstyle must then turn on token mode."""
    temp_dir = tempfile.mkdtemp(prefix="jsray-", dir="/tmp")  # short: Ray's socket paths have a length limit
    token = Path(temp_dir) / "auth_token"
    token.write_text(secrets.token_hex(32))
    env = {**os.environ, "JAXSTYLE_CACHE_DIR": str(warm_cache_dir), "JAXSTYLE_STYLES_DIR": str(STYLES_DIR)}
    env |= {"RAY_AUTH_TOKEN_PATH": str(token)}
    env.pop("RAY_AUTH_MODE", None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_AUTH_TOKEN_PATH", str(token))  # this machine holds the token, as docs/deploying.md says
        patch.delenv("RAY_AUTH_MODE", raising=False)
        address = ray_cluster.start_local_head(num_cpus=2, temp_dir=temp_dir, env=env)
        try:
            yield address
        finally:
            ray_cluster.stop_local_heads()
            os.environ.pop("RAY_AUTH_MODE", None)  # jaxstyle set it for this head
            shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def queue_on(cluster, gallery_path):
    """``queue_on(workers)``: a job queue on that many Ray workers of the test cluster, writing to
    ``gallery_path`` and reporting every step; shut down after the test."""
    made: list[JobRunner] = []

    def make(workers: int) -> JobRunner:
        made.append(JobRunner(gallery_path, backend=runners.backend_for(cluster, workers=workers), report_every=1))
        return made[-1]

    yield make
    for jobs in made:
        jobs.shutdown()


@pytest.fixture
def photo() -> inputs.LoadedImage:
    return inputs.load_source(str(CONTENT_DIR / "tubingen.jpg"))


@pytest.fixture
def painting() -> inputs.LoadedImage:
    return inputs.load_source(str(STYLES_DIR / "starry_night.jpg"))


def run_of(path: Path, run_id: int) -> gallery.Run:
    with gallery.connect(path) as db:
        return gallery.get_run(db, run_id)


@pytest.mark.slow
def test_runs_from_four_app_sessions_all_finish_on_the_cluster_and_land_in_the_gallery(
    cluster, monkeypatch, tmp_path, shared_data
):
    import ui

    app_gallery = tmp_path / "app-gallery.db"
    monkeypatch.setenv("JAXSTYLE_GALLERY", str(app_gallery))
    monkeypatch.setenv("JAXSTYLE_RAY_ADDRESS", cluster)
    monkeypatch.setenv("JAXSTYLE_WORKERS", "2")  # two Ray workers, one per CPU of the test cluster
    photo_bytes = (shared_data / "content" / "tubingen.jpg").read_bytes()
    sessions = [AppTest.from_file(APP, default_timeout=120).run() for _ in range(4)]
    run_ids = []
    try:
        home = sessions[0]
        assert not home.exception and not home.error
        assert any("Ray cluster at 127.0.0.1" in caption.value for caption in home.caption)
        for at in sessions:
            at.switch_page("app_pages/generate.py").run()
            at.button_group(key="gen_method").set_value("Optimize").run()  # Instant is the default without VGG
            at.file_uploader(key="content_upload").upload("tubingen.jpg", photo_bytes, "image/jpeg").run()
            at.select_slider(key="s_size_px").set_value(32)
            at.number_input(key="s_iterations").set_value(3).run()
        for _ in range(2):
            for at in sessions:
                at.button(key="generate").click().run()
                assert not at.exception and not at.error
                run_ids.append(at.session_state["run_id"])
        assert len(set(run_ids)) == 8
        runner = ui.runner()
        assert runner.backend.name == "ray"
        assert os.environ["RAY_AUTH_MODE"] == "token"  # set by jaxstyle: the head asks for the token
        wait_until(lambda: all(run_of(app_gallery, i).status == "done" for i in run_ids), what="8 runs to finish")
        finished = [run_of(app_gallery, i) for i in run_ids]
        assert all(run.device.startswith("cpu on Ray node") for run in finished)
        assert all(run.final_losses["total"] < run.initial_losses["total"] for run in finished)
        assert len({info["pid"] for info in runner.backend.worker_info()}) == 2
    finally:
        ui.runner().shutdown()


@pytest.mark.slow
def test_a_worker_killed_mid_run_is_retried_once_and_the_other_runs_go_on(queue_on, gallery_path, photo, painting):
    jobs = queue_on(2)
    backend = jobs.backend
    victim = jobs.submit(RETRIED, photo, [painting])
    other = jobs.submit(TINY, photo, [painting])
    wait_until(lambda: jobs.progress(other).finished, what="the other run to finish")
    wait_until(lambda: jobs.progress(victim).step >= 3, what="the run to be under way")
    [pid] = backend.busy_worker_pids()
    os.kill(pid, signal.SIGKILL)

    wait_until(lambda: jobs.progress(victim).finished, what="the killed run to end")
    assert (jobs.progress(victim).status, jobs.progress(victim).error) == ("done", None)
    assert backend.retries == 1
    run = run_of(gallery_path, victim)
    assert run.status == "done" and len(run.loss_history) == RETRIED.total_iterations()
    assert run_of(gallery_path, other).status == "done"

    after = jobs.submit(TINY, photo, [painting])  # the queue goes on, on the restarted worker too
    wait_until(lambda: jobs.progress(after).finished, what="a run after the kill")
    assert run_of(gallery_path, after).status == "done"
    assert pid not in {info["pid"] for info in backend.worker_info()}


@pytest.mark.slow
def test_a_worker_that_dies_twice_fails_the_run_with_the_reason(queue_on, gallery_path, photo, painting):
    jobs = queue_on(1)
    backend = jobs.backend
    victim = jobs.submit(LONG, photo, [painting])
    wait_until(lambda: (jobs.progress(victim).step or 0) >= 3, what="the run to be under way")
    os.kill(backend.busy_worker_pids()[0], signal.SIGKILL)
    wait_until(lambda: backend.runs_started == 2, what="the run to be tried again")
    os.kill(backend.busy_worker_pids()[0], signal.SIGKILL)
    wait_until(lambda: jobs.progress(victim).finished, what="the run to fail")
    progress = jobs.progress(victim)
    assert progress.status == "failed"
    assert progress.error.startswith("its Ray worker process died twice (killed, out of memory or crashed")
    assert (run_of(gallery_path, victim).status, run_of(gallery_path, victim).error) == ("failed", progress.error)


@pytest.mark.slow
def test_cancel_reaches_the_worker(queue_on, gallery_path, photo, painting):
    jobs = queue_on(1)
    running = jobs.submit(LONG, photo, [painting])
    waiting = jobs.submit(TINY, photo, [painting])
    wait_until(lambda: (jobs.progress(running).step or 0) >= 3, what="the run to be under way")
    assert jobs.position(waiting) == 1
    assert jobs.cancel(running)
    wait_until(lambda: jobs.progress(running).finished, what="the cancel")
    assert jobs.progress(running).status == "cancelled"
    assert jobs.progress(running).step < 1000
    # The one worker stopped optimizing: the waiting run gets it and finishes.
    wait_until(lambda: jobs.progress(waiting).finished, timeout_s=60, what="the next run on the freed worker")
    assert run_of(gallery_path, waiting).status == "done"
    assert run_of(gallery_path, running).status == "cancelled"


@pytest.mark.slow
def test_a_weight_sweep_fans_out_over_the_workers(queue_on, gallery_path, photo, painting):
    jobs = queue_on(2)
    group = sweeps.start_sweep(jobs, SWEPT, photo, [painting], None, [1.0, 10.0, 100.0])
    with gallery.connect(gallery_path) as db:
        run_ids = [run.id for run in gallery.list_runs(db, group_id=group)]
    assert len(run_ids) == 3
    wait_until(lambda: len(jobs.active_ids()) == 2, what="two runs of the sweep at once")
    wait_until(lambda: all(jobs.progress(i).finished for i in run_ids), what="the sweep to finish")
    assert {run_of(gallery_path, i).status for i in run_ids} == {"done"}
    assert {run_of(gallery_path, i).settings["style_weight"] for i in run_ids} == {1.0, 10.0, 100.0}


@pytest.mark.slow
def test_the_cli_paints_on_the_cluster_and_stores_the_run_here(cluster, tmp_path, warm_cache_dir):
    out, db = tmp_path / "out.png", tmp_path / "cli.db"
    command = [
        sys.executable,
        "-m",
        "jaxstyle",
        "generate",
        "--content",
        str(CONTENT_DIR / "tubingen.jpg"),
        "--style",
        "starry_night",
        "--size",
        "32",
        "--iterations",
        "3",
        "--out",
        str(out),
        "--gallery",
        str(db),
        "--ray-address",
        cluster,
        "--quiet",
        "--json",
    ]
    env = {**os.environ, "JAXSTYLE_CACHE_DIR": str(warm_cache_dir)}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 0
    with gallery.connect(db) as connection:
        [summary] = gallery.list_runs(connection)
        run = gallery.get_run(connection, summary.id)
    assert run.status == "done" and run.device.startswith("cpu on Ray node")


@pytest.fixture
def photo_folder(tmp_path, shared_data) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("chicago", "tubingen"):
        shutil.copy(shared_data / "content" / f"{name}.jpg", folder)
    return folder


def train_command(cluster: str, gallery_path: Path, photos: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "jaxstyle", "train", "--styles", "starry_night", "--name", "tiny", "--photos",
        str(photos), "--size", "32", "--batch", "1", "--checkpoint-every", "2", "--gallery", str(gallery_path),
        "--ray-address", cluster, "--quiet", "--json", *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_the_cli_trains_a_model_on_the_cluster_and_keeps_it_here(cluster, tmp_path, photo_folder, warm_cache_dir):
    from jaxstyle.instant import models

    gallery_path = tmp_path / "g.db"
    env = {**os.environ, "JAXSTYLE_CACHE_DIR": str(warm_cache_dir)}
    done = subprocess.run(
        train_command(cluster, gallery_path, photo_folder, "--steps", "3"),
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    model = models.load_model("tiny", gallery_path)
    assert (model.styles, model.meta["step"], len(model.meta["loss_history"])) == (("starry_night",), 3, 3)
    assert model.meta["train"]["photos"] == str(photo_folder.resolve())  # named as on this machine
    assert model.meta["train"]["weights_source"] == "random-fallback"  # the worker's own weights
    assert models.read_checkpoint_meta("tiny", gallery_path)["step"] == 3

    more = subprocess.run(
        train_command(cluster, gallery_path, photo_folder, "--steps", "5", "--resume"),
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert more.returncode == 0, more.stderr
    resumed = models.load_model("tiny", gallery_path)
    assert resumed.meta["step"] == 5 and resumed.meta["loss_history"][:3] == model.meta["loss_history"]

    # A new model starts from it there too (its params travel with the request).
    started = subprocess.run(
        [*train_command(cluster, gallery_path, photo_folder, "--steps", "1"), "--from", "tiny", "--name", "tiny2"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["started_from"]["model"] == "tiny"
    assert models.load_model("tiny2", gallery_path).meta["step"] == 1


@pytest.mark.slow
def test_a_worker_killed_mid_training_leaves_its_last_checkpoint_here_to_resume(
    cluster, tmp_path, photo_folder, fallback_weights
):
    from jaxstyle.instant import models
    from jaxstyle.instant.train import TrainSettings

    gallery_path = tmp_path / "g.db"
    backend = runners.backend_for(cluster, workers=1)
    styles = [("starry_night", inputs.load_source(str(STYLES_DIR / "starry_night.jpg")).image)]
    photos = [(p.name, p.read_bytes()) for p in sorted(photo_folder.iterdir())]
    settings = TrainSettings(size_px=32, steps=100_000, batch=1, checkpoint_every=2)

    def report(progress) -> None:
        if progress.step == 6:
            os.kill(backend.busy_worker_pids()[0], signal.SIGKILL)

    try:
        died = r"the Ray worker training tiny died near step \d+ \(.*\); the checkpoint of step \d+ is kept here"
        with pytest.raises(ClusterError, match=died):
            backend.train("tiny", styles, photos, settings, report, gallery_path=gallery_path, report_every=1)
        kept = models.read_checkpoint_meta("tiny", gallery_path)["step"]
        assert kept >= 4 and kept % 2 == 0
        assert models.load_model("tiny", gallery_path).meta["step"] == kept  # a valid model too

        short = TrainSettings(size_px=32, steps=kept + 2, batch=1, checkpoint_every=2)
        resumed = backend.train("tiny", styles, photos, short, None, gallery_path=gallery_path, resume=True)
        assert resumed.meta["step"] == kept + 2
    finally:
        backend.close()


def test_the_apps_trainings_and_instant_runs_go_to_the_cluster_and_land_here(cluster, tmp_path, photo_folder, photo):
    """Trainings (jaxstyle.instant.background) reach the Ray backend's ``train`` by the very call that
    reaches the in-process one's (test_instant), and an instant run is painted and scored on a
    worker (its painter travels as its model); the model, its checkpoint and the run land here."""
    from jaxstyle.instant import background, models
    from jaxstyle.instant.paint import Painter
    from jaxstyle.instant.run import run_instant
    from jaxstyle.instant.train import TrainSettings
    from jaxstyle.runners.ray import RayBackend

    class RecordingRayBackend(RayBackend):
        """The Ray backend, noting each call of the protocol's ``train``: its model and options."""

        def __init__(self, address: str, **options) -> None:
            super().__init__(address, **options)
            self.trained: list[tuple[str, dict]] = []

        def train(self, name, styles, photos, settings, report, **options):
            self.trained.append((name, options))
            return super().train(name, styles, photos, settings, report, **options)

    gallery_path = tmp_path / "g.db"
    backend = RecordingRayBackend(cluster, workers=1)
    styles = [("starry_night", inputs.load_source(str(STYLES_DIR / "starry_night.jpg")).image)]
    try:
        job = background.Trainings(gallery_path, backend=backend).start(
            "tiny", styles, photo_folder, TrainSettings(size_px=32, steps=3, batch=1, checkpoint_every=2)
        )
        assert job.join(300)
        snap = job.snapshot()
        assert (snap.status, snap.step, snap.error) == ("done", 3, None), snap.error
        options = {"gallery_path": gallery_path, "resume": False, "start_from": None, "report_every": 1}
        assert backend.trained == [("tiny", options)]  # the call test_instant sees the in-process backend get
        model = models.load_model("tiny", gallery_path)
        assert model.meta["step"] == 3 and model.meta["train"]["weights_source"] == "random-fallback"
        assert model.meta["train"]["photos"] == str(photo_folder.resolve())
        assert models.read_checkpoint_meta("tiny", gallery_path)["step"] == 3

        where = backend.instant(lambda weights: (os.getpid(), weights.source))
        assert where[0] != os.getpid() and where[1] == "random-fallback"
        run = run_instant(Painter(model), photo, ["starry_night"], None, 64, backend, gallery_path=gallery_path,
                          score=False)  # fmt: skip
        run.score_later()  # on the worker too
        stored = run_of(gallery_path, run.run_id)
        assert (stored.method, stored.model, stored.status) == ("instant", "tiny", "done")
        assert stored.weights_source == "random-fallback" and stored.final_losses["total"] > 0
        assert max(run.result.image.size) == 64
    finally:
        backend.close()


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("127.0.0.1:{closed}", "no Ray cluster answers at 127.0.0.1:{closed}"),
        ("ray://127.0.0.1:{closed}", "no Ray cluster answers at ray://127.0.0.1:{closed}"),
        ("http://example.org", "a Ray address is 'auto', HOST:PORT"),
    ],
)
def test_a_wrong_address_is_one_clear_message_in_the_cli_and_nothing_is_stored(tmp_path, address, message):
    closed = free_port()
    address, message = address.format(closed=closed), message.format(closed=closed)
    db = tmp_path / "cli.db"
    command = [sys.executable, "-m", "jaxstyle", "generate", "--content", str(CONTENT_DIR / "tubingen.jpg")]
    command += ["--style", "starry_night", "--out", str(tmp_path / "o.png"), "--gallery", str(db)]
    done = subprocess.run([*command, "--ray-address", address], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"error: {message}"), done.stderr
    assert not db.exists()


def test_a_wrong_address_is_one_clear_message_in_the_app_and_nothing_is_stored(monkeypatch, tmp_path, shared_data):
    import ui

    app_gallery = tmp_path / "app-gallery.db"
    monkeypatch.setenv("JAXSTYLE_GALLERY", str(app_gallery))
    monkeypatch.setenv("JAXSTYLE_RAY_ADDRESS", f"127.0.0.1:{free_port()}")
    at = AppTest.from_file(APP, default_timeout=60).run()
    try:
        assert not at.exception
        [error] = [element.value for element in at.error]
        assert error.startswith("no Ray cluster answers at 127.0.0.1:")
        at.switch_page("app_pages/generate.py").run()
        at.button_group(key="gen_method").set_value("Optimize").run()  # Instant is the default without the VGG
        photo_bytes = (shared_data / "content" / "tubingen.jpg").read_bytes()
        at.file_uploader(key="content_upload").upload("tubingen.jpg", photo_bytes, "image/jpeg").run()
        at.button(key="generate").click().run()
        assert not at.exception
        assert [element.value for element in at.error] == [error]
        assert "run_id" not in at.session_state
        with gallery.connect(app_gallery) as db:
            assert gallery.count_runs(db) == 0
    finally:
        ui.runner().shutdown()


@pytest.mark.slow
def test_a_video_is_painted_on_the_cluster_and_stored_here(queue_on, gallery_path, painting, shared_data, tmp_path):
    from PIL import Image

    from jaxstyle.instant.builtin import ArbitraryPainter
    from jaxstyle.video import clips
    from jaxstyle.video import run as video_run

    frames = clips.clip_frames(Image.open(shared_data / "content" / "chicago.jpg"), 8, 64, 48)
    source = clips.write_clip(tmp_path / "chicago.mp4", frames, 8)
    request = video_run.VideoRequest(source, styles=(painting,), work_px=256, name="chicago.mp4")
    prepared = video_run.prepare(request, ArbitraryPainter())
    jobs = queue_on(1)
    run_id = jobs.submit_video(prepared)
    wait_until(lambda: jobs.progress(run_id).finished, timeout_s=180, what="the video on the cluster")
    assert jobs.progress(run_id).status == "done" and jobs.progress(run_id).step == 8
    with gallery.connect(gallery_path) as db:
        video = gallery.run_video(db, run_id)
        assert gallery.get_run(db, run_id).method == "video"
    assert video.stats["frames"] == 8 and video.stats["has_audio"] is True
    assert jobs.backend.runs_started == 1  # it went to a worker, not this process
