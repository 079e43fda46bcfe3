"""A run's life in the gallery: its inputs stored, the run added (queued or running), started,
its progress, then its result and losses (done) or why it stopped (failed, cancelled).

Plain writes go through sqlite-utils' table methods; a status change that must not undo a
later one (a cancelled run is not started, a finished run is not failed) is one guarded
``UPDATE … WHERE status IN (…)``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import sqlite_utils

from jaxstyle import images
from jaxstyle.errors import GalleryError
from jaxstyle.gallery.database import guarded, label, placeholders, require_run, transaction, update_run
from jaxstyle.gallery.recovery import owner as process_owner
from jaxstyle.gallery.schema import SETTING_COLUMNS
from jaxstyle.gallery.values import (
    TOTAL_LOSS,
    checked_settings,
    checked_size,
    checked_thumbnail,
    float_dict,
    history,
    now_iso,
    tags_json,
)
from jaxstyle.runs import (
    ACTIVE_STATUSES,
    CANCELLED,
    DONE,
    FAILED,
    METHOD_OPTIMIZE,
    METHODS,
    MODEL_METHODS,
    ORIGIN_KINDS,
    QUEUED,
    RUN_STATUSES,
    RUNNING,
)
from jaxstyle.settings import TransferSettings

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv")  # what a video run's video is stored as

_NOT_DONE = tuple(status for status in RUN_STATUSES if status != DONE)


def insert_image(db: sqlite_utils.Database, row: Mapping[str, Any]) -> None:
    """Add an ``images`` row unless the same bytes (sha256) are stored already (the first origin stays)."""
    db["images"].insert({**row, "created": now_iso()}, ignore=True)


def is_stored(db: sqlite_utils.Database, table: str, sha: str) -> bool:
    """Whether ``table`` (``images``, ``result_images``, ``video_files``) holds the bytes with this hash."""
    return db[table].count_where("sha256 = ?", [sha]) > 0


def insert_result_image(db: sqlite_utils.Database, png: bytes, thumbnail: bytes, width: int, height: int) -> str:
    """Add a result image unless the same bytes are stored already (inside the caller's transaction); its hash."""
    sha = images.sha256_hex(png)
    row = {"sha256": sha, "png": png, "thumbnail": thumbnail, "width": width, "height": height}
    db["result_images"].insert(row, ignore=True)
    return sha


def drop_unused(
    db: sqlite_utils.Database, *, inputs: Collection[str] = (), results: Collection[str] = (),
    videos: Collection[str] = (),
) -> None:  # fmt: skip
    """Remove those of these stored files (by hash) that no run uses any more, inside the caller's
    transaction: a file shared by runs goes with the last of them."""
    if inputs:
        db["images"].delete_where(
            f"sha256 IN ({placeholders(inputs)}) "
            "AND sha256 NOT IN (SELECT content_sha FROM runs) AND sha256 NOT IN (SELECT sha256 FROM run_styles)",
            list(inputs),
        )
        # An owner's name for an input goes with the last of their runs that uses it.
        db["image_origins"].delete_where(
            f"sha256 IN ({placeholders(inputs)}) AND NOT EXISTS (SELECT 1 FROM runs WHERE runs.owner = "
            "image_origins.owner AND (runs.content_sha = image_origins.sha256 OR EXISTS (SELECT 1 FROM run_styles "
            "WHERE run_styles.run_id = runs.id AND run_styles.sha256 = image_origins.sha256)))",
            list(inputs),
        )
    for table, links, shas in (("result_images", "results", results), ("video_files", "videos", videos)):
        if shas:
            db[table].delete_where(
                f"sha256 IN ({placeholders(shas)}) AND sha256 NOT IN (SELECT sha256 FROM {links})", list(shas)
            )


def link_file(db: sqlite_utils.Database, links: str, run_id: int, sha: str, **columns: Any) -> None:
    """Make a stored file the run's result image (``links`` "results") or video ("videos", with its
    ``stats``), replacing an earlier one, which is dropped if no run uses it now."""
    before = next(db[links].rows_where("run_id = ?", [int(run_id)], select="sha256"), None)
    # INSERT OR REPLACE, not sqlite-utils' upsert: that one probes the file with a scratch table,
    # and when the probe fails (a full disk) falls back to INSERT OR IGNORE, which skips a row
    # with NOT NULL columns without a word.
    db[links].insert({"run_id": int(run_id), "sha256": sha, **columns}, replace=True)
    if before is not None and before["sha256"] != sha:
        drop_unused(db, **{links: [before["sha256"]]})


def insert_origin(db: sqlite_utils.Database, sha: str, owner: str, origin_kind: str, origin: str) -> None:
    """Record ``owner``'s name for a stored input (the first one they gave stays)."""
    row = {"sha256": sha, "owner": owner, "origin_kind": origin_kind, "origin": str(origin)}
    db["image_origins"].insert(row, ignore=True)


def insert_video_file(db: sqlite_utils.Database, sha: str, suffix: str, size: int, chunks: Iterable[bytes]) -> None:
    """Add a video file unless stored already, writing its bytes chunk by chunk (SQLite's blob I/O),
    so a video of hundreds of MB is never held whole in memory; the chunks must hash to ``sha``.

    Raises:
        GalleryError: the chunks are not ``size`` bytes hashing to ``sha`` (the caller's transaction
            is then rolled back).
    """
    if is_stored(db, "video_files", sha):
        return
    rowid = db.execute(
        "INSERT INTO video_files (sha256, data, suffix) VALUES (?, zeroblob(?), ?)", [sha, int(size), suffix]
    ).lastrowid
    digest, written = hashlib.sha256(), 0
    with db.conn.blobopen("video_files", "data", rowid) as blob:
        for chunk in chunks:
            if written + len(chunk) > size:
                raise GalleryError(f"video {sha[:12]}… holds more than its {size:,} bytes")
            blob.write(chunk)
            digest.update(chunk)
            written += len(chunk)
    if written != size or digest.hexdigest() != sha:
        raise GalleryError(f"video {sha[:12]}… changed while it was stored (its bytes no longer match their hash)")


@guarded
def store_image(
    db: sqlite_utils.Database, data: bytes, *, origin_kind: str, origin: str, owner: str | None = None
) -> str:
    """Store a content or style input once (keyed by its SHA-256), as given, with its origin.

    Args:
        data: the file's bytes (JPEG, PNG, ...), kept exactly so a re-run sees the same input.
        origin_kind: "upload", "file", "url" or "catalog".
        origin: the upload's file name, the path, the URL or the catalog style id.
        owner: on a shared site, the user storing it: the origin is recorded as theirs (the bytes
            are still stored once), and only their runs show it.

    Returns:
        The hex SHA-256 of ``data``. Storing the same bytes again keeps the first origin.

    Raises:
        ImageError: ``data`` is not an image an upload could be (the same checks as
            :func:`jaxstyle.images.open_image`: size, pixel count, a full decode).
    """
    if origin_kind not in ORIGIN_KINDS:
        raise GalleryError(f"origin_kind must be one of {', '.join(ORIGIN_KINDS)}, got {origin_kind!r}")
    data = bytes(data)
    width, height = checked_size(data, origin or "the input image")
    sha = images.sha256_hex(data)
    row = {"sha256": sha, "origin_kind": origin_kind, "origin": str(origin), "width": width, "height": height}
    with transaction(db):
        insert_image(db, {**row, "data": data})
        if owner is not None:
            insert_origin(db, sha, owner, origin_kind, origin)
    return sha


def insert_run(
    db: sqlite_utils.Database,
    row: dict[str, Any],
    settings: TransferSettings,
    style_shas: Sequence[str],
    blend: Sequence[float],
) -> int:
    """Insert a run row with its settings and its style links (inside the caller's transaction); returns the new id."""
    settings_dict = settings.to_dict()
    row = {**row, "settings": json.dumps(settings_dict), **{c: settings_dict.get(c) for c in SETTING_COLUMNS}}
    wanted = {row["content_sha"], *style_shas}
    present = {
        r["sha256"]
        for r in db["images"].rows_where(f"sha256 IN ({placeholders(wanted)})", list(wanted), select="sha256")
    }
    missing = sorted(wanted - present)
    if missing:
        raise GalleryError(f"input image {missing[0][:12]}… is not in the gallery {label(db)}; store it first")
    run_id = db["runs"].insert(row).last_rowid
    db["run_styles"].insert_all(
        {"run_id": run_id, "position": position, "sha256": sha, "blend": weight}
        for position, (sha, weight) in enumerate(zip(style_shas, blend, strict=True))
    )
    return int(run_id)


@guarded
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
    status: str = QUEUED,
    weights_source: str = "",
    device: str = "",
    method: str = METHOD_OPTIMIZE,
    model: str | None = None,
    owner: str | None = None,
) -> int:
    """Add a run when it is queued or starts; its inputs must be stored first (:func:`store_image`).

    Args:
        settings: ``TransferSettings.to_dict()``; validated and stored complete.
        content_sha, style_shas: the inputs' hashes from :func:`store_image`.
        style_blend: weight per style image (normalized to sum 1); default: the settings'
            ``style_blend``, else equal.
        status: "queued" or "running".
        method, model: how the run is made (jaxstyle.runs.METHODS) and, for an instant run, the
            trained model's name.
        owner: on a shared site, the signed-in user it belongs to (None: a personal gallery's run).

    Returns:
        The new run's id.

    Raises:
        SettingsError: invalid settings or blend weights.
        GalleryError: unknown input image, bad status, or the file can't be written.
    """
    if status not in ACTIVE_STATUSES:
        raise GalleryError(f"a new run's status must be queued or running, got {status!r}")
    if method not in METHODS or (method in MODEL_METHODS) != bool(model):
        raise GalleryError(
            f"a run's method is one of {', '.join(METHODS)}, with a model name for instant and video runs"
        )
    style_shas = list(style_shas)
    if style_blend is not None and isinstance(settings, Mapping):
        # Kept in the settings too, so a re-run from them blends the styles the same way.
        settings = {**settings, "style_blend": list(style_blend)}
    run_settings = checked_settings(settings)
    blend = run_settings.blend_for(len(style_shas))
    row = {
        "created": now_iso(),
        "status": status,
        "title": (title or "").strip(),
        "tags": tags_json(tags),
        "content_sha": content_sha,
        "weights_source": weights_source,
        "device": device,
        "group_id": group_id,
        "method": method,
        "model": model,
        "owner": owner,
        **process_owner(),
    }
    with transaction(db):
        return insert_run(db, row, run_settings, style_shas, blend)


