"""The gallery file's schema: its migration steps, its version, and the checks made before writing to a file.

A new column is one more migration step here (never an edit of an old one: files made by older
versions are upgraded in place, step by step), plus, if it is a setting to sort by,
its name in :data:`SETTING_COLUMNS`.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Sequence

import sqlite_utils
from sqlite_utils.migrations import Migrations

from jaxstyle.errors import GalleryError
from jaxstyle.gallery.database import GalleryDatabase
from jaxstyle.runs import METHOD_OPTIMIZE

# Settings that also get a real column (for filters and sorting); the JSON keeps all of them.
SETTING_COLUMNS = (
    "size_px",
    "iterations",
    "content_weight",
    "style_weight",
    "tv_weight",
    "optimizer",
    "learning_rate",
    "style_loss",
    "init",
    "seed",
    "pooling",
    "preserve_color",
)

MIGRATIONS = Migrations("jaxstyle")


def _execute_all(db: sqlite_utils.Database, statements: Sequence[str]) -> None:
    for statement in statements:
        db.execute(statement)


@MIGRATIONS(name="m001_initial")
def _m001_initial(db: sqlite_utils.Database) -> None:
    """v1: input images, runs with every setting, style links, result images."""
    _execute_all(
        db,
        [
            """CREATE TABLE images (
                sha256 TEXT PRIMARY KEY,
                origin_kind TEXT NOT NULL,
                origin TEXT NOT NULL,
                width INTEGER NOT NULL,
                height INTEGER NOT NULL,
                data BLOB NOT NULL,
                created TEXT NOT NULL
            )""",
            """CREATE TABLE runs (
                id INTEGER PRIMARY KEY,
                created TEXT NOT NULL,
                status TEXT NOT NULL,
                error TEXT NOT NULL DEFAULT '',
                title TEXT NOT NULL DEFAULT '',
                tags TEXT NOT NULL DEFAULT '[]',
                settings TEXT NOT NULL,
                size_px INTEGER,
                iterations INTEGER,
                content_weight REAL,
                style_weight REAL,
                tv_weight REAL,
                optimizer TEXT,
                learning_rate REAL,
                style_loss TEXT,
                init TEXT,
                seed INTEGER,
                pooling TEXT,
                preserve_color TEXT,
                content_sha TEXT NOT NULL REFERENCES images(sha256),
                weights_source TEXT NOT NULL DEFAULT '',
                device TEXT NOT NULL DEFAULT '',
                compile_s REAL,
                run_s REAL,
                initial_losses TEXT NOT NULL DEFAULT '{}',
                final_losses TEXT NOT NULL DEFAULT '{}',
                final_loss REAL,
                loss_history TEXT NOT NULL DEFAULT '[]',
                step INTEGER NOT NULL DEFAULT 0,
                total_steps INTEGER,
                finished TEXT
            )""",
            """CREATE TABLE run_styles (
                run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                position INTEGER NOT NULL,
                sha256 TEXT NOT NULL REFERENCES images(sha256),
                blend REAL NOT NULL,
                PRIMARY KEY (run_id, position)
            )""",
            """CREATE TABLE results (
                run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
                png BLOB NOT NULL,
                thumbnail BLOB NOT NULL,
                width INTEGER NOT NULL,
                height INTEGER NOT NULL
            )""",
            "CREATE INDEX runs_created ON runs(created)",
            "CREATE INDEX runs_status ON runs(status)",
        ],
    )


@MIGRATIONS(name="m002_wal", transactional=False)
def _m002_wal(db: sqlite_utils.Database) -> None:
    """WAL lets readers go on while one process writes; it can't be switched inside a transaction."""
    db.enable_wal()


@MIGRATIONS(name="m003_groups_owners_previews")
def _m003_groups_owners_previews(db: sqlite_utils.Database) -> None:
    """v3: favorites and sweep groups, run owners with a heartbeat (crash recovery), live previews."""
    runs = db.table("runs")
    runs.add_column("group_id", str)
    runs.add_column("favorite", int, not_null_default=0)
    runs.add_column("owner_pid", int)
    runs.add_column("owner_host", str)
    runs.add_column("heartbeat", float)  # unix time of the owner's last sign of life
    _execute_all(
        db,
        [
            """CREATE TABLE previews (
                run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
                png BLOB NOT NULL,
                step INTEGER NOT NULL
            )""",
            "CREATE INDEX runs_group ON runs(group_id)",
            "CREATE INDEX runs_content ON runs(content_sha)",
            "CREATE INDEX run_styles_sha ON run_styles(sha256)",
        ],
    )


@MIGRATIONS(name="m004_methods")
def _m004_methods(db: sqlite_utils.Database) -> None:
    """v4: how a run was made: "optimize" (every run before v4) or "instant" (a trained model's
    single pass), and the model's name."""
    runs = db.table("runs")
    runs.add_column("method", str, not_null_default=METHOD_OPTIMIZE)
    runs.add_column("model", str)


@MIGRATIONS(name="m005_videos")
def _m005_videos(db: sqlite_utils.Database) -> None:
    """v5: the painted video of a video run (its ``results`` row holds a poster frame), its
    container's suffix, and what it measured (frames, rate, duration, timings, flicker) as JSON."""
    db.execute(
        """CREATE TABLE videos (
            run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
            data BLOB NOT NULL,
            suffix TEXT NOT NULL,
            stats TEXT NOT NULL DEFAULT '{}'
        )"""
    )


