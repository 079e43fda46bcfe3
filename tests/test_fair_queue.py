"""A shared site's fair shares of the job queue: users take turns at the workers (one user's ten
runs don't all wait ahead of another's first), positions tell the order runs will really start,
and a user's runs at once, size, iterations and video length are refused past their limits with
nothing stored. Personal mode and admins keep the plain first-in, first-out queue with no limits."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PIL import Image

from jaxstyle import gallery, inputs, runners
from jaxstyle.errors import Cancelled, LimitError
from jaxstyle.instant.builtin import ArbitraryPainter
from jaxstyle.jobs import JobRunner
from jaxstyle.settings import TransferSettings
from jaxstyle.site import SiteConfig, UserLimits, Viewer
from jaxstyle.video import clips
from jaxstyle.video import run as video_run
from tests.support import wait_until

TINY = TransferSettings(size_px=32, iterations=3)
ALICE = Viewer("alice-sub", "alice@example.org")
BOB = Viewer("bob-sub", "bob@example.org")
CAROL = Viewer("carol-sub", "carol@example.org")
ADMIN = Viewer("root-sub", "teacher@example.org", is_admin=True)
PERSONAL = SiteConfig().viewer(None)  # what the app's personal mode passes: sees everything


class GatedBackend(runners.InProcessBackend):
    """Runs in this process, but each run first waits for ``gate`` (so the test fills the queue
    while the first run holds the only worker) and is noted in ``started``, by its seed. Once
    ``ended``, a run let through is cancelled at once (a test's end: nothing more to compile)."""

    def __init__(self, weights) -> None:
        super().__init__(lambda: weights)
        self.gate = threading.Event()
        self.ended = False
        self.started: list[int | str] = []

    def _through_the_gate(self, what: int | str) -> None:
        self.started.append(what)
        self.gate.wait()
        if self.ended:
            raise Cancelled("cancelled: the test is over")

    def run(self, content, styles, settings, report, **options):
        self._through_the_gate(settings.seed)
        return super().run(content, styles, settings, report, **options)

    def video(self, prepared, destination, progress, *, gallery_path=None):
        self._through_the_gate("video")
        return super().video(prepared, destination, progress, gallery_path=gallery_path)


@pytest.fixture
def backend(fallback_weights) -> GatedBackend:
    return GatedBackend(fallback_weights)


@pytest.fixture
def runner(gallery_path: Path, fallback_weights, backend):
    jobs = JobRunner(gallery_path, weights=fallback_weights, backend=backend)
    yield jobs
    backend.ended = True
    backend.gate.set()
    jobs.shutdown()


@pytest.fixture(scope="module")
def content(content_path: Path) -> inputs.LoadedImage:
    return inputs.load_source(str(content_path))


@pytest.fixture(scope="module")
def style(style_path: Path) -> inputs.LoadedImage:
    return inputs.load_source(str(style_path))


def submit(runner: JobRunner, content, style, seed: int, viewer: Viewer | None, **options) -> int:
    return runner.submit(TINY.replace(seed=seed), content, [style], viewer=viewer, **options)


def runs_stored(gallery_path: Path) -> int:
    if not gallery_path.exists():
        return 0
    with gallery.connect(gallery_path) as db:
        return gallery.count_runs(db)


def first_holds_the_worker(runner: JobRunner, backend: GatedBackend, run_id: int) -> None:
    wait_until(lambda: runner.position(run_id) == 0 and backend.started, what=f"run {run_id} to take the worker")


def finish_all(runner: JobRunner, backend: GatedBackend, gallery_path: Path, run_ids: list[int]) -> list[gallery.Run]:
    """Open the gate, wait for every run to end; the runs, in the order they finished."""
    backend.gate.set()
    wait_until(lambda: all(runner.position(r) is None for r in run_ids), what="every run to end")
    with gallery.connect(gallery_path) as db:
        runs = [gallery.get_run(db, run_id) for run_id in run_ids]
    assert [run.status for run in runs] == ["done"] * len(runs)
    return sorted(runs, key=lambda run: run.finished)


# --- Turns


def test_a_second_user_is_served_before_the_first_users_other_runs(runner, backend, gallery_path, content, style):
    alice1 = submit(runner, content, style, 1, ALICE)
    first_holds_the_worker(runner, backend, alice1)
    alice2 = submit(runner, content, style, 2, ALICE)
    alice3 = submit(runner, content, style, 3, ALICE)
    bob1 = submit(runner, content, style, 4, BOB)

    # First in, first out would put bob's run behind all of alice's.
    assert runner.queued_ids() == [bob1, alice2, alice3]
    assert [runner.position(r) for r in (alice1, bob1, alice2, alice3)] == [0, 1, 2, 3]

    finished = finish_all(runner, backend, gallery_path, [alice1, alice2, alice3, bob1])
    assert backend.started == [1, 4, 2, 3]
    assert [run.id for run in finished] == [alice1, bob1, alice2, alice3]
    assert [run.owner for run in finished] == [ALICE.subject, BOB.subject, ALICE.subject, ALICE.subject]


def test_owners_take_turns_least_recently_served_first_and_positions_tell_the_real_order(
    runner, backend, gallery_path, content, style
):
    carol1 = submit(runner, content, style, 0, CAROL)
    first_holds_the_worker(runner, backend, carol1)
    queued = {
        "alice1": submit(runner, content, style, 1, ALICE),
        "alice2": submit(runner, content, style, 2, ALICE),
        "alice3": submit(runner, content, style, 3, ALICE),
        "bob1": submit(runner, content, style, 4, BOB),
        "bob2": submit(runner, content, style, 5, BOB),
        "personal": submit(runner, content, style, 6, None),  # no owner: one more owner in the turns
        "carol2": submit(runner, content, style, 7, CAROL),
    }
    # Owners not served yet first, in the order their first run came; then carol, served longest ago.
    expected = ["alice1", "bob1", "personal", "carol2", "alice2", "bob2", "alice3"]
    assert runner.queued_ids() == [queued[name] for name in expected]
    assert [runner.position(queued[name]) for name in expected] == list(range(1, len(expected) + 1))

    finished = finish_all(runner, backend, gallery_path, [carol1, *queued.values()])
    assert backend.started == [0, 1, 4, 6, 7, 2, 5, 3]
    assert [run.id for run in finished] == [carol1] + [queued[name] for name in expected]


@pytest.mark.parametrize("viewer", [None, PERSONAL, ALICE], ids=["no-viewer", "personal", "one-user"])
def test_one_owner_alone_is_served_first_in_first_out(viewer, runner, backend, gallery_path, content, style):
    run_ids = [submit(runner, content, style, 1, viewer)]
    first_holds_the_worker(runner, backend, run_ids[0])
    run_ids += [submit(runner, content, style, seed, viewer) for seed in (2, 3, 4)]

    assert runner.queued_ids() == run_ids[1:]
    assert [runner.position(r) for r in run_ids] == [0, 1, 2, 3]
    finished = finish_all(runner, backend, gallery_path, run_ids)
    assert backend.started == [1, 2, 3, 4]
    assert [run.id for run in finished] == run_ids


# --- Limits


def test_a_users_runs_at_once_are_limited_and_nothing_is_stored_past_the_limit(
    runner, backend, gallery_path, content, style
):
    limits = UserLimits(active_runs=2)
    running = submit(runner, content, style, 1, ALICE, limits=limits)
    first_holds_the_worker(runner, backend, running)
    waiting = submit(runner, content, style, 2, ALICE, limits=limits)

    with pytest.raises(LimitError) as refused:
        submit(runner, content, style, 3, ALICE, limits=limits)
    message = str(refused.value)
    assert len(message.splitlines()) == 1
    assert "you already have 2 runs queued or running (the limit is 2 per user)" in message
    assert "cancel one" in message
    assert runs_stored(gallery_path) == 2

    # The limit is each user's: bob still gets his; admins and personal mode have no limit.
    submit(runner, content, style, 4, BOB, limits=limits)
    for viewer in (ADMIN, PERSONAL, None):
        for seed in (5, 6, 7):
            submit(runner, content, style, seed, viewer, limits=limits)
    assert runs_stored(gallery_path) == 2 + 1 + 3 * 3

    # Cancelling one of hers makes room for another.
    assert runner.cancel(waiting)
    again = submit(runner, content, style, 8, ALICE, limits=limits)
    with gallery.connect(gallery_path) as db:
        assert gallery.get_run(db, again).owner == ALICE.subject
        assert gallery.count_runs(db) == 2 + 1 + 3 * 3 + 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"size_px": 65}, "a size of 65 px is over your limit of 64 px"),
        ({"iterations": 11}, "11 iterations are over your limit of 10"),
    ],
)
def test_size_and_iterations_over_a_users_limit_are_refused(
    changes, message, runner, backend, gallery_path, content, style
):
    limits = UserLimits(size_px=64, iterations=10)
    settings = TINY.replace(**changes)
    with pytest.raises(LimitError, match=message):
        runner.submit(settings, content, [style], viewer=ALICE, limits=limits)
    assert runs_stored(gallery_path) == 0
    assert runner.queued_ids() == [] and runner.active_ids() == []

    # At the limit is allowed; an admin is not limited.
    runner.submit(TINY.replace(size_px=64, iterations=10), content, [style], viewer=ALICE, limits=limits)
    runner.submit(settings, content, [style], viewer=ADMIN, limits=limits)
    assert runs_stored(gallery_path) == 2


