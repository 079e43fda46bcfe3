"""Changing what people say about a run (title, tags, favorite) and deleting runs."""

from __future__ import annotations

from collections.abc import Sequence

import sqlite_utils

from jaxstyle.errors import GalleryError
from jaxstyle.gallery.database import guarded, require_run, transaction, update_run
from jaxstyle.gallery.lifecycle import drop_unused
from jaxstyle.gallery.values import tags_json
from jaxstyle.runs import ACTIVE_STATUSES


@guarded
def set_title(db: sqlite_utils.Database, run_id: int, title: str) -> None:
    """Rename a run."""
    with transaction(db):
        update_run(db, run_id, {"title": str(title).strip()})


@guarded
def set_tags(db: sqlite_utils.Database, run_id: int, tags: Sequence[str] | str) -> None:
    """Replace a run's tags (a list, or one comma-separated string); blanks and repeats are dropped."""
    with transaction(db):
        update_run(db, run_id, {"tags": tags_json(tags)})


@guarded
def set_favorite(db: sqlite_utils.Database, run_id: int, favorite: bool = True) -> None:
    """Mark or unmark a run as a favorite."""
    with transaction(db):
        update_run(db, run_id, {"favorite": 1 if favorite else 0})


@guarded
def delete_run(db: sqlite_utils.Database, run_id: int, *, force: bool = False) -> None:
    """Delete a run, its preview, and the images and video that no other run uses.

    Raises:
        GalleryError: the run is still queued or running (cancel it first, or pass ``force``).
        RunNotFound: unknown id.
    """
    with transaction(db):
        row = require_run(db, run_id)
        if row["status"] in ACTIVE_STATUSES and not force:
            raise GalleryError(f"run {run_id} is still {row['status']}; cancel it before deleting it")
        inputs = {row["content_sha"]} | {r["sha256"] for r in db["run_styles"].rows_where("run_id = ?", [int(run_id)])}
        results = [r["sha256"] for r in db["results"].rows_where("run_id = ?", [int(run_id)])]
        videos = [r["sha256"] for r in db["videos"].rows_where("run_id = ?", [int(run_id)])]
        db["runs"].delete(int(run_id))  # cascades to its styles, result and video links, and preview
        drop_unused(db, inputs=inputs, results=results, videos=videos)
