"""Reading the gallery: one run in full, its images, and filtered, sorted pages of runs.

Which runs to list is a :class:`RunFilter`; :func:`list_runs` and :func:`count_runs` also take its
fields as keywords (``list_runs(db, status="done")``), the spelling older callers use.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import sqlite_utils
from sqlite_utils.db import NotFoundError

from jaxstyle.errors import GalleryError, RunNotFound
from jaxstyle.gallery.database import guarded, label, placeholders, require_run
from jaxstyle.gallery.records import Comparison, ImageInfo, Run, RunSummary, VideoFile, image_info
from jaxstyle.gallery.schema import SETTING_COLUMNS
from jaxstyle.gallery.values import parse_time, to_utc_iso
from jaxstyle.runs import RUN_STATUSES

# Sort orders for list_runs: name -> SQL. Numeric ones ascend; "-name" descends.
ORDERS = {
    "newest": "runs.created DESC, runs.id DESC",
    "oldest": "runs.created ASC, runs.id ASC",
    "title": "runs.title COLLATE NOCASE {dir}, runs.id {dir}",
    "loss": "runs.final_loss IS NULL, runs.final_loss {dir}, runs.id {dir}",
    **{name: f"runs.{name} {{dir}}, runs.id {{dir}}" for name in SETTING_COLUMNS},
}


# --- One run


def _common_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """The fields a Run and a RunSummary both read from a ``runs`` row."""
    return {
        "id": row["id"],
        "created": datetime.fromisoformat(row["created"]),
        "status": row["status"],
        "error": row["error"] or "",
        "title": row["title"] or "",
        "tags": tuple(json.loads(row["tags"] or "[]")),
        "favorite": bool(row["favorite"]),
        "group_id": row["group_id"],
        "method": row["method"],
        "model": row["model"],
        "owner": row["owner"],
        "public": bool(row["public"]),
    }


# An input's origin as its run's owner named it (image_origins), else as it was first stored.
_ORIGIN = (
    "COALESCE((SELECT o.origin FROM image_origins AS o WHERE o.sha256 = images.sha256 AND o.owner = runs.owner), "
    "images.origin)"
)
_ORIGIN_KIND = _ORIGIN.replace("o.origin FROM", "o.origin_kind FROM").replace("images.origin)", "images.origin_kind)")


def _run_from_row(db: sqlite_utils.Database, row: Mapping[str, Any]) -> Run:
    content = next(db.query(
        f"SELECT images.sha256, {_ORIGIN_KIND} AS origin_kind, {_ORIGIN} AS origin, images.width, images.height "
        "FROM runs JOIN images ON images.sha256 = runs.content_sha WHERE runs.id = ?", [row["id"]]
    ))  # fmt: skip
    styles = db.query(
        f"SELECT images.sha256, {_ORIGIN_KIND} AS origin_kind, {_ORIGIN} AS origin, images.width, images.height, "
        "run_styles.blend FROM run_styles JOIN images USING (sha256) JOIN runs ON runs.id = run_styles.run_id "
        "WHERE run_styles.run_id = ? ORDER BY run_styles.position",
        [row["id"]],
    )
    return Run(
        **_common_fields(row),
        settings=json.loads(row["settings"]),
        weights_source=row["weights_source"] or "",
        device=row["device"] or "",
        compile_s=row["compile_s"],
        run_s=row["run_s"],
        initial_losses=json.loads(row["initial_losses"] or "{}"),
        final_losses=json.loads(row["final_losses"] or "{}"),
        loss_history=json.loads(row["loss_history"] or "[]"),
        content=image_info(content),
        styles=tuple(image_info(style, style["blend"]) for style in styles),
        step=row["step"] or 0,
        total_steps=row["total_steps"],
        finished=parse_time(row["finished"]),
        has_image=db["results"].count_where("run_id = ?", [row["id"]]) > 0,
    )


@guarded
def get_run(db: sqlite_utils.Database, run_id: int) -> Run:
    """Everything about one run. Raises RunNotFound for an unknown id."""
    return _run_from_row(db, require_run(db, run_id))


def _result_column(db: sqlite_utils.Database, column: str, run_id: int) -> bytes | None:
    row = next(db.query(
        f"SELECT result_images.{column} FROM results JOIN result_images USING (sha256) WHERE run_id = ?",
        [int(run_id)]), None)  # fmt: skip
    return bytes(row[column]) if row else None


@guarded
def run_image(db: sqlite_utils.Database, run_id: int) -> bytes | None:
    """The full-size result PNG, or None if the run has none (yet)."""
    return _result_column(db, "png", run_id)


@guarded
def run_video(db: sqlite_utils.Database, run_id: int) -> VideoFile | None:
    """A video run's painted video (bytes, suffix, what it measured), or None for other runs."""
    row = next(db.query(
        "SELECT data, suffix, stats FROM videos JOIN video_files USING (sha256) WHERE run_id = ?", [int(run_id)]
    ), None)  # fmt: skip
    if row is None:
        return None
    return VideoFile(bytes(row["data"]), row["suffix"], json.loads(row["stats"] or "{}"))


