"""The gallery as files: one run as PNG + JSON, and the whole gallery (or some runs) as a zip
that :mod:`jaxstyle.gallery.imports` reads back. Every file goes into the zip once, by hash, as
the gallery stores it: runs that share a result share its member.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlite_utils

from jaxstyle import files
from jaxstyle.errors import GalleryError
from jaxstyle.gallery import values
from jaxstyle.gallery.database import guarded
from jaxstyle.gallery.queries import get_run, input_image, run_image, run_video
from jaxstyle.gallery.schema import SCHEMA_VERSION

EXPORT_FORMAT = "jaxstyle-gallery"
EXPORT_VERSION = 1


@guarded
def export_run(db: sqlite_utils.Database, run_id: int, dest_dir: str | os.PathLike) -> tuple[Path | None, Path]:
    """Write ``run-<id>.png`` (if the run has a result) and ``run-<id>.json`` (settings and all) into
    ``dest_dir``; a video run's video too (``run-<id>.mp4``).

    Returns:
        (png path or None, json path).
    """
    run = get_run(db, run_id)
    dest = Path(dest_dir)
    png = run_image(db, run_id)
    video = run_video(db, run_id)
    try:
        png_path = None
        if png is not None:
            png_path = dest / f"run-{run.id}.png"
            files.atomic_write(png_path, png)
        if video is not None:  # a video run: its video beside its poster frame
            files.atomic_write(dest / f"run-{run.id}{video.suffix}", video.data)
        json_path = dest / f"run-{run.id}.json"
        document = {"format": "jaxstyle-run", "version": EXPORT_VERSION, **run.to_dict()}
        files.atomic_write(json_path, json.dumps(document, indent=2).encode())
    except OSError as error:
        raise GalleryError(f"cannot export run {run_id} to {dest}: {error.strerror or error}") from None
    return png_path, json_path


def _extension(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "png"
    if data.startswith(b"\xff\xd8"):
        return "jpg"
    return "bin"


def _copy_video(db: sqlite_utils.Database, sha: str, archive: zipfile.ZipFile, name: str) -> None:
    """A stored video into the zip in pieces (SQLite's blob I/O), never whole in memory."""
    rowid = db.execute("SELECT rowid FROM video_files WHERE sha256 = ?", [sha]).fetchone()[0]
    with db.conn.blobopen("video_files", "data", rowid, readonly=True) as blob, archive.open(name, "w") as member:
        while chunk := blob.read(1 << 20):
            member.write(chunk)


@guarded
def export_gallery(
    db: sqlite_utils.Database, zip_path: str | os.PathLike, *, run_ids: Sequence[int] | None = None
) -> int:
    """Write the gallery (or the given runs) to a zip that :func:`~jaxstyle.gallery.imports.import_gallery` reads back.

    The zip holds ``manifest.json`` (every run's fields and its inputs' origins), and each file
    once, named by its hash: ``inputs/<sha256>.<ext>``, ``results/<sha256>.png`` and, for video
    runs, ``videos/<sha256>.mp4``. An existing file at ``zip_path`` is replaced only once the new
    one is complete.

    Returns:
        The number of runs exported.
    """
    zip_path = Path(zip_path)
    if run_ids is None:
        run_ids = [row["id"] for row in db["runs"].rows_where(select="id", order_by="id")]
    runs = [get_run(db, run_id) for run_id in run_ids]
    inputs: dict[str, dict[str, Any]] = {}
    for run in runs:
        for info in (run.content, *run.styles):
            inputs.setdefault(info.sha256, {k: v for k, v in info.to_dict().items() if k != "blend"})

    def write(file) -> None:
        written: set[str] = set()
        with zipfile.ZipFile(file, "w") as archive:
            for sha, info in inputs.items():
                data = input_image(db, sha)
                info["file"] = f"inputs/{sha}.{_extension(data)}"
                archive.writestr(info["file"], data)  # JPEG/PNG: already compressed, stored as is
            entries = []
            for run in runs:
                entry = run.to_dict()
                links = db.execute(
                    "SELECT (SELECT sha256 FROM results WHERE run_id = :id), "
                    "(SELECT videos.sha256 || video_files.suffix FROM videos JOIN video_files USING (sha256) "
                    "WHERE run_id = :id), (SELECT stats FROM videos WHERE run_id = :id)",
                    {"id": run.id},
                ).fetchone()
                result_sha, video_file, stats = links
                entry["image"] = f"results/{result_sha}.png" if result_sha else None
                if result_sha and entry["image"] not in written:
                    archive.writestr(entry["image"], run_image(db, run.id))
                    written.add(entry["image"])
                entry["video"] = None
                if video_file:
                    entry["video"] = {"file": f"videos/{video_file}", "stats": json.loads(stats or "{}")}
                    if entry["video"]["file"] not in written:  # already compressed: stored as is
                        _copy_video(db, video_file[:64], archive, entry["video"]["file"])
                        written.add(entry["video"]["file"])
                entries.append(entry)
            manifest = {
                "format": EXPORT_FORMAT,
                "version": EXPORT_VERSION,
                "schema_version": SCHEMA_VERSION,
                "exported": values.now_iso(),
                "inputs": inputs,
                "runs": entries,
            }
            archive.writestr("manifest.json", json.dumps(manifest, indent=1), compress_type=zipfile.ZIP_DEFLATED)

    try:
        files.atomic_write(zip_path, write)
    except OSError as error:
        raise GalleryError(f"cannot write the export {zip_path}: {error.strerror or error}") from None
    return len(runs)
