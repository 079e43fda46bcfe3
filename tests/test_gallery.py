"""The gallery: real SQLite files in tmp dirs, real images, real processes (no mocks)."""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import zipfile
from datetime import date
from pathlib import Path

import pytest
from PIL import Image

from jaxstyle import cli_gallery, gallery
from jaxstyle.errors import GalleryError, ImageError, SettingsError
from jaxstyle.settings import TransferSettings

REPO = Path(__file__).resolve().parents[1]

SETTINGS = TransferSettings(
    size_px=64,
    iterations=12,
    content_weight=2.0,
    style_weight=300.0,
    tv_weight=0.5,
    content_layers=("conv4_2", "conv5_2"),
    style_layers=("conv1_1", "conv2_1", "conv3_1"),
    style_layer_weights=(4.0, 2.0, 1.0),
    style_loss="w2",
    optimizer="lbfgs",
    learning_rate=0.05,
    ema_decay=0.9,
    scale_min_px=32,
    scale_iterations=7,
    init="noise",
    seed=1234,
    pooling="average",
    style_scale=1.5,
    style_blend=(3.0, 1.0),
    preserve_color="luminance",
)


def png_of(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def solid_png(color: str, size: tuple[int, int] = (48, 32)) -> bytes:
    return png_of(Image.new("RGB", size, color))


@pytest.fixture(scope="module")
def photos(shared_data: Path) -> dict[str, bytes]:
    """Small real JPEGs (re-encoded at 64 px) of every content and style image, by file stem."""
    out = {}
    for path in sorted((shared_data / "content").glob("*.jpg")) + sorted((shared_data / "styles").glob("*.jpg")):
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((64, 64))
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=85)
            out[path.stem] = buffer.getvalue()
    return out


def add_done_run(db, photos, *, content="tubingen", styles=("starry_night",), title="", tags=(), **changes) -> int:
    """Store inputs and a finished run; returns its id."""
    settings = TransferSettings(size_px=64, iterations=10, **changes).to_dict()
    content_sha = gallery.store_image(db, photos[content], origin_kind="file", origin=f"{content}.jpg")
    style_shas = [gallery.store_image(db, photos[s], origin_kind="catalog", origin=s) for s in styles]
    run_id = gallery.add_run(db, settings, content_sha=content_sha, style_shas=style_shas, title=title, tags=tags)
    gallery.start_run(db, run_id, total_steps=10)
    gallery.finish_run(
        db,
        run_id,
        image_png=solid_png("navy"),
        initial_losses={"total": 9.0},
        final_losses={"total": 1.0 + run_id / 100},
        loss_history=[{"step": 10, "size_px": 64, "total": 1.0, "content": 0.5, "style": 0.4, "tv": 0.1}],
        compile_s=0.5,
        run_s=1.5,
        device="cpu",
        weights_source="random fallback",
    )
    return run_id


# --- Opening and migrations


def test_a_new_gallery_is_created_migrated_in_wal_mode_with_foreign_keys(gallery_path):
    with gallery.connect(gallery_path) as db:
        assert gallery.schema_version(db) == gallery.SCHEMA_VERSION == 3
        assert db.journal_mode == "wal"
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert {"runs", "images", "run_styles", "results", "previews"} <= set(db.table_names())
    with gallery.connect(gallery_path) as db:  # opening again applies nothing twice
        assert [m.name for m in gallery.MIGRATIONS.applied(db)] == [
            "m001_initial",
            "m002_wal",
            "m003_groups_owners_previews",
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
        assert gallery.schema_version(db) == 3
        assert db.journal_mode == "wal"
        old = gallery.get_run(db, 1)
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
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=_env(), cwd=REPO)
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


# --- Storing runs


