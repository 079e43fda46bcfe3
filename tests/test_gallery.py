"""The gallery file: opening, migrations, refusing what is not a gallery, several writers at once, crash recovery.

Real SQLite files in tmp dirs, real images, real processes (no mocks). Storing runs, listing and editing, and
export/import are in test_gallery_lifecycle.py, test_gallery_queries.py and test_gallery_archive.py.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading

import pytest
from PIL import Image

from jaxstyle import gallery
from jaxstyle.errors import GalleryError
from jaxstyle.settings import TransferSettings
from jaxstyle.site import Viewer
from tests.support import REPO, add_done_run, solid_png, subprocess_env

# --- Opening and migrations


def test_a_new_gallery_is_created_migrated_in_wal_mode_with_foreign_keys(gallery_path):
    with gallery.connect(gallery_path) as db:
        assert gallery.schema_version(db) == gallery.SCHEMA_VERSION == 7
        assert db.journal_mode == "wal"
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        tables = {"runs", "images", "run_styles", "results", "result_images", "previews", "videos", "video_files"}
        assert tables <= set(db.table_names())
    with gallery.connect(gallery_path) as db:  # opening again applies nothing twice
        assert [m.name for m in gallery.MIGRATIONS.applied(db)] == [
            "m001_initial",
            "m002_wal",
            "m003_groups_owners_previews",
            "m004_methods",
            "m005_videos",
            "m006_shared_files",
            "m007_owners",
        ]


def test_default_path_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("JAXSTYLE_GALLERY", str(tmp_path / "sub" / "mine.db"))
    with gallery.connect() as db:
        assert db.path == tmp_path / "sub" / "mine.db"
    assert (tmp_path / "sub" / "mine.db").is_file()


# The v1 schema exactly as the first migration step writes it; a file made by that version.
V1_SCHEMA = [
    """CREATE TABLE _sqlite_migrations (id INTEGER PRIMARY KEY, migration_set TEXT, name TEXT, applied_at TEXT)""",
    "CREATE UNIQUE INDEX idx__sqlite_migrations_migration_set_name ON _sqlite_migrations (migration_set, name)",
    """CREATE TABLE images (sha256 TEXT PRIMARY KEY, origin_kind TEXT NOT NULL, origin TEXT NOT NULL,
        width INTEGER NOT NULL, height INTEGER NOT NULL, data BLOB NOT NULL, created TEXT NOT NULL)""",
    """CREATE TABLE runs (id INTEGER PRIMARY KEY, created TEXT NOT NULL, status TEXT NOT NULL,
        error TEXT NOT NULL DEFAULT '', title TEXT NOT NULL DEFAULT '', tags TEXT NOT NULL DEFAULT '[]',
        settings TEXT NOT NULL, size_px INTEGER, iterations INTEGER, content_weight REAL, style_weight REAL,
        tv_weight REAL, optimizer TEXT, learning_rate REAL, style_loss TEXT, init TEXT, seed INTEGER,
        pooling TEXT, preserve_color TEXT, content_sha TEXT NOT NULL REFERENCES images(sha256),
        weights_source TEXT NOT NULL DEFAULT '', device TEXT NOT NULL DEFAULT '', compile_s REAL, run_s REAL,
        initial_losses TEXT NOT NULL DEFAULT '{}', final_losses TEXT NOT NULL DEFAULT '{}', final_loss REAL,
        loss_history TEXT NOT NULL DEFAULT '[]', step INTEGER NOT NULL DEFAULT 0, total_steps INTEGER,
        finished TEXT)""",
    """CREATE TABLE run_styles (run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        position INTEGER NOT NULL, sha256 TEXT NOT NULL REFERENCES images(sha256), blend REAL NOT NULL,
        PRIMARY KEY (run_id, position))""",
    """CREATE TABLE results (run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
        png BLOB NOT NULL, thumbnail BLOB NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL)""",
    "CREATE INDEX runs_created ON runs(created)",
    "CREATE INDEX runs_status ON runs(status)",
]


def test_a_v1_file_is_upgraded_in_place_without_losing_a_row(gallery_path, photos):
    import hashlib

    content, style, result = photos["chicago"], photos["udnie"], solid_png("teal")
    c_sha, s_sha = hashlib.sha256(content).hexdigest(), hashlib.sha256(style).hexdigest()
    settings = json.dumps(TransferSettings(size_px=64, style_weight=42.0).to_dict())
    conn = sqlite3.connect(gallery_path)
    for statement in V1_SCHEMA:
        conn.execute(statement)
    conn.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('jaxstyle', 'm001_initial', 'x')"
    )
    conn.executemany(
        "INSERT INTO images VALUES (?, ?, ?, 64, 48, ?, '2024-05-01T10:00:00.000000+00:00')",
        [(c_sha, "file", "chicago.jpg", content), (s_sha, "catalog", "udnie", style)],
    )
    for run_id, status in ((1, "done"), (2, "running")):
        conn.execute(
            "INSERT INTO runs (id, created, status, title, tags, settings, size_px, style_weight, content_sha, "
            "final_losses, final_loss) VALUES (?, '2024-05-01T10:00:00.000000+00:00', ?, ?, '[\"old\"]', ?, 64, "
            "42.0, ?, '{\"total\": 2.5}', 2.5)",
            [run_id, status, f"v1 run {run_id}", settings, c_sha],
        )
        conn.execute("INSERT INTO run_styles VALUES (?, 0, ?, 1.0)", [run_id, s_sha])
    conn.execute("INSERT INTO results VALUES (1, ?, ?, 48, 32)", [result, b"thumb"])
    conn.commit()
    conn.close()

    with gallery.connect(gallery_path) as db:
        assert gallery.schema_version(db) == gallery.SCHEMA_VERSION
        assert db.journal_mode == "wal"
        old = gallery.get_run(db, 1)
        assert (old.method, old.model) == ("optimize", None)  # every run before v4 was an optimization
        assert (old.title, old.status, old.tags, old.favorite, old.group_id) == (
            "v1 run 1",
            "done",
            ("old",),
            False,
            None,
        )
        assert old.settings["style_weight"] == 42.0 and old.final_losses == {"total": 2.5}
        assert (old.content.origin, [s.origin for s in old.styles]) == ("chicago.jpg", ["udnie"])
        assert gallery.run_image(db, 1) == result
        assert gallery.input_image(db, c_sha) == content
        # The v1 file's "running" run has no owner recorded: it can't be running any more.
        interrupted = gallery.get_run(db, 2)
        assert interrupted.status == "failed" and "interrupted" in interrupted.error
        assert gallery.count_runs(db) == 2
        # New v3 features work on the old rows.
        gallery.set_favorite(db, 1)
        assert [r.id for r in gallery.list_runs(db, favorite=True)] == [1]
        # On a shared site the old runs belong to the admins: a signed-in student doesn't see them.
        admin, student = Viewer("t", "t@school.example", is_admin=True), Viewer("s", "s@school.example")
        assert old.owner is None and gallery.visible_run(db, 1, admin).id == 1
        assert gallery.list_runs(db, **gallery.owner_criteria(student)) == []
        with pytest.raises(gallery.RunNotFound):
            gallery.visible_run(db, 1, student)


def test_a_v5_gallery_moves_to_shared_files_keeping_every_run_and_image_byte_for_byte(gallery_path, photos):
    """v6 stores result images and videos once by hash. A file made by the v5 steps (applied by
    the real migrations, rows as v5 wrote them) keeps every run, result, thumbnail and video."""
    import hashlib

    import sqlite_utils

    old = sqlite_utils.Database(gallery_path)
    gallery.MIGRATIONS.apply(old, stop_before="m006_shared_files")
    assert gallery.schema_version(old) == 5
    content, style = photos["chicago"], photos["udnie"]
    c_sha, s_sha = hashlib.sha256(content).hexdigest(), hashlib.sha256(style).hexdigest()
    old["images"].insert_all([
        {"sha256": c_sha, "origin_kind": "file", "origin": "chicago.jpg", "width": 64, "height": 48,
         "data": content, "created": "2026-01-01T00:00:00.000000+00:00"},
        {"sha256": s_sha, "origin_kind": "catalog", "origin": "udnie", "width": 64, "height": 48,
         "data": style, "created": "2026-01-01T00:00:00.000000+00:00"},
    ])  # fmt: skip
    settings = json.dumps(TransferSettings(size_px=64).to_dict())
    shared, own, poster = solid_png("teal"), solid_png("olive"), solid_png("maroon")
    results = {1: (shared, b"thumb-a"), 2: (shared, b"thumb-a"), 3: (own, b"thumb-b"), 4: (poster, b"thumb-c")}
    video = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40  # v5 stored the bytes as given
    for run_id in (1, 2, 3, 4, 5):
        method = "video" if run_id == 4 else "optimize"
        old["runs"].insert({"id": run_id, "created": "2026-01-01T00:00:00.000000+00:00", "status": "done",
                            "settings": settings, "content_sha": c_sha, "method": method,
                            "model": "arbitrary" if method == "video" else None})  # fmt: skip
        old["run_styles"].insert({"run_id": run_id, "position": 0, "sha256": s_sha, "blend": 1.0})
    for run_id, (png, thumbnail) in results.items():
        old["results"].insert({"run_id": run_id, "png": png, "thumbnail": thumbnail, "width": 48, "height": 32})
    old["videos"].insert({"run_id": 4, "data": video, "suffix": ".mp4", "stats": '{"frames": 12}'})
    old.close()

    with gallery.connect(gallery_path) as db:
        assert gallery.schema_version(db) == gallery.SCHEMA_VERSION
        assert gallery.count_runs(db) == 5
        for run_id, (png, thumbnail) in results.items():
            assert gallery.run_image(db, run_id) == png
            assert gallery.run_thumbnail(db, run_id) == thumbnail
        assert gallery.run_image(db, 5) is None and not gallery.get_run(db, 5).has_image
        assert gallery.thumbnails(db, [1, 3, 5]) == {1: b"thumb-a", 3: b"thumb-b"}
        assert gallery.run_video(db, 4) == gallery.VideoFile(video, ".mp4", {"frames": 12})
        assert gallery.input_image(db, c_sha) == content
        assert db["result_images"].count == 3  # runs 1 and 2 share one
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        # A shared image goes with the last run that uses it.
        gallery.delete_run(db, 1)
        assert gallery.run_image(db, 2) == shared
        gallery.delete_run(db, 2)
        assert db["result_images"].count == 2
        gallery.delete_run(db, 4)
        assert db["result_images"].count == 1 and db["video_files"].count == 0


def test_a_file_that_is_not_a_database_is_refused_and_left_unchanged(gallery_path):
    gallery_path.write_text("my shopping list\n" * 100)
    before = gallery_path.read_bytes()
    with pytest.raises(GalleryError, match="not a jaxstyle gallery") as caught:
        gallery.connect(gallery_path)
    assert str(gallery_path) in str(caught.value)
    assert gallery_path.read_bytes() == before


def test_another_programs_sqlite_database_is_refused_and_left_unchanged(gallery_path):
    conn = sqlite3.connect(gallery_path)
    conn.execute("CREATE TABLE contacts (name TEXT)")
    conn.commit()
    conn.close()
    before = gallery_path.read_bytes()
    with pytest.raises(GalleryError, match="not a jaxstyle gallery") as caught:
        gallery.connect(gallery_path)
    assert str(gallery_path) in str(caught.value)
    assert gallery_path.read_bytes() == before


def test_a_gallery_in_a_read_only_folder_is_a_clear_error(tmp_path):
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    path = folder / "gallery.db"
    code = (
        "import sys\nfrom jaxstyle import gallery\nfrom jaxstyle.errors import GalleryError\n"
        "try:\n    gallery.connect(sys.argv[1])\nexcept GalleryError as e:\n    print('GalleryError:', e)\n"
    )
    command = [sys.executable, "-c", code, str(path)]
    if os.geteuid() == 0:  # root writes anywhere: drop the capability that lets it ignore permissions
        command = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--", *command]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=subprocess_env(), cwd=REPO)
    finally:
        folder.chmod(0o755)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("GalleryError:") and str(path) in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert not path.exists()


def test_a_gallery_locked_too_long_is_a_clear_error(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        run_id = add_done_run(db, photos)
    blocker = sqlite3.connect(gallery_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    try:
        with gallery.connect(gallery_path, timeout_s=0.2) as db:
            assert gallery.get_run(db, run_id).id == run_id  # WAL: reading still works
            with pytest.raises(GalleryError, match="locked") as caught:
                gallery.set_title(db, run_id, "new title")
            assert str(gallery_path) in str(caught.value)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    with gallery.connect(gallery_path) as db:
        assert gallery.get_run(db, run_id).title == ""


# --- Several writers, crashes


WRITER = """
import io, sys
from PIL import Image
from jaxstyle import gallery