def test_a_user_whose_gallery_is_full_is_refused_until_they_delete_runs(runner, backend, gallery_path, content, style):
    first = submit(runner, content, style, 1, ALICE, limits=UserLimits(active_runs=5))
    with gallery.connect(gallery_path) as db:
        used = gallery.storage_bytes(db, ALICE.subject)  # the photo and the painting, stored once
    assert used > 0
    full = UserLimits(active_runs=5, storage_mb=used / 2**20)
    with pytest.raises(LimitError, match=r"your gallery holds .* MB, your limit of .* MB; delete some runs first"):
        submit(runner, content, style, 2, ALICE, limits=full)
    assert runs_stored(gallery_path) == 1
    submit(runner, content, style, 3, BOB, limits=full)  # Bob's gallery is his own
    backend.ended = True  # the gate opens onto a cancellation: nothing to compile
    backend.gate.set()
    wait_until(lambda: runner.position(first) is None, what="the first run to end")
    with gallery.connect(gallery_path) as db:
        gallery.delete_run(db, first)
    submit(runner, content, style, 4, ALICE, limits=full)
    assert runs_stored(gallery_path) == 2


# --- Videos


@pytest.fixture(scope="module")
def one_second_video(tmp_path_factory, shared_data: Path) -> video_run.PreparedVideo:
    """A 1 s clip of a real photo (12 frames of 96×72), prepared for the arbitrary painter."""
    frames = clips.clip_frames(Image.open(shared_data / "content" / "golden_gate.jpg"), 12, 96, 72)
    clip = clips.write_clip(tmp_path_factory.mktemp("clips") / "golden_gate.mp4", frames, 12)
    painting = inputs.from_path(shared_data / "styles" / "the_scream.jpg")
    prepared = video_run.prepare(video_run.VideoRequest(clip, styles=(painting,), work_px=256), ArbitraryPainter())
    assert prepared.info.duration_s == pytest.approx(1.0)
    return prepared


def test_a_video_longer_than_a_users_limit_is_refused(runner, backend, gallery_path, one_second_video):
    with pytest.raises(LimitError, match=r"a video of 1 s is over your limit of 0\.5 s"):
        runner.submit_video(one_second_video, viewer=ALICE, limits=UserLimits(video_s=0.5))
    assert runs_stored(gallery_path) == 0

    admins = runner.submit_video(one_second_video, viewer=ADMIN, limits=UserLimits(video_s=0.5))
    hers = runner.submit_video(one_second_video, viewer=ALICE, limits=UserLimits(video_s=1, active_runs=1))
    with gallery.connect(gallery_path) as db:
        assert [gallery.get_run(db, r).owner for r in (admins, hers)] == [ADMIN.subject, ALICE.subject]
    # A video counts among her runs at once.
    with pytest.raises(LimitError, match=r"the limit is 1 per user"):
        runner.submit_video(one_second_video, viewer=ALICE, limits=UserLimits(video_s=1, active_runs=1))
    assert runs_stored(gallery_path) == 2