def test_every_field_of_a_run_round_trips(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        content_sha = gallery.store_image(db, photos["tubingen"], origin_kind="upload", origin="holiday.jpg")
        style_shas = [
            gallery.store_image(db, photos["starry_night"], origin_kind="catalog", origin="starry_night"),
            gallery.store_image(db, photos["great_wave"], origin_kind="url", origin="https://example.org/wave.jpg"),
        ]
        run_id = gallery.add_run(
            db,
            SETTINGS.to_dict(),
            content_sha=content_sha,
            style_shas=style_shas,
            title="  Tübingen at night ",
            tags=["night", "sweep", "night", " "],
            group_id="sweep-7",
            weights_source="sha256:abc",
            device="cpu",
        )
        assert gallery.get_run(db, run_id).status == "queued"
        assert gallery.start_run(db, run_id, total_steps=26)
        gallery.record_progress(
            db, run_id, step=13, total_steps=26, losses={"total": 5.0, "content": 2.0}, preview_png=solid_png("red")
        )
        running = gallery.get_run(db, run_id)
        assert (running.status, running.step, running.total_steps) == ("running", 13, 26)
        assert running.loss_history == [{"step": 13, "total": 5.0, "content": 2.0}]
        assert gallery.run_preview(db, run_id) == solid_png("red")

        result = png_of(Image.open(io.BytesIO(photos["tubingen"])).convert("RGB"))
        history = [
            {"step": step, "size_px": 64, "total": 10.0 / step, "content": 1.0, "style": 2.0, "tv": 0.1}
            for step in range(1, 27)
        ]
        gallery.finish_run(
            db,
            run_id,
            image_png=result,
            initial_losses={"total": 12.0, "content": 0.0, "style": 11.0, "tv": 1.0},
            final_losses={"total": 0.4, "content": 0.1, "style": 0.2, "tv": 0.1},
            loss_history=history,
            compile_s=3.25,
            run_s=7.5,
            device="cpu (1 device)",
            weights_source="random fallback (offline)",
        )
        gallery.set_favorite(db, run_id)
        run = gallery.get_run(db, run_id)

        assert run.id == run_id and run.created.tzinfo is not None
        assert (run.status, run.error, run.title) == ("done", "", "Tübingen at night")
        assert run.tags == ("night", "sweep") and run.favorite and run.group_id == "sweep-7"
        assert run.settings == SETTINGS.to_dict()
        assert TransferSettings.from_dict(run.settings) == SETTINGS
        assert (run.weights_source, run.device) == ("random fallback (offline)", "cpu (1 device)")
        assert (run.compile_s, run.run_s) == (3.25, 7.5)
        assert run.initial_losses == {"total": 12.0, "content": 0.0, "style": 11.0, "tv": 1.0}
        assert run.final_losses == {"total": 0.4, "content": 0.1, "style": 0.2, "tv": 0.1} and run.final_loss == 0.4
        assert run.loss_history == history
        assert run.content == gallery.ImageInfo(content_sha, "upload", "holiday.jpg", 64, 48)
        assert [(s.sha256, s.origin_kind, s.origin, s.blend) for s in run.styles] == [
            (style_shas[0], "catalog", "starry_night", 0.75),
            (style_shas[1], "url", "https://example.org/wave.jpg", 0.25),
        ]
        assert (run.step, run.total_steps, run.has_image) == (26, 26, True)
        assert run.finished is not None and run.finished >= run.created
        assert gallery.run_image(db, run_id) == result
        assert gallery.run_preview(db, run_id) is None  # previews are dropped once the result is in
        assert gallery.input_image(db, content_sha) == photos["tubingen"]
        with Image.open(io.BytesIO(gallery.run_thumbnail(db, run_id))) as thumbnail:
            assert thumbnail.format == "JPEG" and max(thumbnail.size) <= gallery.THUMBNAIL_PX
        # The main settings are real columns too (for filters and sorting).
        row = db.execute("SELECT size_px, style_weight, optimizer, seed, preserve_color FROM runs").fetchone()
        assert row == (64, 300.0, "lbfgs", 1234, "luminance")
        assert json.loads(json.dumps(run.to_dict()))["settings"] == SETTINGS.to_dict()


def test_the_same_input_is_stored_once(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        first = gallery.store_image(db, photos["udnie"], origin_kind="catalog", origin="udnie")
        again = gallery.store_image(db, photos["udnie"], origin_kind="upload", origin="copy.jpg")
        assert first == again
        assert db.execute("SELECT COUNT(*), origin FROM images").fetchone() == (1, "udnie")


def test_bad_input_is_a_clear_error(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        with pytest.raises(ImageError, match="notes.txt"):
            gallery.store_image(db, b"hello", origin_kind="upload", origin="notes.txt")
        sha = gallery.store_image(db, photos["udnie"], origin_kind="catalog", origin="udnie")
        with pytest.raises(GalleryError, match="not in the gallery"):
            gallery.add_run(db, SETTINGS.to_dict(), content_sha="0" * 64, style_shas=[sha, sha])
        with pytest.raises(SettingsError, match="style_weight"):
            gallery.add_run(db, {"style_weight": -1}, content_sha=sha, style_shas=[sha])
        with pytest.raises(SettingsError, match="style_blend"):
            gallery.add_run(db, {}, content_sha=sha, style_shas=[sha], style_blend=[1.0, 2.0])
        with pytest.raises(gallery.RunNotFound, match="no run 99"):
            gallery.get_run(db, 99)
        with pytest.raises(GalleryError, match="unknown order"):
            gallery.list_runs(db, order="prettiest")
        with pytest.raises(GalleryError, match="unknown status"):
            gallery.list_runs(db, status="lost")
        with pytest.raises(ImageError):
            run_id = gallery.add_run(db, {}, content_sha=sha, style_shas=[sha])
            gallery.finish_run(
                db, run_id, image_png=b"not a png", initial_losses={}, final_losses={}, loss_history=[],
                compile_s=0, run_s=0, device="", weights_source="",
            )  # fmt: skip
        assert gallery.get_run(db, run_id).status == "queued"  # nothing half-written
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1


def test_failed_and_cancelled_runs_keep_why_and_a_finished_run_stays_done(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        sha = gallery.store_image(db, photos["udnie"], origin_kind="catalog", origin="udnie")
        failed = gallery.add_run(db, {}, content_sha=sha, style_shas=[sha], status="running")
        cancelled = gallery.add_run(db, {}, content_sha=sha, style_shas=[sha])
        assert gallery.fail_run(db, failed, "out of memory at 2048 px")
        assert gallery.fail_run(db, cancelled, "stopped by the user", cancelled=True)
        assert (gallery.get_run(db, failed).status, gallery.get_run(db, failed).error) == (
            "failed",
            "out of memory at 2048 px",
        )
        assert gallery.get_run(db, cancelled).status == "cancelled"
        assert not gallery.start_run(db, cancelled)  # cancelled while queued: the worker must skip it
        assert not gallery.record_progress(db, cancelled, step=1, total_steps=2, losses={"total": 1.0})
        done = add_done_run(db, photos)
        assert not gallery.fail_run(db, done, "late failure")
        assert gallery.get_run(db, done).status == "done"


def test_a_finished_image_is_kept_even_after_the_run_was_marked_failed(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        sha = gallery.store_image(db, photos["udnie"], origin_kind="catalog", origin="udnie")
        run_id = gallery.add_run(db, {}, content_sha=sha, style_shas=[sha], status="running")
        gallery.fail_run(db, run_id, "interrupted: no sign of life")  # e.g. a slow step looked dead
        gallery.finish_run(
            db, run_id, image_png=solid_png("gold"), initial_losses={}, final_losses={"total": 1.0},
            loss_history=[], compile_s=1, run_s=1, device="cpu", weights_source="random",
        )  # fmt: skip
        run = gallery.get_run(db, run_id)
        assert (run.status, run.error, run.has_image) == ("done", "", True)


# --- Listing, comparing, editing


def test_filters_match_the_runs_they_name(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        a = add_done_run(db, photos, content="tubingen", styles=("starry_night",), title="Night river", tags=["blue"])
        b = add_done_run(db, photos, content="chicago", styles=("udnie", "starry_night"), title="City", style_weight=50)
        c = add_done_run(db, photos, content="chicago", styles=("the_scream",), title="River scream", tags=["red"])
        sha = gallery.store_image(db, photos["golden_gate"], origin_kind="file", origin="golden_gate.jpg")
        d = gallery.add_run(db, {}, content_sha=sha, style_shas=[sha], group_id="g1", title="Queued")
        gallery.set_favorite(db, b)
        gallery.set_tags(db, b, "blue, city")
        db.execute("UPDATE runs SET created = '2024-01-15T12:00:00.000000+00:00' WHERE id = ?", [a])

        def ids(**filters) -> list[int]:
            found = [r.id for r in gallery.list_runs(db, **filters)]
            assert gallery.count_runs(db, **filters) == len(found)
            # The same filter as a RunFilter object, as the CLI passes it.
            run_filter = gallery.RunFilter(**filters)
            assert [r.id for r in gallery.list_runs(db, run_filter)] == found
            assert gallery.count_runs(db, run_filter) == len(found)
            return sorted(found)

        assert ids() == [a, b, c, d]
        assert ids(style="starry_night") == [a, b]
        assert ids(style=gallery.get_run(db, c).styles[0].sha256) == [c]
        assert ids(content="chicago.jpg") == [b, c]
        assert ids(tag="blue") == [a, b]
        assert ids(favorite=True) == [b] and ids(favorite=False) == [a, c, d]
        assert ids(status="queued") == [d] and ids(status=["done", "queued"]) == [a, b, c, d]
        assert ids(text="river") == [a, c] and ids(text="%") == []
        assert ids(group_id="g1") == [d]
        assert ids(until="2024-01-15") == [a] and ids(since=date(2024, 1, 16)) == [b, c, d]
        assert ids(since="2024-01-15T11:00:00+00:00", until="2024-01-15T13:00:00+00:00") == [a]
        assert ids(style="starry_night", content="chicago.jpg") == [b]
        summary = gallery.list_runs(db, favorite=True)[0]
        assert (summary.content_origin, summary.style_origins, summary.tags) == (
            "chicago.jpg",
            ("udnie", "starry_night"),
            ("blue", "city"),
        )
        assert summary.style_weight == 50 and summary.has_image and summary.final_loss == pytest.approx(1.0 + b / 100)
        assert [r.id for r in gallery.list_runs(db, order="-style_weight", status="done")] == [b, c, a]
        assert [i.origin for i in gallery.list_inputs(db, "style")] == [
            "golden_gate.jpg",
            "starry_night",
            "the_scream",
            "udnie",
        ]
        assert [i.origin for i in gallery.list_inputs(db, "content")] == [
            "chicago.jpg",
            "golden_gate.jpg",
            "tubingen.jpg",
        ]


def test_pages_cover_every_run_once_in_order(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        made = [add_done_run(db, photos) for _ in range(7)]
        pages = [gallery.list_runs(db, limit=3, offset=offset) for offset in (0, 3, 6, 9)]
        assert [len(page) for page in pages] == [3, 3, 1, 0]
        assert [r.id for page in pages for r in page] == made[::-1]  # newest first
        assert [r.id for r in gallery.list_runs(db, order="oldest", limit=2)] == made[:2]


def test_compare_shows_settings_side_by_side_and_what_differs(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        a = add_done_run(db, photos, style_weight=10.0)
        b = add_done_run(db, photos, style_weight=100.0, seed=7)
        comparison = gallery.compare_runs(db, [a, b])
        assert [r.id for r in comparison.runs] == [a, b]
        assert comparison.settings["style_weight"] == [10.0, 100.0]
        assert comparison.settings["size_px"] == [64, 64]
        assert comparison.differing == ["style_weight", "seed"]
        assert comparison.loss_histories[a] == gallery.get_run(db, a).loss_history


def test_rerun_starts_from_the_stored_settings(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        sha = gallery.store_image(db, photos["udnie"], origin_kind="catalog", origin="udnie")
        run_id = gallery.add_run(db, SETTINGS.to_dict(), content_sha=sha, style_shas=[sha, sha])
        again = TransferSettings.from_dict(gallery.rerun_settings(db, run_id))
        assert again == SETTINGS
        assert again.replace(seed=5).seed == 5


def test_title_tags_and_favorite_can_be_changed(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        run_id = add_done_run(db, photos)
        gallery.set_title(db, run_id, "  Best one ")
        gallery.set_tags(db, run_id, ["a", "b", "a"])
        gallery.set_favorite(db, run_id, True)
        gallery.set_favorite(db, run_id, False)
        run = gallery.get_run(db, run_id)
        assert (run.title, run.tags, run.favorite) == ("Best one", ("a", "b"), False)
        with pytest.raises(gallery.RunNotFound):
            gallery.set_title(db, run_id + 1, "x")


def test_delete_removes_the_run_and_the_images_no_other_run_uses(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        first = add_done_run(db, photos, content="tubingen", styles=("starry_night",))
        second = add_done_run(db, photos, content="chicago", styles=("starry_night", "udnie"))
        gallery.delete_run(db, first)
        origins = {row[0] for row in db.execute("SELECT origin FROM images")}
        assert origins == {"chicago.jpg", "starry_night", "udnie"}  # the shared style stays
        assert gallery.get_run(db, second).has_image
        gallery.delete_run(db, second)
        for table in ("runs", "images", "run_styles", "results", "previews"):
            assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0, table
        with pytest.raises(gallery.RunNotFound):
            gallery.delete_run(db, second)


def test_a_running_run_is_only_deleted_when_forced(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        sha = gallery.store_image(db, photos["udnie"], origin_kind="catalog", origin="udnie")
        run_id = gallery.add_run(db, {}, content_sha=sha, style_shas=[sha], status="running")
        gallery.record_progress(db, run_id, step=1, total_steps=5, losses={"total": 1.0}, preview_png=solid_png("red"))
        with pytest.raises(GalleryError, match="still running"):
            gallery.delete_run(db, run_id)
        gallery.delete_run(db, run_id, force=True)
        assert db.execute("SELECT COUNT(*) FROM previews").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 0


def test_fifty_thumbnails_are_small(gallery_path, shared_data):
    with Image.open(shared_data / "content" / "tubingen.jpg") as photo:
        result = photo.convert("RGB")
        result.thumbnail((512, 512))
    result_png = png_of(result)
    with gallery.connect(gallery_path) as db:
        sha = gallery.store_image(db, png_of(result.resize((64, 48))), origin_kind="file", origin="t.png")
        ids = []
        for _ in range(50):
            run_id = gallery.add_run(db, {}, content_sha=sha, style_shas=[sha], status="running")
            gallery.finish_run(
                db, run_id, image_png=result_png, initial_losses={}, final_losses={}, loss_history=[],
                compile_s=0, run_s=0, device="cpu", weights_source="random",
            )  # fmt: skip
            ids.append(run_id)
        page = gallery.thumbnails(db, [r.id for r in gallery.list_runs(db, limit=50)])
    total_bytes = sum(len(data) for data in page.values())
    print(f"\n50 thumbnails: {total_bytes / 1024:.0f} KiB; one 512 px result PNG: {len(result_png) / 1024:.0f} KiB")
    assert sorted(page) == ids
    assert total_bytes < 50 * 32 * 1024  # under 32 KiB each on average
    with Image.open(io.BytesIO(page[ids[0]])) as thumbnail:
        assert max(thumbnail.size) == gallery.THUMBNAIL_PX


# --- Export and import


def test_export_run_writes_its_png_and_settings(gallery_path, photos, tmp_path):
    with gallery.connect(gallery_path) as db:
        run_id = add_done_run(db, photos, style_weight=77.0)
        png_path, json_path = gallery.export_run(db, run_id, tmp_path / "out")
        assert png_path.read_bytes() == gallery.run_image(db, run_id)
        document = json.loads(json_path.read_text())
        assert document["settings"] == gallery.rerun_settings(db, run_id)
        assert document["settings"]["style_weight"] == 77.0
        assert document["content"]["origin"] == "tubingen.jpg"


def test_export_then_import_round_trips_every_run(gallery_path, photos, tmp_path):
    with gallery.connect(gallery_path) as db:
        done = add_done_run(db, photos, styles=("starry_night", "udnie"), title="kept", tags=["x"])
        gallery.set_favorite(db, done)
        failed = add_done_run(db, photos, content="chicago")
        db.execute("DELETE FROM results WHERE run_id = ?", [failed])
        gallery.fail_run(db, failed, "boom")
        db.execute("UPDATE runs SET status = 'failed', error = 'boom' WHERE id = ?", [failed])
        assert gallery.export_gallery(db, tmp_path / "backup.zip") == 2
        originals = [gallery.get_run(db, run_id) for run_id in (done, failed)]
        images = {run_id: gallery.run_image(db, run_id) for run_id in (done, failed)}

    with gallery.connect(tmp_path / "other.db") as other:
        new_ids = gallery.import_gallery(other, tmp_path / "backup.zip")
        assert len(new_ids) == 2
        for original, new_id in zip(originals, new_ids, strict=True):
            copy = gallery.get_run(other, new_id)
            assert dataclasses_equal_except_id(original, copy)
            assert gallery.run_image(other, new_id) == images[original.id]
            for info in (copy.content, *copy.styles):
                assert gallery.input_image(other, info.sha256) == photos[Path(info.origin).stem]


def dataclasses_equal_except_id(a: gallery.Run, b: gallery.Run) -> bool:
    import dataclasses

    return dataclasses.replace(a, id=0) == dataclasses.replace(b, id=0)


def test_a_bad_export_is_refused_and_nothing_is_imported(gallery_path, photos, tmp_path):
    with gallery.connect(gallery_path) as db:
        add_done_run(db, photos)
        add_done_run(db, photos, content="chicago")
        gallery.export_gallery(db, tmp_path / "good.zip")
    with zipfile.ZipFile(tmp_path / "good.zip") as good, zipfile.ZipFile(tmp_path / "bad.zip", "w") as bad:
        for item in good.infolist():
            data = good.read(item)
            if item.filename == "manifest.json":
                manifest = json.loads(data)
                manifest["runs"][1]["settings"]["style_weight"] = "lots"
                data = json.dumps(manifest).encode()
            bad.writestr(item, data)
    (tmp_path / "notes.zip").write_text("not a zip")

    with gallery.connect(tmp_path / "target.db") as target:
        with pytest.raises(GalleryError, match="invalid settings.*style_weight"):
            gallery.import_gallery(target, tmp_path / "bad.zip")
        with pytest.raises(GalleryError, match="not a zip"):
            gallery.import_gallery(target, tmp_path / "notes.zip")
        assert gallery.count_runs(target) == 0
        assert target.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 0


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


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _assert_all_done_and_readable(db, expected: int) -> None:
    assert gallery.count_runs(db) == expected
    assert gallery.count_runs(db, status="done") == expected
    for run_id, png, thumbnail in db.execute("SELECT run_id, png, thumbnail FROM results"):
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
            env=_env(),
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
        [sys.executable, "-c", CRASHER, str(gallery_path)], env=_env(), cwd=REPO, stdout=subprocess.PIPE, text=True
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


# --- The command line


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="jaxstyle")
    commands = parser.add_subparsers(dest="command", required=True)
    cli_gallery.add_parser(commands)
    return cli_gallery.run(parser.parse_args(list(argv)))


def test_cli_lists_shows_exports_imports_and_deletes(gallery_path, photos, tmp_path, capsys):
    with gallery.connect(gallery_path) as db:
        first = add_done_run(db, photos, title="first one", tags=["t"])
        second = add_done_run(db, photos, content="chicago", styles=("udnie",))
    g = str(gallery_path)

    assert _cli("gallery", "--gallery", g, "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[1].split()[0] == str(second) and "first one" in lines[2]
    assert _cli("gallery", "--gallery", g, "list", "--json", "--style", "udnie") == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["total"] == 1 and [r["id"] for r in listed["runs"]] == [second]

    assert _cli("gallery", "--gallery", g, "show", str(first)) == 0
    shown = capsys.readouterr().out
    assert f"run {first}: first one" in shown and "style_weight: 10.0" in shown
    assert _cli("gallery", "--gallery", g, "show", str(first), "--json") == 0
    assert json.loads(capsys.readouterr().out)["settings"]["size_px"] == 64

    assert _cli("gallery", "--gallery", g, "export", "--run", str(first), str(tmp_path / "one")) == 0
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == [f"run-{first}.json", f"run-{first}.png"]
    assert _cli("gallery", "--gallery", g, "export", str(tmp_path / "all.zip")) == 0
    assert "exported 2 runs" in capsys.readouterr().out
    assert _cli("gallery", "--gallery", str(tmp_path / "copy.db"), "import", str(tmp_path / "all.zip")) == 0
    assert capsys.readouterr().out.startswith("imported 2 runs")

    assert _cli("gallery", "--gallery", g, "delete", str(first)) == 0
    with gallery.connect(gallery_path) as db:
        assert [r.id for r in gallery.list_runs(db)] == [second]


def test_cli_errors_are_one_line_and_exit_2(gallery_path, tmp_path, capsys):
    assert _cli("gallery", "--gallery", str(gallery_path), "show", "42") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no run 42" in err
    (tmp_path / "text.db").write_text("not a database")
    assert _cli("gallery", "--gallery", str(tmp_path / "text.db"), "list") == 2
    assert "not a jaxstyle gallery" in capsys.readouterr().err
    assert _cli("gallery", "--gallery", str(tmp_path), "list") == 2
    assert "is a folder" in capsys.readouterr().err
    assert _cli("gallery", "--gallery", str(gallery_path), "list", "--order", "best") == 2
    assert "unknown order 'best'" in capsys.readouterr().err


def test_python_dash_m_jaxstyle_gallery_uses_the_environments_gallery(photos):
    with gallery.connect() as db:  # JAXSTYLE_GALLERY, set per test by conftest
        run_id = add_done_run(db, photos, title="from the env")
    result = subprocess.run(
        [sys.executable, "-m", "jaxstyle", "gallery", "list", "--json"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert [r["id"] for r in json.loads(result.stdout)["runs"]] == [run_id]


def test_gallery_files_are_never_committed():
    for name in ("gallery.db", "gallery.db-wal", "gallery.db-shm"):
        assert subprocess.run(["git", "check-ignore", "-q", name], cwd=REPO, timeout=30).returncode == 0, name