def _change_if(
    db: sqlite_utils.Database,
    run_id: int,
    statuses: Sequence[str],
    values: Mapping[str, Any],
    conversions: Mapping[str, str] | None = None,
) -> bool:
    """Set a run's columns only while its status is one of ``statuses``; True if it was changed.

    ``conversions`` maps a column to an SQL expression of its ``?`` parameter, as in sqlite-utils'
    ``table.update(..., conversions=...)``.
    """
    conversions = conversions or {}
    assignments = ", ".join(f"{column} = {conversions.get(column, '?')}" for column in values)
    cursor = db.execute(
        f"UPDATE runs SET {assignments} WHERE id = ? AND status IN ({placeholders(statuses)})",
        [*values.values(), int(run_id), *statuses],
    )
    return cursor.rowcount > 0


@guarded
def start_run(db: sqlite_utils.Database, run_id: int, *, total_steps: int | None = None) -> bool:
    """Mark a run running, owned by this process (pid and host) with a fresh heartbeat.

    Returns:
        True if the run is now running; False if it had already ended (e.g. cancelled while
        queued), in which case the caller should not run it.
    """
    with transaction(db):
        row = require_run(db, run_id)
        steps = row["total_steps"] if total_steps is None else total_steps
        values = {"status": RUNNING, **process_owner(), "step": 0, "total_steps": steps}
        return _change_if(db, run_id, ACTIVE_STATUSES, values)