path, worker, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(count):
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (worker * 60, i * 5 % 256, 90)).save(out, format="PNG")
    png = out.getvalue()
    with gallery.connect(path) as db:
        content = gallery.store_image(db, png, origin_kind="upload", origin=f"w{worker}-{i}.png")
        run_id = gallery.add_run(db, {"seed": i}, content_sha=content, style_shas=[content], title=f"w{worker}")
    with gallery.connect(path) as db:
        gallery.start_run(db, run_id, total_steps=2)
        gallery.record_progress(db, run_id, step=1, total_steps=2, losses={"total": 1.0}, preview_png=png)
    with gallery.connect(path) as db:
        gallery.finish_run(db, run_id, image_png=png, initial_losses={}, final_losses={"total": 0.5},
                           loss_history=[], compile_s=0, run_s=0, device="cpu", weights_source="random")
"""


def _assert_all_done_and_readable(db, expected: int) -> None:
    assert gallery.count_runs(db) == expected
    assert gallery.count_runs(db, status="done") == expected
    for run_id, png, thumbnail in db.execute(
        "SELECT run_id, png, thumbnail FROM results JOIN result_images USING (sha256)"
    ):
        with Image.open(io.BytesIO(png)) as image:
            image.load()
        with Image.open(io.BytesIO(thumbnail)) as image:
            image.load()
        assert gallery.get_run(db, run_id).has_image
    assert db.execute("SELECT COUNT(*) FROM results").fetchone()[0] == expected


def test_four_processes_writing_at_once_lose_nothing(gallery_path):
    # Each process also creates the file's schema if it gets there first.
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(gallery_path), str(worker), "50"],
            env=subprocess_env(),
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in range(4)
    ]
    errors = [worker.communicate(timeout=120)[1] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0, 0, 0], errors
    with gallery.connect(gallery_path) as db:
        _assert_all_done_and_readable(db, 200)
        assert {gallery.count_runs(db, text=f"w{worker}") for worker in range(4)} == {50}


def test_threads_writing_at_once_lose_nothing(gallery_path, photos):
    failures: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for i in range(20):
                with gallery.connect(gallery_path) as db:
                    sha = gallery.store_image(db, photos["udnie"], origin_kind="catalog", origin="udnie")
                    run_id = gallery.add_run(db, {"seed": worker * 100 + i}, content_sha=sha, style_shas=[sha])
                with gallery.connect(gallery_path) as db:
                    gallery.start_run(db, run_id, total_steps=1)
                    gallery.finish_run(
                        db, run_id, image_png=solid_png("green"), initial_losses={}, final_losses={},
                        loss_history=[], compile_s=0, run_s=0, device="cpu", weights_source="random",
                    )  # fmt: skip
        except BaseException as error:  # noqa: BLE001 — reported by the test thread
            failures.append(error)

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    with gallery.connect(gallery_path) as db:
        _assert_all_done_and_readable(db, 80)
        assert len({tuple(r) for r in db.execute("SELECT seed FROM runs")}) == 80


CRASHER = """
import sys, time
from jaxstyle import gallery
from PIL import Image
import io

