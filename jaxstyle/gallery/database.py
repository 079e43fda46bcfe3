"""The gallery's database handle, its errors written for a person, and the guarded write transaction.

Every public gallery function is wrapped in :func:`guarded`, so an ``sqlite3`` error never reaches a
caller: it becomes a :class:`~jaxstyle.errors.GalleryError` that names the file and says what to do
(locked, read-only, full disk, damaged, not a gallery). Every write goes through :func:`transaction`.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sized
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import sqlite_utils
from sqlite_utils.db import NotFoundError

from jaxstyle.errors import GalleryError, RunNotFound

P = ParamSpec("P")
R = TypeVar("R")


class GalleryDatabase(sqlite_utils.Database):
    """A :class:`sqlite_utils.Database` that remembers its file, so errors can name it."""

    def __init__(self, conn: sqlite3.Connection, *, path: Path, timeout_s: float) -> None:
        self.path = path
        self.timeout_s = timeout_s
        super().__init__(conn, execute_plugins=False)


def label(db: sqlite_utils.Database) -> str:
    """How messages name the gallery: its file, when known."""
    return str(getattr(db, "path", None) or "the gallery database")


def gallery_error(where: str, error: BaseException, timeout_s: float | None = None) -> GalleryError:
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


def guarded(func: Callable[P, R]) -> Callable[P, R]:
    """Turn sqlite3 errors raised in ``func(db, ...)`` into a GalleryError naming the file."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except sqlite3.Error as error:
            db = args[0]
            raise gallery_error(label(db), error, getattr(db, "timeout_s", None)) from error

    return wrapper


@contextlib.contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """One write transaction that takes the write lock up front.

    A plain ``BEGIN`` (what ``db.atomic()`` issues) that reads and then writes can fail at once
    with SQLITE_BUSY in WAL mode when another writer got in between; ``BEGIN IMMEDIATE`` waits
    for the busy timeout instead. Writes inside (sqlite-utils' ``atomic``, and so its table
    methods, included) nest as savepoints.
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


def require_run(db: sqlite_utils.Database, run_id: int) -> dict[str, Any]:
    """The ``runs`` row of ``run_id``. Raises RunNotFound for an unknown id."""
    try:
        return db["runs"].get(int(run_id))
    except NotFoundError:
        raise RunNotFound(f"no run {run_id} in the gallery {label(db)}") from None


def update_run(db: sqlite_utils.Database, run_id: int, values: Mapping[str, Any]) -> None:
    """Set columns of one run. Raises RunNotFound for an unknown id."""
    try:
        db["runs"].update(int(run_id), dict(values))
    except NotFoundError:
        raise RunNotFound(f"no run {run_id} in the gallery {label(db)}") from None


def placeholders(values: Sized) -> str:
    """``?, ?, ?``: one SQL parameter per value, for ``IN (...)``."""
    return ", ".join("?" * len(values))
