"""The gallery: every run, its settings, inputs, losses and result image, in one SQLite file.

People come back to the gallery to find what they made and to learn which settings give which
look, so it keeps every setting, the input images (each stored once, by SHA-256), the loss
history and the result. It lives in ``gallery.db`` at the project root unless
``JAXSTYLE_GALLERY`` (or a ``path``) says otherwise (see :func:`jaxstyle.paths.default_gallery_path`).

Open one connection per operation or per thread, never share one across threads::

    with gallery.connect(path) as db:
        run_id = gallery.add_run(db, settings.to_dict(), content_sha=c, style_shas=[s])

Public API (``db`` is what :func:`connect` returns):

- ``connect(path=None, *, timeout_s=10.0) -> sqlite_utils.Database``: open (creating, migrating,
  WAL, foreign keys, busy timeout) and mark runs of dead processes failed.
- ``store_image(db, data, *, origin_kind, origin) -> sha256``: a content/style input, stored once.
- ``add_run(db, settings, *, content_sha, style_shas, style_blend=None, title=None, tags=(),
  group_id=None, status="queued", weights_source="", device="") -> int``
- ``start_run(db, run_id, *, total_steps=None) -> bool``; ``record_progress(db, run_id, *, step,
  total_steps, losses, preview_png=None) -> bool``; ``finish_run(db, run_id, *, image_png,
  initial_losses, final_losses, loss_history, compile_s, run_s, device, weights_source)``;
  ``fail_run(db, run_id, error, *, cancelled=False) -> bool``.
- ``get_run(db, run_id) -> Run``; ``run_image``/``run_thumbnail``/``run_preview(db, run_id) ->
  bytes | None``; ``thumbnails(db, run_ids) -> dict[int, bytes]``; ``input_image(db, sha256) -> bytes``.
- ``list_runs(db, *, style, content, tag, favorite, status, since, until, text, group_id, order,
  limit, offset) -> list[RunSummary]``; ``count_runs(db, <same filters>) -> int``;
  ``list_inputs(db, kind) -> list[ImageInfo]``.
- ``compare_runs(db, run_ids) -> Comparison``; ``rerun_settings(db, run_id) -> dict``.
- ``delete_run(db, run_id, *, force=False)``; ``set_title``, ``set_tags``, ``set_favorite``.
- ``export_run(db, run_id, dest_dir) -> (png_path | None, json_path)``;
  ``export_gallery(db, zip_path, *, run_ids=None) -> int``; ``import_gallery(db, zip_path) -> list[int]``.
- ``recover_stale_runs(db, *, stale_after_s=STALE_AFTER_S) -> list[int]``; ``schema_version(db) -> int``.
- ``RUN_STATUSES``, ``ORDERS``, ``SCHEMA_VERSION``; errors: :class:`~jaxstyle.errors.GalleryError`
  and its subclass :class:`RunNotFound`.

Reliability: the file is in WAL mode (synchronous=NORMAL) with a busy timeout, every multi-row change is one
``BEGIN IMMEDIATE`` transaction, and a result image is written in the same transaction that
marks its run done, so a crash leaves either a finished run or an unfinished one, never half of
one. Each queued/running run records its owner (pid, host) and a heartbeat; :func:`connect`
marks failed the runs whose owner process is gone (same host) or whose heartbeat is older than
:data:`STALE_AFTER_S`. A file that is not a gallery, is locked too long, or can't be written
raises :class:`~jaxstyle.errors.GalleryError` naming the file, and the file is left as it was.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import json
import math
import os
import socket
import sqlite3
import tempfile
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from typing import Any

import sqlite_utils
from PIL import Image
from sqlite_utils.migrations import Migrations

from jaxstyle import images, paths
from jaxstyle.errors import GalleryError, ImageError, SettingsError

RUN_STATUSES = ("queued", "running", "done", "failed", "cancelled")
ACTIVE_STATUSES = ("queued", "running")
ORIGIN_KINDS = ("upload", "file", "url", "catalog")
STALE_AFTER_S = 600.0  # a running run with no heartbeat for this long is considered dead
THUMBNAIL_PX = 256  # long side of the stored JPEG thumbnails
EXPORT_FORMAT = "jaxstyle-gallery"
EXPORT_VERSION = 1

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

# Sort orders for list_runs: name -> SQL. Numeric ones ascend; "-name" descends.
ORDERS = {
    "newest": "runs.created DESC, runs.id DESC",
    "oldest": "runs.created ASC, runs.id ASC",
    "title": "runs.title COLLATE NOCASE {dir}, runs.id {dir}",
    "loss": "runs.final_loss IS NULL, runs.final_loss {dir}, runs.id {dir}",
    **{name: f"runs.{name} {{dir}}, runs.id {{dir}}" for name in SETTING_COLUMNS},
}


class RunNotFound(GalleryError, LookupError):
    """No run (or input image) with that id is in the gallery."""


# --- Records handed to callers


@dataclasses.dataclass(frozen=True)
class ImageInfo:
    """An input image: its hash, where it came from, its size, and (for a run's styles) its blend weight."""

    sha256: str
    origin_kind: str  # "upload", "file", "url" or "catalog"
    origin: str  # the upload's file name, the path, the URL or the catalog id
    width: int
    height: int
    blend: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Run:
    """Everything the gallery knows about one run."""

    id: int
    created: datetime  # UTC
    status: str  # one of RUN_STATUSES
    error: str  # why it failed or was cancelled; "" otherwise
    title: str
    tags: tuple[str, ...]
    favorite: bool
    group_id: str | None
    settings: dict[str, Any]  # TransferSettings.to_dict()
    weights_source: str
    device: str
    compile_s: float | None
    run_s: float | None
    initial_losses: dict[str, float]
    final_losses: dict[str, float]
    loss_history: list[dict[str, float]]  # {"step", "size_px", "total", "content", "style", "tv"}
    content: ImageInfo
    styles: tuple[ImageInfo, ...]  # each with its blend weight
    step: int  # progress: steps done so far
    total_steps: int | None
    finished: datetime | None  # UTC, when it became done/failed/cancelled
    has_image: bool

    @property
    def final_loss(self) -> float | None:
        return self.final_losses.get("total")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (times as ISO 8601 strings)."""
        data = dataclasses.asdict(self)
        data["created"] = self.created.isoformat()
        data["finished"] = self.finished.isoformat() if self.finished else None
        data["tags"] = list(self.tags)
        data["styles"] = [style.to_dict() for style in self.styles]
        return data


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """One row of :func:`list_runs`: enough for a gallery card or a table line."""

    id: int
    created: datetime
    status: str
    error: str
    title: str
    tags: tuple[str, ...]
    favorite: bool
    group_id: str | None
    size_px: int
    iterations: int
    content_weight: float
    style_weight: float
    tv_weight: float
    optimizer: str
    style_loss: str
    content_origin: str
    style_origins: tuple[str, ...]
    final_loss: float | None
    has_image: bool

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["created"] = self.created.isoformat()
        data["tags"] = list(self.tags)
        data["style_origins"] = list(self.style_origins)
        return data


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Several runs side by side (see :func:`compare_runs`)."""

    runs: tuple[Run, ...]
    settings: dict[str, list[Any]]  # setting name -> its value in each run, in run order
    differing: list[str]  # the setting names whose values are not all equal
    loss_histories: dict[int, list[dict[str, float]]]  # run id -> its loss history


# --- Connection


class GalleryDatabase(sqlite_utils.Database):
    """A :class:`sqlite_utils.Database` that remembers its file, so errors can name it."""

    def __init__(self, conn: sqlite3.Connection, *, path: Path, timeout_s: float) -> None:
        self.path = path
        self.timeout_s = timeout_s
        super().__init__(conn, execute_plugins=False)


def _label(db: sqlite_utils.Database) -> str:
    return str(getattr(db, "path", None) or "the gallery database")


def _gallery_error(where: str, error: BaseException, timeout_s: float | None = None) -> GalleryError:
    """A person-readable GalleryError for an sqlite3/OS error on the gallery file ``where``."""
    text = str(error)
    lower = text.lower()
    if "disk image is malformed" in lower:
        return GalleryError(f"{where} is damaged ({text}); it was left unchanged. Restore it from an export")
    if "file is not a database" in lower:
        return GalleryError(
            f"{where} is not a jaxstyle gallery (not a readable SQLite database); it was left unchanged. "
            "Move it away or choose another file with --gallery or JAXSTYLE_GALLERY."
        )
    if "locked" in lower or "busy" in lower:
        waited = f" for more than {timeout_s:g} s" if timeout_s is not None else ""
        return GalleryError(f"{where} is locked by another program{waited}; try again when it is done")
    if "readonly" in lower or "read-only" in lower:
        return GalleryError(f"{where} is read-only; choose a writable gallery file with --gallery or JAXSTYLE_GALLERY")
    if "unable to open" in lower or "disk i/o" in lower:
        return GalleryError(
            f"cannot open {where}: its folder is missing or not writable (the gallery needs to write beside it)"
        )
    if "disk is full" in lower or "disk full" in lower:
        return GalleryError(f"cannot write {where}: the disk is full")
    return GalleryError(f"{where}: {text}")


def _guarded(func):
    """Turn sqlite3 errors raised in ``func(db, ...)`` into a GalleryError naming the file."""

    @functools.wraps(func)
    def wrapper(db, *args, **kwargs):
        try:
            return func(db, *args, **kwargs)
        except sqlite3.Error as error:
            raise _gallery_error(_label(db), error, getattr(db, "timeout_s", None)) from error

    return wrapper


@contextlib.contextmanager
def _transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """One write transaction that takes the write lock up front.

    A plain ``BEGIN`` (what ``db.atomic()`` issues) that reads and then writes can fail at once
    with SQLITE_BUSY in WAL mode when another writer got in between; ``BEGIN IMMEDIATE`` waits
    for the busy timeout instead. Writes inside (sqlite-utils' ``atomic`` included) nest as
    savepoints.
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.rollback()
        raise
    else:
        try:
            db.commit()
        except BaseException:
            db.rollback()
            raise


def connect(path: str | os.PathLike | None = None, *, timeout_s: float = 10.0) -> GalleryDatabase:
    """Open the gallery at ``path`` (default :func:`jaxstyle.paths.default_gallery_path`).

    Creates the file (and its folder) if missing, applies pending migrations, checks WAL mode,
    turns foreign keys on, waits up to ``timeout_s`` for locks, and marks failed the runs left
    queued/running by processes that are gone (:func:`recover_stale_runs`). Use it as a context
    manager (``with connect() as db:``) and only in the thread that opened it.

    Raises:
        GalleryError: the file is not a gallery, is locked too long, or can't be created or written.
    """
    path = Path(path if path is not None else paths.default_gallery_path()).expanduser()
    if path.is_dir():
        raise GalleryError(f"{path} is a folder; the gallery must be a file such as {path / 'gallery.db'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise GalleryError(f"cannot create the folder for the gallery {path}: {error.strerror}") from None
    try:
        conn = sqlite3.connect(path, timeout=timeout_s)
    except sqlite3.Error as error:
        raise _gallery_error(str(path), error, timeout_s) from error
    try:
        db = GalleryDatabase(conn, path=path, timeout_s=timeout_s)
        db.execute("PRAGMA foreign_keys = ON")
        # SQLite's advice for WAL: still safe from corruption and durable when a process dies;
        # only a power cut may undo the last commits. FULL costs an fsync per commit.
        db.execute("PRAGMA synchronous = NORMAL")
        _check_is_gallery(db)
        _migrate(db)
        recover_stale_runs(db)
    except sqlite3.Error as error:
        conn.close()
        raise _gallery_error(str(path), error, timeout_s) from error
    except BaseException:
        conn.close()
        raise
    return db


# --- Schema and migrations

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


SCHEMA_VERSION = len(MIGRATIONS._migrations)
_MIGRATION_NAMES = [migration.name for migration in MIGRATIONS._migrations]


def schema_version(db: sqlite_utils.Database) -> int:
    """How many of the gallery's migration steps this file has (``SCHEMA_VERSION`` once opened)."""
    return len(MIGRATIONS.applied(db))


def _check_is_gallery(db: GalleryDatabase) -> None:
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


def _migrate(db: GalleryDatabase) -> None:
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


# --- Owners, heartbeats and crash recovery


def _owner() -> tuple[int, str]:
    return os.getpid(), socket.gethostname()


def _pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (not Linux): trust kill()
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _stale_reason(row: Mapping[str, Any], now: float, stale_after_s: float, host: str) -> str | None:
    pid, owner_host, heartbeat = row["owner_pid"], row["owner_host"], row["heartbeat"]
    if pid is None or owner_host is None:
        return f"interrupted: it was left {row['status']} by a process that is gone"
    if owner_host == host and not _pid_alive(pid):
        return f"interrupted: the process that ran it (pid {pid} on {owner_host}) ended before it finished"
    idle_s = now - (heartbeat or 0.0)
    # A queued run of a live local process is just waiting its turn; anything else must keep beating.
    waiting = row["status"] == "queued" and owner_host == host
    if idle_s > stale_after_s and not waiting:
        return (
            f"interrupted: no sign of life from pid {pid} on {owner_host} for {idle_s / 60:.0f} min "
            "(it was stopped or hung)"
        )
    return None


@_guarded
def recover_stale_runs(db: sqlite_utils.Database, *, stale_after_s: float = STALE_AFTER_S) -> list[int]:
    """Mark failed the queued/running runs whose owner process is gone or silent too long.

    A run's owner is the process that added or started it. On this host a run fails when that
    pid no longer exists; on any host it fails when its heartbeat (updated by
    :func:`record_progress`) is older than ``stale_after_s`` (queued runs of a live local
    process excepted: they are waiting their turn). Runs of live owners are left alone, so any
    number of processes can open the same file. Called by :func:`connect`.

    Returns:
        The ids of the runs marked failed.
    """
    rows = list(
        db.query("SELECT id, status, owner_pid, owner_host, heartbeat FROM runs WHERE status IN ('queued', 'running')")
    )
    now, host = time.time(), socket.gethostname()
    failed = []
    for row in rows:
        reason = _stale_reason(row, now, stale_after_s, host)
        if reason is None:
            continue
        # Only if nothing changed meanwhile: the owner may have just reported or finished.
        cursor = db.execute(
            "UPDATE runs SET status = 'failed', error = ?, finished = ? "
            "WHERE id = ? AND status = ? AND heartbeat IS ? AND owner_pid IS ?",
            [reason, _now_iso(), row["id"], row["status"], row["heartbeat"], row["owner_pid"]],
        )
        if cursor.rowcount:
            failed.append(row["id"])
    return failed


# --- Small helpers


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _to_utc_iso(value: datetime | date | str, *, end_of_day: bool) -> str:
    """A filter bound as the stored format. Naive times are local; a bare date means its whole day."""
    if isinstance(value, str):
        try:
            parsed: datetime | date = (
                date.fromisoformat(value) if len(value.strip()) == 10 else datetime.fromisoformat(value)
            )
        except ValueError:
            raise GalleryError(f"not a date or time: {value!r} (use e.g. 2025-01-31 or 2025-01-31T18:00)") from None
        value = parsed
    if not isinstance(value, datetime):
        day = value + timedelta(days=1) if end_of_day else value
        value = datetime.combine(day, dt_time())
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _finite(value: Any) -> float | None:
    """A float for JSON; NaN/inf (a diverged run) become None, since standard JSON has no NaN."""
    number = float(value)
    return number if math.isfinite(number) else None


def _float_dict(values: Mapping[str, Any], what: str) -> dict[str, float | None]:
    try:
        return {str(key): _finite(value) for key, value in dict(values).items()}
    except (TypeError, ValueError) as error:
        raise GalleryError(f"{what} must map names to numbers: {error}") from None


def _history(entries: Sequence[Mapping[str, Any]]) -> list[dict[str, float | None]]:
    out = []
    for entry in entries:
        try:
            out.append({str(k): int(v) if k in ("step", "size_px") else _finite(v) for k, v in dict(entry).items()})
        except (TypeError, ValueError) as error:
            raise GalleryError(f"loss_history entries must map names to numbers: {error}") from None
    return out


def _image_size(data: bytes, what: str) -> tuple[int, int]:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception as error:  # noqa: BLE001 — PIL raises many kinds for a bad file
        raise ImageError(f"{what} is not an image we can read ({type(error).__name__})") from None


def _thumbnail(png: bytes, what: str) -> tuple[bytes, int, int]:
    """A small JPEG of an image (long side THUMBNAIL_PX), and the image's full width and height."""
    try:
        with Image.open(io.BytesIO(png)) as image:
            image.load()
            return images.thumbnail_bytes(image, THUMBNAIL_PX), image.width, image.height
    except Exception as error:  # noqa: BLE001 — PIL raises many kinds for a bad file
        raise ImageError(f"{what} is not an image we can read ({type(error).__name__})") from None


def _normalize_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Validated, complete settings (TransferSettings.to_dict() form). Raises SettingsError."""
    # Imported here: settings pulls in JAX (for the layer names), which plain gallery reads don't need.
    from jaxstyle.settings import TransferSettings

    if not isinstance(settings, Mapping):
        raise SettingsError(f"settings must be a dict, got {type(settings).__name__}")
    return TransferSettings.from_dict(settings).to_dict()


def _clean_tags(tags: Sequence[str] | str) -> list[str]:
    if isinstance(tags, str):
        tags = tags.split(",")
    out: list[str] = []
    for tag in tags:
        tag = str(tag).strip()
        if tag and tag not in out:
            out.append(tag)
    return out


def _require_run(db: sqlite_utils.Database, run_id: int) -> dict[str, Any]:
    rows = list(db.query("SELECT * FROM runs WHERE id = ?", [int(run_id)]))
    if not rows:
        raise RunNotFound(f"no run {run_id} in the gallery {_label(db)}")
    return rows[0]


def _image_info(row: Mapping[str, Any], blend: float | None = None) -> ImageInfo:
    return ImageInfo(row["sha256"], row["origin_kind"], row["origin"], row["width"], row["height"], blend)


# --- Writing runs


@_guarded
def store_image(db: sqlite_utils.Database, data: bytes, *, origin_kind: str, origin: str) -> str:
    """Store a content or style input once (keyed by its SHA-256), as given, with its origin.

    Args:
        data: the file's bytes (JPEG, PNG, ...), kept exactly so a re-run sees the same input.
        origin_kind: "upload", "file", "url" or "catalog".
        origin: the upload's file name, the path, the URL or the catalog style id.

    Returns:
        The hex SHA-256 of ``data``. Storing the same bytes again keeps the first origin.

    Raises:
        ImageError: ``data`` is not an image.
    """
    if origin_kind not in ORIGIN_KINDS:
        raise GalleryError(f"origin_kind must be one of {', '.join(ORIGIN_KINDS)}, got {origin_kind!r}")
    data = bytes(data)
    width, height = _image_size(data, origin or "the input image")
    sha = images.sha256_hex(data)
    db.execute(
        "INSERT OR IGNORE INTO images (sha256, origin_kind, origin, width, height, data, created) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [sha, origin_kind, str(origin), width, height, data, _now_iso()],
    )
    return sha


def _blend_weights(n_styles: int, style_blend: Sequence[float] | None) -> list[float]:
    if style_blend is None:
        return [1.0 / n_styles] * n_styles
    weights = [float(w) for w in style_blend]
    if len(weights) != n_styles:
        raise SettingsError(f"style_blend needs one weight per style image ({n_styles}), got {len(weights)}")
    total = sum(weights)
    if any(not math.isfinite(w) or w < 0 for w in weights) or total <= 0:
        raise SettingsError(f"style_blend must be non-negative numbers with a positive sum, got {weights}")
    return [w / total for w in weights]


def _insert_run(db: sqlite_utils.Database, row: dict[str, Any], style_shas: Sequence[str], blend: list[float]) -> int:
    """Insert a run row and its style links (inside the caller's transaction); returns the new id."""
    for column in SETTING_COLUMNS:
        row[column] = row["settings_dict"].get(column)
    row["settings"] = json.dumps(row.pop("settings_dict"))
    wanted = {row["content_sha"], *style_shas}
    present = {
        r["sha256"]
        for r in db.query(f"SELECT sha256 FROM images WHERE sha256 IN ({', '.join('?' * len(wanted))})", list(wanted))
    }
    missing = sorted(wanted - present)
    if missing:
        raise GalleryError(f"input image {missing[0][:12]}… is not in the gallery {_label(db)}; store it first")
    columns = list(row)
    cursor = db.execute(
        f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
        [row[c] for c in columns],
    )
    run_id = int(cursor.lastrowid)
    for position, (sha, weight) in enumerate(zip(style_shas, blend, strict=True)):
        db.execute(
            "INSERT INTO run_styles (run_id, position, sha256, blend) VALUES (?, ?, ?, ?)",
            [run_id, position, sha, weight],
        )
    return run_id


@_guarded
def add_run(
    db: sqlite_utils.Database,
    settings: Mapping[str, Any],
    *,
    content_sha: str,
    style_shas: Sequence[str],
    style_blend: Sequence[float] | None = None,
    title: str | None = None,
    tags: Sequence[str] = (),
    group_id: str | None = None,
    status: str = "queued",
    weights_source: str = "",
    device: str = "",
) -> int:
    """Add a run when it is queued or starts; its inputs must be stored first (:func:`store_image`).

    Args:
        settings: ``TransferSettings.to_dict()``; validated and stored complete.
        content_sha, style_shas: the inputs' hashes from :func:`store_image`.
        style_blend: weight per style image (normalized to sum 1); default: the settings'
            ``style_blend``, else equal.
        status: "queued" or "running".

    Returns:
        The new run's id.

    Raises:
        SettingsError: invalid settings or blend weights.
        GalleryError: unknown input image, bad status, or the file can't be written.
    """
    if status not in ACTIVE_STATUSES:
        raise GalleryError(f"a new run's status must be queued or running, got {status!r}")
    style_shas = list(style_shas)
    if not style_shas:
        raise SettingsError("a run needs at least one style image")
    if style_blend is not None and isinstance(settings, Mapping):
        # Kept in the settings too, so a re-run from them blends the styles the same way.
        settings = {**settings, "style_blend": [float(w) for w in style_blend]}
    settings_dict = _normalize_settings(settings)
    style_blend = settings_dict.get("style_blend")
    blend = _blend_weights(len(style_shas), style_blend)
    pid, host = _owner()
    row = {
        "created": _now_iso(),
        "status": status,
        "title": (title or "").strip(),
        "tags": json.dumps(_clean_tags(tags)),
        "settings_dict": settings_dict,
        "content_sha": content_sha,
        "weights_source": weights_source,
        "device": device,
        "group_id": group_id,
        "owner_pid": pid,
        "owner_host": host,
        "heartbeat": time.time(),
    }
    with _transaction(db):
        return _insert_run(db, row, style_shas, blend)


@_guarded
def start_run(db: sqlite_utils.Database, run_id: int, *, total_steps: int | None = None) -> bool:
    """Mark a run running, owned by this process (pid and host) with a fresh heartbeat.

    Returns:
        True if the run is now running; False if it had already ended (e.g. cancelled while
        queued), in which case the caller should not run it.
    """
    pid, host = _owner()
    with _transaction(db):
        _require_run(db, run_id)
        cursor = db.execute(
            "UPDATE runs SET status = 'running', owner_pid = ?, owner_host = ?, heartbeat = ?, step = 0, "
            "total_steps = COALESCE(?, total_steps) WHERE id = ? AND status IN ('queued', 'running')",
            [pid, host, time.time(), total_steps, int(run_id)],
        )
        return cursor.rowcount > 0


@_guarded
def record_progress(
    db: sqlite_utils.Database,
    run_id: int,
    *,
    step: int,
    total_steps: int,
    losses: Mapping[str, float],
    preview_png: bytes | None = None,
) -> bool:
    """Record a run's progress: step, latest losses (appended to its loss history), heartbeat,
    and optionally a preview image (replacing the previous one).

    Returns:
        True if the run is still queued/running; False if it has ended meanwhile (cancelled,
        or marked failed by another process), which the caller may take as a reason to stop.

    Raises:
        RunNotFound: the run was deleted.
    """
    entry = {"step": int(step), **_float_dict(losses, "losses")}
    pid, host = _owner()
    with _transaction(db):
        _require_run(db, run_id)
        cursor = db.execute(
            "UPDATE runs SET step = ?, total_steps = ?, heartbeat = ?, owner_pid = ?, owner_host = ?, "
            "status = 'running', loss_history = json_insert(loss_history, '$[#]', json(?)) "
            "WHERE id = ? AND status IN ('queued', 'running')",
            [int(step), int(total_steps), time.time(), pid, host, json.dumps(entry), int(run_id)],
        )
        if cursor.rowcount and preview_png is not None:
            db.execute(
                "INSERT INTO previews (run_id, png, step) VALUES (?, ?, ?) "
                "ON CONFLICT (run_id) DO UPDATE SET png = excluded.png, step = excluded.step",
                [int(run_id), bytes(preview_png), int(step)],
            )
        return cursor.rowcount > 0


@_guarded
def finish_run(
    db: sqlite_utils.Database,
    run_id: int,
    *,
    image_png: bytes,
    initial_losses: Mapping[str, float],
    final_losses: Mapping[str, float],
    loss_history: Sequence[Mapping[str, Any]],
    compile_s: float,
    run_s: float,
    device: str,
    weights_source: str,
) -> None:
    """Store a run's result and mark it done, in one transaction (a thumbnail is made here).

    Finishing wins over an earlier "failed" from crash recovery: a finished image is never lost.

    Raises:
        ImageError: ``image_png`` is not an image (nothing is written).
        RunNotFound: the run was deleted.
    """
    thumbnail, width, height = _thumbnail(bytes(image_png), f"the result of run {run_id}")
    final = _float_dict(final_losses, "final_losses")
    values = {
        "initial_losses": json.dumps(_float_dict(initial_losses, "initial_losses")),
        "final_losses": json.dumps(final),
        "final_loss": final.get("total"),
        "loss_history": json.dumps(_history(loss_history)),
        "compile_s": float(compile_s),
        "run_s": float(run_s),
        "device": device,
        "weights_source": weights_source,
    }
    with _transaction(db):
        _require_run(db, run_id)
        db.execute(
            "INSERT INTO results (run_id, png, thumbnail, width, height) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (run_id) DO UPDATE SET png = excluded.png, thumbnail = excluded.thumbnail, "
            "width = excluded.width, height = excluded.height",
            [int(run_id), bytes(image_png), thumbnail, width, height],
        )
        assignments = ", ".join(f"{column} = ?" for column in values)
        db.execute(
            f"UPDATE runs SET status = 'done', error = '', finished = ?, step = COALESCE(total_steps, step), "
            f"{assignments} WHERE id = ?",
            [_now_iso(), *values.values(), int(run_id)],
        )
        db.execute("DELETE FROM previews WHERE run_id = ?", [int(run_id)])


@_guarded
def fail_run(db: sqlite_utils.Database, run_id: int, error: str, *, cancelled: bool = False) -> bool:
    """Mark a run failed (or cancelled) with the reason; a run that is done stays done.

    Returns:
        True if the status changed (False for a run that was already done).
    """
    status = "cancelled" if cancelled else "failed"
    with _transaction(db):
        _require_run(db, run_id)
        cursor = db.execute(
            "UPDATE runs SET status = ?, error = ?, finished = ? WHERE id = ? AND status != 'done'",
            [status, str(error) or status, _now_iso(), int(run_id)],
        )
        return cursor.rowcount > 0


# --- Reading runs


def _run_from_row(db: sqlite_utils.Database, row: Mapping[str, Any]) -> Run:
    content = list(db.query("SELECT * FROM images WHERE sha256 = ?", [row["content_sha"]]))[0]
    styles = db.query(
        "SELECT images.*, run_styles.blend FROM run_styles JOIN images USING (sha256) "
        "WHERE run_styles.run_id = ? ORDER BY run_styles.position",
        [row["id"]],
    )
    has_image = bool(list(db.query("SELECT 1 AS x FROM results WHERE run_id = ?", [row["id"]])))
    return Run(
        id=row["id"],
        created=datetime.fromisoformat(row["created"]),
        status=row["status"],
        error=row["error"] or "",
        title=row["title"] or "",
        tags=tuple(json.loads(row["tags"] or "[]")),
        favorite=bool(row["favorite"]),
        group_id=row["group_id"],
        settings=json.loads(row["settings"]),
        weights_source=row["weights_source"] or "",
        device=row["device"] or "",
        compile_s=row["compile_s"],
        run_s=row["run_s"],
        initial_losses=json.loads(row["initial_losses"] or "{}"),
        final_losses=json.loads(row["final_losses"] or "{}"),
        loss_history=json.loads(row["loss_history"] or "[]"),
        content=_image_info(content),
        styles=tuple(_image_info(style, style["blend"]) for style in styles),
        step=row["step"] or 0,
        total_steps=row["total_steps"],
        finished=_parse_time(row["finished"]),
        has_image=has_image,
    )


@_guarded
def get_run(db: sqlite_utils.Database, run_id: int) -> Run:
    """Everything about one run. Raises RunNotFound for an unknown id."""
    return _run_from_row(db, _require_run(db, run_id))


def _blob(db: sqlite_utils.Database, sql: str, key: Any) -> bytes | None:
    row = db.execute(sql, [key]).fetchone()
    return bytes(row[0]) if row else None


@_guarded
def run_image(db: sqlite_utils.Database, run_id: int) -> bytes | None:
    """The full-size result PNG, or None if the run has none (yet)."""
    return _blob(db, "SELECT png FROM results WHERE run_id = ?", int(run_id))


@_guarded
def run_thumbnail(db: sqlite_utils.Database, run_id: int) -> bytes | None:
    """The result's small JPEG thumbnail, or None."""
    return _blob(db, "SELECT thumbnail FROM results WHERE run_id = ?", int(run_id))


@_guarded
def thumbnails(db: sqlite_utils.Database, run_ids: Sequence[int]) -> dict[int, bytes]:
    """Thumbnails of several runs in one query (runs without a result are left out)."""
    ids = [int(i) for i in run_ids]
    if not ids:
        return {}
    rows = db.execute(
        f"SELECT run_id, thumbnail FROM results WHERE run_id IN ({', '.join('?' * len(ids))})", ids
    ).fetchall()
    return {run_id: bytes(data) for run_id, data in rows}


@_guarded
def run_preview(db: sqlite_utils.Database, run_id: int) -> bytes | None:
    """The latest preview PNG recorded during the run, or None (previews are dropped when it finishes)."""
    return _blob(db, "SELECT png FROM previews WHERE run_id = ?", int(run_id))


@_guarded
def input_image(db: sqlite_utils.Database, sha256: str) -> bytes:
    """The stored bytes of an input image. Raises RunNotFound if no such image is stored."""
    data = _blob(db, "SELECT data FROM images WHERE sha256 = ?", sha256)
    if data is None:
        raise RunNotFound(f"no input image {sha256[:12]}… in the gallery {_label(db)}")
    return data


@_guarded
def rerun_settings(db: sqlite_utils.Database, run_id: int) -> dict[str, Any]:
    """A stored run's settings (``TransferSettings.from_dict`` input), the start of a new run."""
    return json.loads(_require_run(db, run_id)["settings"])


@_guarded
def list_inputs(db: sqlite_utils.Database, kind: str) -> list[ImageInfo]:
    """The content ("content") or style ("style") images used by at least one run, by origin."""
    if kind == "content":
        used = "SELECT content_sha FROM runs"
    elif kind == "style":
        used = "SELECT sha256 FROM run_styles"
    else:
        raise GalleryError(f"kind must be 'content' or 'style', got {kind!r}")
    rows = db.query(
        "SELECT sha256, origin_kind, origin, width, height FROM images "
        f"WHERE sha256 IN ({used}) ORDER BY origin COLLATE NOCASE, sha256"
    )
    return [_image_info(row) for row in rows]


# --- Listing and filtering


def _where(
    *,
    style: str | None,
    content: str | None,
    tag: str | None,
    favorite: bool | None,
    status: str | Sequence[str] | None,
    since: datetime | date | str | None,
    until: datetime | date | str | None,
    text: str | None,
    group_id: str | None,
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if style:
        clauses.append(
            "EXISTS (SELECT 1 FROM run_styles JOIN images USING (sha256) "
            "WHERE run_styles.run_id = runs.id AND (images.sha256 = ? OR images.origin = ?))"
        )
        params += [style, style]
    if content:
        clauses.append("runs.content_sha IN (SELECT sha256 FROM images WHERE sha256 = ? OR origin = ?)")
        params += [content, content]
    if tag:
        clauses.append("EXISTS (SELECT 1 FROM json_each(runs.tags) WHERE json_each.value = ?)")
        params.append(tag.strip())
    if favorite is not None:
        clauses.append("runs.favorite = ?")
        params.append(1 if favorite else 0)
    if status:
        statuses = [status] if isinstance(status, str) else list(status)
        bad = [s for s in statuses if s not in RUN_STATUSES]
        if bad:
            raise GalleryError(f"unknown status {bad[0]!r}; known: {', '.join(RUN_STATUSES)}")
        clauses.append(f"runs.status IN ({', '.join('?' * len(statuses))})")
        params += statuses
    if since is not None:
        clauses.append("runs.created >= ?")
        params.append(_to_utc_iso(since, end_of_day=False))
    if until is not None:
        clauses.append("runs.created < ?")
        params.append(_to_utc_iso(until, end_of_day=True))
    if text:
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append("runs.title LIKE ? ESCAPE '\\'")
        params.append(f"%{escaped}%")
    if group_id is not None:
        clauses.append("runs.group_id = ?")
        params.append(group_id)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _order_sql(order: str) -> str:
    descending = order.startswith("-")
    name = order[1:] if descending else order
    if name not in ORDERS or (descending and name in ("newest", "oldest")):
        raise GalleryError(f"unknown order {order!r}; use one of {', '.join(ORDERS)} (prefix '-' to reverse)")
    return ORDERS[name].format(dir="DESC" if descending else "ASC")


@_guarded
def list_runs(
    db: sqlite_utils.Database,
    *,
    style: str | None = None,
    content: str | None = None,
    tag: str | None = None,
    favorite: bool | None = None,
    status: str | Sequence[str] | None = None,
    since: datetime | date | str | None = None,
    until: datetime | date | str | None = None,
    text: str | None = None,
    group_id: str | None = None,
    order: str = "newest",
    limit: int = 50,
    offset: int = 0,
) -> list[RunSummary]:
    """Runs matching every given filter, sorted and paged.

    Args:
        style, content: an input image's sha256 or origin (e.g. a catalog id or file name).
        tag: runs carrying this tag. favorite: only (True) or no (False) favorites.
        status: one status or several. since/until: created at or after ``since`` and before
            ``until`` (naive times are local; a bare date covers its whole day).
        text: case-insensitive substring of the title. group_id: runs made together.
        order: "newest", "oldest", "title", "loss" or a setting column such as "style_weight"
            (ascending; "-style_weight" for descending).
        limit, offset: the page (limit 1–1000).
    """
    if not 1 <= int(limit) <= 1000 or int(offset) < 0:
        raise GalleryError(f"limit must be 1–1000 and offset ≥ 0, got limit={limit}, offset={offset}")
    where, params = _where(
        style=style, content=content, tag=tag, favorite=favorite, status=status,
        since=since, until=until, text=text, group_id=group_id,
    )  # fmt: skip
    rows = list(
        db.query(
            "SELECT runs.*, images.origin AS content_origin, "
            "(SELECT json_group_array(i.origin) FROM (SELECT images.origin FROM run_styles "
            " JOIN images USING (sha256) WHERE run_styles.run_id = runs.id ORDER BY position) AS i) AS style_origins, "
            "EXISTS (SELECT 1 FROM results WHERE results.run_id = runs.id) AS has_image "
            f"FROM runs JOIN images ON images.sha256 = runs.content_sha{where} "
            f"ORDER BY {_order_sql(order)} LIMIT ? OFFSET ?",
            [*params, int(limit), int(offset)],
        )
    )
    return [
        RunSummary(
            id=row["id"],
            created=datetime.fromisoformat(row["created"]),
            status=row["status"],
            error=row["error"] or "",
            title=row["title"] or "",
            tags=tuple(json.loads(row["tags"] or "[]")),
            favorite=bool(row["favorite"]),
            group_id=row["group_id"],
            size_px=row["size_px"],
            iterations=row["iterations"],
            content_weight=row["content_weight"],
            style_weight=row["style_weight"],
            tv_weight=row["tv_weight"],
            optimizer=row["optimizer"],
            style_loss=row["style_loss"],
            content_origin=row["content_origin"],
            style_origins=tuple(json.loads(row["style_origins"] or "[]")),
            final_loss=row["final_loss"],
            has_image=bool(row["has_image"]),
        )
        for row in rows
    ]


@_guarded
def count_runs(
    db: sqlite_utils.Database,
    *,
    style: str | None = None,
    content: str | None = None,
    tag: str | None = None,
    favorite: bool | None = None,
    status: str | Sequence[str] | None = None,
    since: datetime | date | str | None = None,
    until: datetime | date | str | None = None,
    text: str | None = None,
    group_id: str | None = None,
) -> int:
    """How many runs :func:`list_runs` would page through with the same filters."""
    where, params = _where(
        style=style, content=content, tag=tag, favorite=favorite, status=status,
        since=since, until=until, text=text, group_id=group_id,
    )  # fmt: skip
    return db.execute(f"SELECT COUNT(*) FROM runs{where}", params).fetchone()[0]


@_guarded
def compare_runs(db: sqlite_utils.Database, run_ids: Sequence[int]) -> Comparison:
    """Runs side by side: every setting's value per run, which settings differ, loss histories."""
    runs = tuple(get_run(db, run_id) for run_id in run_ids)
    names: list[str] = []
    for run in runs:
        names += [name for name in run.settings if name not in names]
    side_by_side = {name: [run.settings.get(name) for run in runs] for name in names}
    differing = [name for name, values in side_by_side.items() if any(v != values[0] for v in values[1:])]
    return Comparison(runs, side_by_side, differing, {run.id: run.loss_history for run in runs})


# --- Editing and deleting


@_guarded
def set_title(db: sqlite_utils.Database, run_id: int, title: str) -> None:
    """Rename a run."""
    with _transaction(db):
        _require_run(db, run_id)
        db.execute("UPDATE runs SET title = ? WHERE id = ?", [str(title).strip(), int(run_id)])


@_guarded
def set_tags(db: sqlite_utils.Database, run_id: int, tags: Sequence[str] | str) -> None:
    """Replace a run's tags (a list, or one comma-separated string); blanks and repeats are dropped."""
    with _transaction(db):
        _require_run(db, run_id)
        db.execute("UPDATE runs SET tags = ? WHERE id = ?", [json.dumps(_clean_tags(tags)), int(run_id)])


@_guarded
def set_favorite(db: sqlite_utils.Database, run_id: int, favorite: bool = True) -> None:
    """Mark or unmark a run as a favorite."""
    with _transaction(db):
        _require_run(db, run_id)
        db.execute("UPDATE runs SET favorite = ? WHERE id = ?", [1 if favorite else 0, int(run_id)])


@_guarded
def delete_run(db: sqlite_utils.Database, run_id: int, *, force: bool = False) -> None:
    """Delete a run, its result and preview, and the input images no other run uses.

    Raises:
        GalleryError: the run is still queued or running (cancel it first, or pass ``force``).
        RunNotFound: unknown id.
    """
    with _transaction(db):
        row = _require_run(db, run_id)
        if row["status"] in ACTIVE_STATUSES and not force:
            raise GalleryError(f"run {run_id} is still {row['status']}; cancel it before deleting it")
        shas = {row["content_sha"]} | {
            r["sha256"] for r in db.query("SELECT sha256 FROM run_styles WHERE run_id = ?", [int(run_id)])
        }
        db.execute("DELETE FROM runs WHERE id = ?", [int(run_id)])  # cascades to styles, result, preview
        db.execute(
            f"DELETE FROM images WHERE sha256 IN ({', '.join('?' * len(shas))}) "
            "AND sha256 NOT IN (SELECT content_sha FROM runs) AND sha256 NOT IN (SELECT sha256 FROM run_styles)",
            list(shas),
        )


# --- Export and import


def _write_atomically(dest: Path, write) -> None:
    """Write a file through a temporary sibling, so an existing ``dest`` is replaced only when complete."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@_guarded
def export_run(db: sqlite_utils.Database, run_id: int, dest_dir: str | os.PathLike) -> tuple[Path | None, Path]:
    """Write ``run-<id>.png`` (if the run has a result) and ``run-<id>.json`` (settings and all) into ``dest_dir``.

    Returns:
        (png path or None, json path).
    """
    run = get_run(db, run_id)
    dest = Path(dest_dir)
    png = run_image(db, run_id)
    try:
        png_path = None
        if png is not None:
            png_path = dest / f"run-{run.id}.png"
            _write_atomically(png_path, lambda f: f.write(png))
        json_path = dest / f"run-{run.id}.json"
        document = {"format": "jaxstyle-run", "version": EXPORT_VERSION, **run.to_dict()}
        _write_atomically(json_path, lambda f: f.write(json.dumps(document, indent=2).encode()))
    except OSError as error:
        raise GalleryError(f"cannot export run {run_id} to {dest}: {error.strerror or error}") from None
    return png_path, json_path


def _extension(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "png"
    if data.startswith(b"\xff\xd8"):
        return "jpg"
    return "bin"


@_guarded
def export_gallery(
    db: sqlite_utils.Database, zip_path: str | os.PathLike, *, run_ids: Sequence[int] | None = None
) -> int:
    """Write the gallery (or the given runs) to a zip that :func:`import_gallery` reads back.

    The zip holds ``manifest.json`` (every run's fields and its inputs' origins), ``inputs/<sha256>.<ext>``
    and ``results/<run id>.png``. An existing file at ``zip_path`` is replaced only once the new one is complete.

    Returns:
        The number of runs exported.
    """
    zip_path = Path(zip_path)
    if run_ids is None:
        run_ids = [row[0] for row in db.execute("SELECT id FROM runs ORDER BY id").fetchall()]
    runs = [get_run(db, run_id) for run_id in run_ids]
    inputs: dict[str, dict[str, Any]] = {}
    for run in runs:
        for info in (run.content, *run.styles):
            inputs.setdefault(info.sha256, {k: v for k, v in info.to_dict().items() if k != "blend"})

    def write(file) -> None:
        with zipfile.ZipFile(file, "w") as archive:
            for sha, info in inputs.items():
                data = input_image(db, sha)
                info["file"] = f"inputs/{sha}.{_extension(data)}"
                archive.writestr(info["file"], data)  # JPEG/PNG: already compressed, stored as is
            entries = []
            for run in runs:
                entry = run.to_dict()
                png = run_image(db, run.id)
                entry["image"] = f"results/{run.id}.png" if png is not None else None
                if png is not None:
                    archive.writestr(entry["image"], png)
                entries.append(entry)
            manifest = {
                "format": EXPORT_FORMAT,
                "version": EXPORT_VERSION,
                "schema_version": SCHEMA_VERSION,
                "exported": _now_iso(),
                "inputs": inputs,
                "runs": entries,
            }
            archive.writestr("manifest.json", json.dumps(manifest, indent=1), compress_type=zipfile.ZIP_DEFLATED)

    try:
        _write_atomically(zip_path, write)
    except OSError as error:
        raise GalleryError(f"cannot write the export {zip_path}: {error.strerror or error}") from None
    return len(runs)


def _expect(value: Any, kinds: type | tuple[type, ...], where: str, allow_none: bool = False) -> Any:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise GalleryError(f"{where} has the wrong type (bool)")
    if not isinstance(value, kinds):
        raise GalleryError(f"{where} has the wrong type ({type(value).__name__})")
    return value


def _read_export(zip_path: Path) -> tuple[list[dict[str, Any]], list[tuple], dict[int, tuple[bytes, bytes, int, int]]]:
    """Read and check a gallery zip completely; returns run rows, input rows and results by old run id."""
    try:
        archive = zipfile.ZipFile(zip_path)
    except FileNotFoundError:
        raise GalleryError(f"{zip_path} does not exist") from None
    except (zipfile.BadZipFile, OSError) as error:
        raise GalleryError(f"{zip_path} is not a jaxstyle gallery export (not a zip file: {error})") from None
    with archive:

        def member(name: str, what: str) -> bytes:
            try:
                return archive.read(name)
            except KeyError:
                raise GalleryError(f"{zip_path} is incomplete: {what} ({name}) is missing") from None
            except (zipfile.BadZipFile, OSError, ValueError) as error:
                raise GalleryError(f"{zip_path} is damaged: cannot read {name} ({error})") from None

        try:
            manifest = json.loads(member("manifest.json", "the manifest"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise GalleryError(f"{zip_path}: manifest.json is not valid JSON ({error})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT:
            raise GalleryError(f"{zip_path} is not a jaxstyle gallery export (no {EXPORT_FORMAT} manifest)")
        if manifest.get("version") != EXPORT_VERSION:
            raise GalleryError(
                f"{zip_path} is export version {manifest.get('version')!r}; this jaxstyle reads {EXPORT_VERSION}"
            )
        inputs = _expect(manifest.get("inputs"), dict, f"{zip_path}: inputs")
        entries = _expect(manifest.get("runs"), list, f"{zip_path}: runs")

        input_rows = []
        for sha, info in inputs.items():
            where = f"{zip_path}: input {str(sha)[:12]}…"
            _expect(info, dict, where)
            data = member(_expect(info.get("file"), str, f"{where} file"), f"input image {sha}")
            if images.sha256_hex(data) != sha:
                raise GalleryError(f"{where} is damaged: its bytes don't match its SHA-256")
            kind = info.get("origin_kind")
            if kind not in ORIGIN_KINDS:
                raise GalleryError(f"{where} has an unknown origin kind {kind!r}")
            width, height = _image_size(data, f"{where} ({info.get('origin')})")
            input_rows.append((sha, kind, str(info.get("origin", "")), width, height, data))

        runs, results = [], {}
        for index, entry in enumerate(entries):
            where = f"{zip_path}: run #{index + 1}"
            _expect(entry, dict, where)
            old_id = _expect(entry.get("id"), int, f"{where} id")
            where = f"{zip_path}: run {old_id}"
            try:
                settings = _normalize_settings(_expect(entry.get("settings"), dict, f"{where} settings"))
            except SettingsError as error:
                raise GalleryError(f"{where} has invalid settings: {error}") from None
            status = entry.get("status")
            if status not in RUN_STATUSES:
                raise GalleryError(f"{where} has an unknown status {status!r}")
            error_text = str(entry.get("error") or "")
            if status in ACTIVE_STATUSES:  # it isn't running here, and never will be
                status, error_text = "failed", f"interrupted: it was {status} when it was exported"
            content = _expect(entry.get("content"), dict, f"{where} content")
            styles = _expect(entry.get("styles"), list, f"{where} styles")
            shas = [_expect(content.get("sha256"), str, f"{where} content")] + [
                _expect(_expect(s, dict, f"{where} style").get("sha256"), str, f"{where} style") for s in styles
            ]
            missing = [sha for sha in shas if sha not in inputs]
            if missing or not styles:
                raise GalleryError(f"{where} refers to input images that are not in the export")
            try:
                created = datetime.fromisoformat(_expect(entry.get("created"), str, f"{where} created"))
                finished = entry.get("finished")
                finished = datetime.fromisoformat(finished).isoformat() if finished else None
            except ValueError:
                raise GalleryError(f"{where} has an invalid time") from None
            final_losses = _float_dict(_expect(entry.get("final_losses") or {}, dict, f"{where} final_losses"), where)
            row = {
                "created": created.astimezone(UTC).isoformat(timespec="microseconds"),
                "status": status,
                "error": error_text,
                "title": str(entry.get("title") or ""),
                "tags": json.dumps(_clean_tags(_expect(entry.get("tags") or [], list, f"{where} tags"))),
                "favorite": 1 if entry.get("favorite") else 0,
                "group_id": _expect(entry.get("group_id"), str, f"{where} group_id", allow_none=True),
                "settings_dict": settings,
                "content_sha": shas[0],
                "weights_source": str(entry.get("weights_source") or ""),
                "device": str(entry.get("device") or ""),
                "compile_s": _expect(entry.get("compile_s"), (int, float), f"{where} compile_s", allow_none=True),
                "run_s": _expect(entry.get("run_s"), (int, float), f"{where} run_s", allow_none=True),
                "initial_losses": json.dumps(
                    _float_dict(_expect(entry.get("initial_losses") or {}, dict, f"{where} initial_losses"), where)
                ),
                "final_losses": json.dumps(final_losses),
                "final_loss": final_losses.get("total"),
                "loss_history": json.dumps(_history(_expect(entry.get("loss_history") or [], list, where))),
                "step": _expect(entry.get("step") or 0, int, f"{where} step"),
                "total_steps": _expect(entry.get("total_steps"), int, f"{where} total_steps", allow_none=True),
                "finished": finished,
            }
            blend = [float(_expect(s.get("blend"), (int, float), f"{where} style blend")) for s in styles]
            runs.append({"old_id": old_id, "row": row, "style_shas": shas[1:], "blend": blend})
            image = entry.get("image")
            if image is not None:
                png = member(_expect(image, str, f"{where} image"), f"the result of run {old_id}")
                thumbnail, width, height = _thumbnail(png, f"{where} result image")
                results[len(runs) - 1] = (png, thumbnail, width, height)
    return runs, input_rows, results


@_guarded
def import_gallery(db: sqlite_utils.Database, zip_path: str | os.PathLike) -> list[int]:
    """Add the runs of an :func:`export_gallery` zip as new runs (new ids), all or nothing.

    Everything is read and checked (settings via ``TransferSettings.from_dict``, image hashes,
    result images) before one transaction writes it. Runs exported while queued or running
    are imported as failed.

    Returns:
        The new runs' ids, in the export's order.

    Raises:
        GalleryError: the file is not a valid export (nothing is imported).
    """
    zip_path = Path(zip_path)
    runs, input_rows, results = _read_export(zip_path)
    new_ids = []
    with _transaction(db):
        for sha, kind, origin, width, height, data in input_rows:
            db.execute(
                "INSERT OR IGNORE INTO images (sha256, origin_kind, origin, width, height, data, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [sha, kind, origin, width, height, data, _now_iso()],
            )
        for index, run in enumerate(runs):
            run_id = _insert_run(db, run["row"], run["style_shas"], run["blend"])
            if index in results:
                png, thumbnail, width, height = results[index]
                db.execute(
                    "INSERT INTO results (run_id, png, thumbnail, width, height) VALUES (?, ?, ?, ?, ?)",
                    [run_id, png, thumbnail, width, height],
                )
            new_ids.append(run_id)
    return new_ids