out = io.BytesIO()
Image.new("RGB", (8, 8), "white").save(out, format="PNG")
with gallery.connect(sys.argv[1]) as db:
    sha = gallery.store_image(db, out.getvalue(), origin_kind="upload", origin="x.png")
    run_id = gallery.add_run(db, {}, content_sha=sha, style_shas=[sha])
    gallery.start_run(db, run_id, total_steps=100)
    gallery.record_progress(db, run_id, step=3, total_steps=100, losses={"total": 1.0})
print(run_id, flush=True)
time.sleep(120)
"""


def test_a_run_left_running_by_a_killed_process_is_marked_failed_at_the_next_open(gallery_path, photos):
    with gallery.connect(gallery_path) as db:  # a run of this (live) process, started earlier
        sha = gallery.store_image(db, photos["udnie"], origin_kind="catalog", origin="udnie")
        mine = gallery.add_run(db, {}, content_sha=sha, style_shas=[sha])
        gallery.start_run(db, mine, total_steps=10)
    crasher = subprocess.Popen(
        [sys.executable, "-c", CRASHER, str(gallery_path)],
        env=subprocess_env(),
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        crashed = int(crasher.stdout.readline())
        with gallery.connect(gallery_path) as db:
            assert gallery.get_run(db, crashed).status == "running"  # its owner is alive: left alone
    finally:
        crasher.send_signal(signal.SIGKILL)
        crasher.wait(timeout=30)
        crasher.stdout.close()
    with gallery.connect(gallery_path) as db:
        run = gallery.get_run(db, crashed)
        assert run.status == "failed"
        assert f"pid {crasher.pid}" in run.error and "ended before it finished" in run.error
        assert run.step == 3 and run.loss_history == [{"step": 3, "total": 1.0}]  # what it did is kept
        assert gallery.get_run(db, mine).status == "running"


def test_a_run_whose_heartbeat_stopped_is_marked_failed(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        sha = gallery.store_image(db, photos["udnie"], origin_kind="catalog", origin="udnie")
        hung = gallery.add_run(db, {}, content_sha=sha, style_shas=[sha], status="running")
        waiting = gallery.add_run(db, {}, content_sha=sha, style_shas=[sha])
        elsewhere = gallery.add_run(db, {}, content_sha=sha, style_shas=[sha], status="running")
        fresh = gallery.add_run(db, {}, content_sha=sha, style_shas=[sha], status="running")
        db.execute("UPDATE runs SET heartbeat = heartbeat - 3600 WHERE id IN (?, ?, ?)", [hung, waiting, elsewhere])
        db.execute("UPDATE runs SET owner_host = 'another-machine' WHERE id = ?", [elsewhere])
        assert sorted(gallery.recover_stale_runs(db)) == [hung, elsewhere]
        assert "no sign of life" in gallery.get_run(db, hung).error
        assert gallery.get_run(db, waiting).status == "queued"  # queued by a live process: waiting its turn
        assert gallery.get_run(db, fresh).status == "running"


def test_gallery_files_are_never_committed():
    for name in ("gallery.db", "gallery.db-wal", "gallery.db-shm"):
        assert subprocess.run(["git", "check-ignore", "-q", name], cwd=REPO, timeout=30).returncode == 0, name
