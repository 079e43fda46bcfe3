"""Who may see a run on a shared site: its owner, the admins, whoever holds its share link (read
only), and everyone once it is published; to anyone else it does not exist ("no run 7 in this
gallery", the same answer as for a missing run, so ids can't be probed, and no server path in
it). A personal gallery's viewer sees everything.

Pages ask here, never ``get_run`` directly, for any run id that came from a URL or a form.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from typing import Any

import sqlite_utils

from jaxstyle.errors import RunNotFound
from jaxstyle.gallery.database import guarded, require_run, transaction, update_run
from jaxstyle.gallery.queries import get_run
from jaxstyle.gallery.records import Run
from jaxstyle.site import Viewer

SHARE_TOKEN_BYTES = 24  # 192 bits: not guessable, short enough for a link


def owner_criteria(viewer: Viewer) -> dict[str, Any]:
    """The :class:`~jaxstyle.gallery.queries.RunFilter` criteria of the runs ``viewer`` may list."""
    return {} if viewer.sees_everything else {"owner": viewer.subject}


def _row(db: sqlite_utils.Database, run_id: int) -> dict[str, Any] | None:
    try:
        return require_run(db, run_id)
    except RunNotFound:
        return None


def _not_found(run_id: int) -> RunNotFound:
    # The same words for a missing run and another user's, and no server path in them.
    return RunNotFound(f"no run {run_id} in this gallery")


@guarded
def visible_run(db: sqlite_utils.Database, run_id: int, viewer: Viewer) -> Run:
    """The run, if it is ``viewer``'s to see and change (theirs, or any for an admin or a personal
    gallery). Raises RunNotFound otherwise, exactly as for a missing run."""
    row = _row(db, run_id)
    if row is None or not viewer.may_touch(row["owner"]):
        raise _not_found(run_id)
    return get_run(db, run_id)


@guarded
def readable_run(db: sqlite_utils.Database, run_id: int, viewer: Viewer, token: str | None = None) -> Run:
    """The run if ``viewer`` may at least look at it: as :func:`visible_run`, or published, or
    ``token`` is its share link's. Raises RunNotFound otherwise."""
    row = _row(db, run_id)
    if row is None:
        raise _not_found(run_id)
    shared = bool(token) and row["share_token"] is not None and secrets.compare_digest(str(token), row["share_token"])
    if not (viewer.may_touch(row["owner"]) or row["public"] or shared):
        raise _not_found(run_id)
    return get_run(db, run_id)


@guarded
def share_run(db: sqlite_utils.Database, run_id: int) -> str:
    """The run's share-link token, made now if it has none (a revoked link stays revoked: a new
    share makes a new token)."""
    with transaction(db):
        row = require_run(db, run_id)
        if row["share_token"]:
            return row["share_token"]
        token = secrets.token_urlsafe(SHARE_TOKEN_BYTES)
        update_run(db, run_id, {"share_token": token})
        return token


@guarded
def share_token(db: sqlite_utils.Database, run_id: int) -> str | None:
    """The run's share-link token, or None when it is not shared."""
    return require_run(db, run_id)["share_token"]


@guarded
def unshare_run(db: sqlite_utils.Database, run_id: int) -> None:
    """Revoke the run's share link: its token stops working at once."""
    with transaction(db):
        update_run(db, run_id, {"share_token": None})


@guarded
def set_public(db: sqlite_utils.Database, run_id: int, public: bool = True) -> None:
    """Publish the run on the public gallery page (or take it off)."""
    with transaction(db):
        update_run(db, run_id, {"public": 1 if public else 0})


@guarded
def storage_bytes(db: sqlite_utils.Database, owner: str) -> int:
    """What ``owner``'s runs hold in the gallery: the bytes of every input, result image and video
    they use (each counted once, however many of their runs share it)."""
    row = db.execute(
        """WITH mine AS (SELECT id, content_sha FROM runs WHERE owner = :owner),
        inputs AS (SELECT content_sha AS sha256 FROM mine
                   UNION SELECT sha256 FROM run_styles WHERE run_id IN (SELECT id FROM mine)),
        results_used AS (SELECT DISTINCT sha256 FROM results WHERE run_id IN (SELECT id FROM mine)),
        videos_used AS (SELECT DISTINCT sha256 FROM videos WHERE run_id IN (SELECT id FROM mine))
        SELECT (SELECT COALESCE(SUM(LENGTH(data)), 0) FROM images WHERE sha256 IN inputs)
             + (SELECT COALESCE(SUM(LENGTH(png)), 0) FROM result_images WHERE sha256 IN results_used)
             + (SELECT COALESCE(SUM(LENGTH(data)), 0) FROM video_files WHERE sha256 IN videos_used)""",
        {"owner": owner},
    ).fetchone()
    return int(row[0])


@guarded
def set_model_owner(db: sqlite_utils.Database, name: str, owner: str | None) -> None:
    """Record who trained or imported the model ``name`` (None: nobody, i.e. the admins')."""
    with transaction(db):
        if owner is None:
            db["model_owners"].delete_where("name = ?", [name])
        else:
            db["model_owners"].insert({"name": name, "owner": owner}, replace=True)


@guarded
def model_owners(db: sqlite_utils.Database) -> dict[str, str]:
    """Model name → its owner, for the models a user trained or imported on a shared site."""
    return {row["name"]: row["owner"] for row in db["model_owners"].rows}


def visible_models(names: Iterable[str], owners: Mapping[str, str], viewer: Viewer) -> list[str]:
    """Those of ``names`` that ``viewer`` may see and use: their own (admins: all)."""
    return [name for name in names if viewer.may_touch(owners.get(name))]
