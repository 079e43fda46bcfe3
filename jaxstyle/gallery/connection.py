"""Opening a gallery file: create it (and its folder), refuse what is not a gallery, migrate, recover."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from jaxstyle import paths
from jaxstyle.errors import GalleryError
from jaxstyle.gallery.database import GalleryDatabase, gallery_error
from jaxstyle.gallery.recovery import recover_stale_runs
from jaxstyle.gallery.schema import check_is_gallery, migrate


def connect(path: str | os.PathLike | None = None, *, timeout_s: float = 10.0) -> GalleryDatabase:
    """Open the gallery at ``path`` (default :func:`jaxstyle.paths.default_gallery_path`).

    Creates the file (and its folder) if missing, applies pending migrations, checks WAL mode,
    turns foreign keys on, waits up to ``timeout_s`` for locks, and marks failed the runs left
    queued/running by processes that are gone (:func:`~jaxstyle.gallery.recover_stale_runs`). Use
    it as a context manager (``with connect() as db:``) and only in the thread that opened it.

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
        raise gallery_error(str(path), error, timeout_s) from error
    try:
        db = GalleryDatabase(conn, path=path, timeout_s=timeout_s)
        db.execute("PRAGMA foreign_keys = ON")
        # SQLite's advice for WAL: still safe from corruption and durable when a process dies;
        # only a power cut may undo the last commits. FULL costs an fsync per commit.
        db.execute("PRAGMA synchronous = NORMAL")
        check_is_gallery(db)
        migrate(db)
        recover_stale_runs(db)
    except sqlite3.Error as error:
        conn.close()
        raise gallery_error(str(path), error, timeout_s) from error
    except BaseException:
        conn.close()
        raise
    return db