@guarded
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

    The preview is not decoded here: it is made by the run itself from its current image (never
    from outside input), comes often, and is dropped when the run finishes.

    Returns:
        True if the run is still queued/running; False if it has ended meanwhile (cancelled,
        or marked failed by another process), which the caller may take as a reason to stop.

    Raises:
        RunNotFound: the run was deleted.
    """
    entry = {"step": int(step), **float_dict(losses, "losses")}
    values = {
        "step": int(step),
        "total_steps": int(total_steps),
        **process_owner(),
        "status": RUNNING,
        "loss_history": json.dumps(entry),
    }
    with transaction(db):
        require_run(db, run_id)
        changed = _change_if(
            db, run_id, ACTIVE_STATUSES, values, {"loss_history": "json_insert(loss_history, '$[#]', json(?))"}
        )
        if changed and preview_png is not None:
            db["previews"].insert({"run_id": int(run_id), "png": bytes(preview_png), "step": int(step)}, replace=True)
        return changed


@guarded
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
        ImageError: ``image_png`` is not an image an upload could be (nothing is written).
        RunNotFound: the run was deleted.
    """
    image_png = bytes(image_png)
    checked = None  # decoded and checked once, outside the transaction, unless stored already
    if not is_stored(db, "result_images", images.sha256_hex(image_png)):
        checked = checked_thumbnail(image_png, f"the result of run {run_id}")
    final = float_dict(final_losses, "final_losses")
    values = {
        "status": DONE,
        "error": "",
        "finished": now_iso(),
        "initial_losses": json.dumps(float_dict(initial_losses, "initial_losses")),
        "final_losses": json.dumps(final),
        "final_loss": final.get(TOTAL_LOSS),
        "loss_history": json.dumps(history(loss_history)),
        "compile_s": float(compile_s),
        "run_s": float(run_s),
        "device": device,
        "weights_source": weights_source,
    }
    with transaction(db):
        row = require_run(db, run_id)
        sha = images.sha256_hex(image_png)
        if not is_stored(db, "result_images", sha):  # it may have gone with a deleted run meanwhile
            checked = checked or checked_thumbnail(image_png, f"the result of run {run_id}")
            insert_result_image(db, image_png, *checked)
        link_file(db, "results", run_id, sha)
        steps = row["total_steps"] if row["total_steps"] is not None else row["step"]
        update_run(db, run_id, {**values, "step": steps})
        db["previews"].delete_where("run_id = ?", [int(run_id)])