@guarded
def run_thumbnail(db: sqlite_utils.Database, run_id: int) -> bytes | None:
    """The result's small JPEG thumbnail, or None."""
    return _result_column(db, "thumbnail", run_id)


@guarded
def thumbnails(db: sqlite_utils.Database, run_ids: Sequence[int]) -> dict[int, bytes]:
    """Thumbnails of several runs in one query (runs without a result are left out)."""
    ids = [int(i) for i in run_ids]
    if not ids:
        return {}
    rows = db.query(
        "SELECT run_id, thumbnail FROM results JOIN result_images USING (sha256) "
        f"WHERE run_id IN ({placeholders(ids)})",
        ids,
    )
    return {row["run_id"]: bytes(row["thumbnail"]) for row in rows}


@guarded
def run_preview(db: sqlite_utils.Database, run_id: int) -> bytes | None:
    """The latest preview PNG recorded during the run, or None (previews are dropped when it finishes)."""
    row = next(db["previews"].rows_where("run_id = ?", [int(run_id)], select="png"), None)
    return bytes(row["png"]) if row else None


@guarded
def input_image(db: sqlite_utils.Database, sha256: str) -> bytes:
    """The stored bytes of an input image. Raises RunNotFound if no such image is stored."""
    try:
        return bytes(db["images"].get(sha256)["data"])
    except NotFoundError:
        raise RunNotFound(f"no input image {sha256[:12]}… in the gallery {label(db)}") from None


@guarded
def rerun_settings(db: sqlite_utils.Database, run_id: int) -> dict[str, Any]:
    """A stored run's settings (``TransferSettings.from_dict`` input), the start of a new run."""
    return json.loads(require_run(db, run_id)["settings"])


@guarded
def list_inputs(db: sqlite_utils.Database, kind: str, *, owner: str | None = None) -> list[ImageInfo]:
    """The content ("content") or style ("style") images used by at least one run (of ``owner``,
    when given: with the names that owner gave them), by origin."""
    if kind == "content":
        used = "SELECT content_sha FROM runs"
    elif kind == "style":
        used = "SELECT sha256 FROM run_styles JOIN runs ON runs.id = run_styles.run_id"
    else:
        raise GalleryError(f"kind must be 'content' or 'style', got {kind!r}")
    if owner is None:
        rows = db["images"].rows_where(
            f"sha256 IN ({used})",
            select="sha256, origin_kind, origin, width, height",
            order_by="origin COLLATE NOCASE, sha256",
        )
    else:
        rows = db.query(
            "SELECT images.sha256, COALESCE(o.origin_kind, images.origin_kind) AS origin_kind, "
            "COALESCE(o.origin, images.origin) AS origin, images.width, images.height FROM images "
            "LEFT JOIN image_origins AS o ON o.sha256 = images.sha256 AND o.owner = :owner "
            f"WHERE images.sha256 IN ({used} WHERE runs.owner = :owner) ORDER BY 3 COLLATE NOCASE, 1",
            {"owner": owner},
        )
    return [image_info(row) for row in rows]


@guarded
def compare_runs(db: sqlite_utils.Database, run_ids: Sequence[int]) -> Comparison:
    """Runs side by side: every setting's value per run, which settings differ, loss histories."""
    runs = tuple(get_run(db, run_id) for run_id in run_ids)
    names: list[str] = []
    for run in runs:
        names += [name for name in run.settings if name not in names]
    side_by_side = {name: [run.settings.get(name) for run in runs] for name in names}
    differing = [name for name, values in side_by_side.items() if any(v != values[0] for v in values[1:])]
    return Comparison(runs, side_by_side, differing, {run.id: run.loss_history for run in runs})