@MIGRATIONS(name="m006_shared_files")
def _m006_shared_files(db: sqlite_utils.Database) -> None:
    """v6: result images and videos stored once, keyed by their SHA-256 as input images are, so
    runs with the same result share its bytes (an import of 500 runs pointing at one image grows
    the gallery by one image). ``results`` and ``videos`` become a run's links to them.

    Every row moves in SQL, one blob at a time (the hash is a Python function of one row's bytes).
    """
    db.register_function(lambda data: hashlib.sha256(data).hexdigest(), name="jaxstyle_sha256", deterministic=True)
    _execute_all(
        db,
        [
            """CREATE TABLE result_images (
                sha256 TEXT PRIMARY KEY,
                png BLOB NOT NULL,
                thumbnail BLOB NOT NULL,
                width INTEGER NOT NULL,
                height INTEGER NOT NULL
            )""",
            """CREATE TABLE video_files (
                sha256 TEXT PRIMARY KEY,
                data BLOB NOT NULL,
                suffix TEXT NOT NULL
            )""",
            """INSERT OR IGNORE INTO result_images
                SELECT jaxstyle_sha256(png), png, thumbnail, width, height FROM results ORDER BY run_id""",
            """INSERT OR IGNORE INTO video_files
                SELECT jaxstyle_sha256(data), data, suffix FROM videos ORDER BY run_id""",
            """CREATE TABLE run_results (
                run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
                sha256 TEXT NOT NULL REFERENCES result_images(sha256)
            )""",
            "INSERT INTO run_results SELECT run_id, jaxstyle_sha256(png) FROM results",
            """CREATE TABLE run_videos (
                run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
                sha256 TEXT NOT NULL REFERENCES video_files(sha256),
                stats TEXT NOT NULL DEFAULT '{}'
            )""",
            "INSERT INTO run_videos SELECT run_id, jaxstyle_sha256(data), stats FROM videos",
            "DROP TABLE results",
            "DROP TABLE videos",
            "ALTER TABLE run_results RENAME TO results",
            "ALTER TABLE run_videos RENAME TO videos",
            "CREATE INDEX results_sha ON results(sha256)",
            "CREATE INDEX videos_sha ON videos(sha256)",
        ],
    )


@MIGRATIONS(name="m007_owners")
def _m007_owners(db: sqlite_utils.Database) -> None:
    """v7, for shared sites: a run's owner (the signed-in user's OpenID Connect subject; NULL for a
    personal gallery's runs, which belong to the admins of a shared one), its share link's token
    (unguessable, NULL when not shared), whether it is published on the public page, and each
    owner's own name for an input (an image's bytes are stored once; its origin, a file name or
    URL, is the owner's and is never shown to another user), and who owns each trained or imported
    model (a model not listed is the admins')."""
    runs = db.table("runs")
    runs.add_column("owner", str)
    runs.add_column("share_token", str)
    runs.add_column("public", int, not_null_default=0)
    _execute_all(
        db,
        [
            "CREATE INDEX runs_owner ON runs(owner)",
            "CREATE UNIQUE INDEX runs_share_token ON runs(share_token)",
            """CREATE TABLE image_origins (
                sha256 TEXT NOT NULL REFERENCES images(sha256) ON DELETE CASCADE,
                owner TEXT NOT NULL,
                origin_kind TEXT NOT NULL,
                origin TEXT NOT NULL,
                PRIMARY KEY (sha256, owner)
            )""",
            # Trained and imported models live as files beside the gallery; who owns each is kept here.
            "CREATE TABLE model_owners (name TEXT PRIMARY KEY, owner TEXT NOT NULL)",
        ],
    )


SCHEMA_VERSION = len(MIGRATIONS._migrations)
_MIGRATION_NAMES = [migration.name for migration in MIGRATIONS._migrations]


def schema_version(db: sqlite_utils.Database) -> int:
    """How many of the gallery's migration steps this file has (``SCHEMA_VERSION`` once opened)."""
    return len(MIGRATIONS.applied(db))


def check_is_gallery(db: GalleryDatabase) -> None:
    """Refuse another program's SQLite file, or a gallery from a newer jaxstyle, before writing to it."""
    # Tables first, then the record: a concurrent first migration commits both at once, so this
    # order never sees its tables without its record.
    others = set(db.table_names()) - {MIGRATIONS.migrations_table}
    applied = [migration.name for migration in MIGRATIONS.applied(db)]
    unknown = [name for name in applied if name not in _MIGRATION_NAMES]
    if unknown:
        raise GalleryError(
            f"{db.path} was written by a newer version of jaxstyle (schema steps {', '.join(unknown)}); "
            "update jaxstyle to open it"
        )
    if others and not applied:
        raise GalleryError(
            f"{db.path} is an SQLite database but not a jaxstyle gallery (it has tables "
            f"{', '.join(sorted(others)[:5])}); it was left unchanged. Choose another file with --gallery "
            "or JAXSTYLE_GALLERY."
        )


def migrate(db: GalleryDatabase) -> None:
    """Apply pending migrations, tolerating other processes that migrate the same file at once.

    Each step is applied together with its record, so when two processes race the loser's step
    fails (table exists, duplicate record, busy) and is rolled back; it then re-reads what is
    still pending.
    """
    deadline = time.monotonic() + db.timeout_s
    while MIGRATIONS.pending(db):
        try:
            MIGRATIONS.apply(db)
        except (sqlite3.IntegrityError, sqlite3.OperationalError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