@guarded
def finish_video(
    db: sqlite_utils.Database,
    run_id: int,
    *,
    poster_png: bytes,
    video: bytes,
    suffix: str,
    stats: Mapping[str, Any],
    compile_s: float,
    run_s: float,
    device: str,
) -> None:
    """Store a video run's painted video and poster frame and mark it done, in one transaction.

    Raises:
        ImageError: ``poster_png`` is not an image an upload could be (nothing is written).
        GalleryError: an empty video or a suffix that is not a video's.
        RunNotFound: the run was deleted.
    """
    if not video or suffix not in VIDEO_SUFFIXES:
        raise GalleryError(f"run {run_id}: a video run needs its video ({', '.join(VIDEO_SUFFIXES)}), got {suffix!r}")
    with transaction(db):
        finish_run(
            db, run_id, image_png=poster_png, initial_losses={}, final_losses={}, loss_history=[],
            compile_s=compile_s, run_s=run_s, device=device, weights_source="",
        )  # fmt: skip
        video = bytes(video)
        sha = images.sha256_hex(video)
        insert_video_file(db, sha, suffix, len(video), [video])
        link_file(db, "videos", run_id, sha, stats=json.dumps(dict(stats)))


@guarded
def record_scores(
    db: sqlite_utils.Database,
    run_id: int,
    *,
    initial_losses: Mapping[str, float],
    final_losses: Mapping[str, float],
    loss_history: Sequence[Mapping[str, Any]],
) -> bool:
    """Store the losses of a finished run whose image was stored first (an instant run the app
    shows at once and scores after): only a run that is done and has no losses yet is changed.

    Returns:
        True if the losses were stored (False for a run not done, or scored already).
    """
    final = float_dict(final_losses, "final_losses")
    values = {
        "initial_losses": json.dumps(float_dict(initial_losses, "initial_losses")),
        "final_losses": json.dumps(final),
        "final_loss": final.get(TOTAL_LOSS),
        "loss_history": json.dumps(history(loss_history)),
    }
    with transaction(db):
        row = require_run(db, run_id)
        if row["status"] != DONE or row["final_loss"] is not None:
            return False
        update_run(db, run_id, values)
        return True


@guarded
def fail_run(db: sqlite_utils.Database, run_id: int, error: str, *, cancelled: bool = False) -> bool:
    """Mark a run failed (or cancelled) with the reason; a run that is done stays done.

    Returns:
        True if the status changed (False for a run that was already done).
    """
    status = CANCELLED if cancelled else FAILED
    with transaction(db):
        require_run(db, run_id)
        values = {"status": status, "error": str(error) or status, "finished": now_iso()}
        return _change_if(db, run_id, _NOT_DONE, values)