# --- Listing and filtering


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunFilter:
    """Which runs to list or count: each criterion given must hold; None means any.

    Raises:
        GalleryError: an unknown status.
    """

    style: str | None = None  # an input image's sha256 or origin (e.g. a catalog id or file name)
    content: str | None = None  # likewise, for the content image
    tag: str | None = None  # runs carrying this tag
    favorite: bool | None = None  # only (True) or no (False) favorites
    status: str | Sequence[str] | None = None  # one status or several; stored as a tuple
    since: datetime | date | str | None = None  # created at or after (naive times are local)
    until: datetime | date | str | None = None  # created before (a bare date covers its whole day)
    text: str | None = None  # case-insensitive substring of the title
    group_id: str | None = None  # runs made together (e.g. one sweep)
    owner: str | None = None  # a shared site's user: only their runs
    public: bool | None = None  # only (True) or no (False) runs published on the public page

    def __post_init__(self) -> None:
        if self.status is not None:
            statuses = (self.status,) if isinstance(self.status, str) else tuple(self.status)
            bad = [s for s in statuses if s not in RUN_STATUSES]
            if bad:
                raise GalleryError(f"unknown status {bad[0]!r}; known: {', '.join(RUN_STATUSES)}")
            object.__setattr__(self, "status", statuses)

    @classmethod
    def of(cls, run_filter: RunFilter | None, criteria: Mapping[str, Any]) -> RunFilter:
        """``run_filter`` (or no filter) with ``criteria`` (field names as keywords) added."""
        base = run_filter if run_filter is not None else cls()
        return dataclasses.replace(base, **criteria) if criteria else base

    def where(self) -> tuple[str | None, list[Any]]:
        """The SQL condition on ``runs`` (None: every run) and its parameters."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.style:
            clauses.append(
                "EXISTS (SELECT 1 FROM run_styles JOIN images USING (sha256) "
                f"WHERE run_styles.run_id = runs.id AND (images.sha256 = ? OR {_ORIGIN} = ?))"
            )
            params += [self.style, self.style]
        if self.content:
            clauses.append(
                "EXISTS (SELECT 1 FROM images WHERE images.sha256 = runs.content_sha "
                f"AND (images.sha256 = ? OR {_ORIGIN} = ?))"
            )
            params += [self.content, self.content]
        if self.tag:
            clauses.append("EXISTS (SELECT 1 FROM json_each(runs.tags) WHERE json_each.value = ?)")
            params.append(self.tag.strip())
        if self.favorite is not None:
            clauses.append("runs.favorite = ?")
            params.append(1 if self.favorite else 0)
        if self.status:
            clauses.append(f"runs.status IN ({placeholders(self.status)})")
            params += list(self.status)
        if self.since is not None:
            clauses.append("runs.created >= ?")
            params.append(to_utc_iso(self.since, end_of_day=False))
        if self.until is not None:
            clauses.append("runs.created < ?")
            params.append(to_utc_iso(self.until, end_of_day=True))
        if self.text:
            escaped = self.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append("runs.title LIKE ? ESCAPE '\\'")
            params.append(f"%{escaped}%")
        if self.group_id is not None:
            clauses.append("runs.group_id = ?")
            params.append(self.group_id)
        if self.owner is not None:
            clauses.append("runs.owner = ?")
            params.append(self.owner)
        if self.public is not None:
            clauses.append("runs.public = ?")
            params.append(1 if self.public else 0)
        return (" AND ".join(clauses) or None), params


def _order_sql(order: str) -> str:
    descending = order.startswith("-")
    name = order[1:] if descending else order
    if name not in ORDERS or (descending and name in ("newest", "oldest")):
        raise GalleryError(f"unknown order {order!r}; use one of {', '.join(ORDERS)} (prefix '-' to reverse)")
    return ORDERS[name].format(dir="DESC" if descending else "ASC")


def _summary(row: Mapping[str, Any]) -> RunSummary:
    return RunSummary(
        **_common_fields(row),
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


@guarded
def list_runs(
    db: sqlite_utils.Database,
    run_filter: RunFilter | None = None,
    /,
    *,
    order: str = "newest",
    limit: int = 50,
    offset: int = 0,
    **criteria: Any,
) -> list[RunSummary]:
    """Runs matching every criterion of ``run_filter``, sorted and paged.

    Args:
        run_filter: which runs (default: all).
        order: "newest", "oldest", "title", "loss" or a setting column such as "style_weight"
            (ascending; "-style_weight" for descending).
        limit, offset: the page (limit 1–1000).
        criteria: :class:`RunFilter` fields as keywords (``status="done"``), added to ``run_filter``.

    Raises:
        GalleryError: an unknown order or status, a bad date, or a page out of range.
        TypeError: a keyword that is not a RunFilter field.
    """
    run_filter = RunFilter.of(run_filter, criteria)
    if not 1 <= int(limit) <= 1000 or int(offset) < 0:
        raise GalleryError(f"limit must be 1–1000 and offset ≥ 0, got limit={limit}, offset={offset}")
    condition, params = run_filter.where()
    where = f" WHERE {condition}" if condition else ""
    rows = db.query(
        f"SELECT runs.*, {_ORIGIN} AS content_origin, "
        f"(SELECT json_group_array(i.origin) FROM (SELECT {_ORIGIN} AS origin FROM run_styles "
        " JOIN images USING (sha256) WHERE run_styles.run_id = runs.id ORDER BY position) AS i) AS style_origins, "
        "EXISTS (SELECT 1 FROM results WHERE results.run_id = runs.id) AS has_image "
        f"FROM runs JOIN images ON images.sha256 = runs.content_sha{where} "
        f"ORDER BY {_order_sql(order)} LIMIT ? OFFSET ?",
        [*params, int(limit), int(offset)],
    )
    return [_summary(row) for row in rows]


@guarded
def count_runs(db: sqlite_utils.Database, run_filter: RunFilter | None = None, /, **criteria: Any) -> int:
    """How many runs :func:`list_runs` would page through with the same filter (and keywords)."""
    condition, params = RunFilter.of(run_filter, criteria).where()
    return db["runs"].count_where(condition, params)
