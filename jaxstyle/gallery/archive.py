"""The gallery as files: one run as PNG + JSON, and the whole gallery as a zip that imports back.

An import is read and checked completely (the manifest, every setting, every image hash, and every
image through the same guard as an upload) before one transaction writes it: all or nothing.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from jaxstyle import files, images
from jaxstyle.errors import GalleryError, ImageError, SettingsError
from jaxstyle.gallery import values
from jaxstyle.gallery.database import guarded, transaction
from jaxstyle.gallery.lifecycle import ORIGIN_KINDS, VIDEO_SUFFIXES, insert_image, insert_run
from jaxstyle.gallery.queries import get_run, input_image, run_image, run_video
from jaxstyle.gallery.schema import SCHEMA_VERSION
from jaxstyle.runs import ACTIVE_STATUSES, FAILED, METHOD_OPTIMIZE, METHOD_VIDEO, METHODS, RUN_STATUSES
from jaxstyle.settings import TransferSettings

EXPORT_FORMAT = "jaxstyle-gallery"
EXPORT_VERSION = 1

# What an import reads at most. Each member's size is read from the ZIP's directory and checked
# before it is inflated, and inflating stops at the limit: a small ZIP cannot expand into memory.
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MAX_IMAGE_BYTES = images.MAX_INPUT_BYTES  # an input or result image, as an upload
MAX_MEMBERS = 100_000
MAX_RUNS = 10_000
MAX_TOTAL_BYTES = 4 * 1024**3  # every member together, inflated
MAX_INT_DIGITS = 18  # a whole number of the manifest fits SQLite's 64-bit integers
MAX_STEPS = 10**9

T = TypeVar("T")


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


@guarded
def export_gallery(
    db: sqlite_utils.Database, zip_path: str | os.PathLike, *, run_ids: Sequence[int] | None = None
) -> int:
    """Write the gallery (or the given runs) to a zip that :func:`import_gallery` reads back.

    The zip holds ``manifest.json`` (every run's fields and its inputs' origins), ``inputs/<sha256>.<ext>``,
    ``results/<run id>.png`` and, for video runs, ``videos/<run id>.mp4``. An existing file at
    ``zip_path`` is replaced only once the new one is complete.

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
                video = run_video(db, run.id)
                entry["video"] = None
                if video is not None:
                    entry["video"] = {"file": f"videos/{run.id}{video.suffix}", "stats": video.stats}
                    archive.writestr(entry["video"]["file"], video.data)  # already compressed
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


def _expect(value: Any, kinds: type | tuple[type, ...], where: str, allow_none: bool = False) -> Any:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise GalleryError(f"{where} has the wrong type (bool)")
    if not isinstance(value, kinds):
        raise GalleryError(f"{where} has the wrong type ({type(value).__name__})")
    return value


def _checked(check: Callable[[bytes, str], T], data: bytes, what: str) -> T:
    """An image of the export through the upload guard; a refused one makes the whole export invalid."""
    try:
        return check(data, what)
    except ImageError as error:  # its message starts with ``what``, which names the zip and the run
        raise GalleryError(str(error)) from None


def _member(archive: zipfile.ZipFile, zip_path: Path, name: str, what: str, limit: int) -> bytes:
    """A member's bytes, refused from its declared size before it is inflated, and never inflated
    past ``limit`` (a member whose data runs past its declared size is damaged)."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise GalleryError(f"{zip_path} is incomplete: {what} ({name}) is missing") from None
    if info.file_size > limit:
        raise GalleryError(
            f"{zip_path}: {what} ({name}) inflates to {_size(info.file_size)}; the limit is {_size(limit)}"
        )
    try:
        with archive.open(info) as member:
            data = member.read(limit + 1)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError) as error:
        raise GalleryError(f"{zip_path} is damaged: cannot read {name} ({error})") from None
    if len(data) > limit:
        raise GalleryError(f"{zip_path} is damaged: {name} holds more than its declared size")
    return data


def _size(count: int) -> str:
    return f"{count / 2**20:,.0f} MB" if count >= 2**20 else f"{count:,} bytes"


class _ManifestValue(ValueError):
    """A value of the manifest that no export writes (a huge number, NaN, Infinity)."""


def _whole_number(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _ManifestValue(f"a number of {len(text.lstrip('-'))} digits")
    return int(text)


def _real_number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _ManifestValue(f"the number {text[:20]}")
    return value


def _no_constant(name: str) -> Any:
    raise _ManifestValue(name)


def _parsed(data: bytes, zip_path: Path) -> Any:
    """The manifest's JSON, read once with every number checked as it is parsed."""
    try:
        return json.loads(data, parse_int=_whole_number, parse_float=_real_number, parse_constant=_no_constant)
    except RecursionError:
        raise GalleryError(f"{zip_path}: manifest.json is damaged (nested too deeply)") from None
    except _ManifestValue as error:
        raise GalleryError(f"{zip_path}: manifest.json is damaged ({error} is not a value an export holds)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise GalleryError(f"{zip_path}: manifest.json is not valid JSON ({error})") from None


def _count(value: Any, where: str, *, allow_none: bool = False) -> int | None:
    """A whole number 0 … MAX_STEPS (a step count), not a boolean."""
    if value is None and allow_none:
        return None
    if type(value) is not int or not 0 <= value <= MAX_STEPS:
        raise GalleryError(f"{where} must be a whole number from 0 to {MAX_STEPS:,}, got {str(value)[:40]}")
    return value


def _manifest(archive: zipfile.ZipFile, zip_path: Path) -> dict[str, Any]:
    manifest = _parsed(_member(archive, zip_path, "manifest.json", "the manifest", MAX_MANIFEST_BYTES), zip_path)
    if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT:
        raise GalleryError(f"{zip_path} is not a jaxstyle gallery export (no {EXPORT_FORMAT} manifest)")
    version = manifest.get("version")
    if type(version) is not int or version != EXPORT_VERSION:  # true is not 1
        raise GalleryError(f"{zip_path} is export version {str(version)[:20]!r}; this jaxstyle reads {EXPORT_VERSION}")
    return manifest


def _input_row(archive: zipfile.ZipFile, zip_path: Path, sha: str, info: Any) -> dict[str, Any]:
    """The ``images`` row of one input of the export, its bytes checked against its hash and by the upload guard."""
    where = f"{zip_path}: input {str(sha)[:12]}…"
    _expect(info, dict, where)
    name = _expect(info.get("file"), str, f"{where} file")
    data = _member(archive, zip_path, name, f"input image {sha}", MAX_IMAGE_BYTES)
    if images.sha256_hex(data) != sha:
        raise GalleryError(f"{where} is damaged: its bytes don't match its SHA-256")
    kind = info.get("origin_kind")
    if kind not in ORIGIN_KINDS:
        raise GalleryError(f"{where} has an unknown origin kind {kind!r}")
    width, height = _checked(values.checked_size, data, f"{where} ({info.get('origin')})")
    origin = str(info.get("origin", ""))
    return {"sha256": sha, "origin_kind": kind, "origin": origin, "width": width, "height": height, "data": data}


def _imported_run(
    archive: zipfile.ZipFile, zip_path: Path, index: int, entry: Any, inputs: dict[str, Any]
) -> dict[str, Any]:
    """One run of the export, checked: its ``runs`` row, settings, style hashes, blend and ``results`` row (or None)."""
    _expect(entry, dict, f"{zip_path}: run #{index + 1}")
    old_id = _expect(entry.get("id"), int, f"{zip_path}: run #{index + 1} id")
    where = f"{zip_path}: run {old_id}"
    try:
        settings = values.checked_settings(_expect(entry.get("settings"), dict, f"{where} settings"))
    except SettingsError as error:
        raise GalleryError(f"{where} has invalid settings: {error}") from None
    status = entry.get("status")
    if status not in RUN_STATUSES:
        raise GalleryError(f"{where} has an unknown status {status!r}")
    error_text = str(entry.get("error") or "")
    if status in ACTIVE_STATUSES:  # it isn't running here, and never will be
        status, error_text = FAILED, f"interrupted: it was {status} when it was exported"
    content = _expect(entry.get("content"), dict, f"{where} content")
    styles = _expect(entry.get("styles"), list, f"{where} styles")
    shas = [_expect(content.get("sha256"), str, f"{where} content")] + [
        _expect(_expect(s, dict, f"{where} style").get("sha256"), str, f"{where} style") for s in styles
    ]
    if not styles or any(sha not in inputs for sha in shas):
        raise GalleryError(f"{where} refers to input images that are not in the export")
    created_text = _expect(entry.get("created"), str, f"{where} created")
    finished = _expect(entry.get("finished") or None, str, f"{where} finished", allow_none=True)
    try:
        created = datetime.fromisoformat(created_text).astimezone(UTC).isoformat(timespec="microseconds")
        finished = datetime.fromisoformat(finished).isoformat() if finished else None
    except (ValueError, OverflowError):  # year 1 in another time zone is before year 1 in UTC
        raise GalleryError(f"{where} has an invalid time") from None

    def losses(name: str) -> dict[str, float | None]:
        return values.float_dict(_expect(entry.get(name) or {}, dict, f"{where} {name}"), where)

    def number(name: str) -> float | None:
        return _expect(entry.get(name), (int, float), f"{where} {name}", allow_none=True)

    final_losses = losses("final_losses")
    row = {
        "created": created,
        "status": status,
        "error": error_text,
        "title": str(entry.get("title") or ""),
        "tags": values.tags_json(_expect(entry.get("tags") or [], list, f"{where} tags")),
        "favorite": 1 if entry.get("favorite") else 0,
        "group_id": _expect(entry.get("group_id"), str, f"{where} group_id", allow_none=True),
        # Exports from before instant runs have no method: they were optimizations.
        "method": _expect(entry.get("method") or METHOD_OPTIMIZE, str, f"{where} method"),
        "model": _expect(entry.get("model"), str, f"{where} model", allow_none=True),
        "content_sha": shas[0],
        "weights_source": str(entry.get("weights_source") or ""),
        "device": str(entry.get("device") or ""),
        "compile_s": number("compile_s"),
        "run_s": number("run_s"),
        "initial_losses": json.dumps(losses("initial_losses")),
        "final_losses": json.dumps(final_losses),
        "final_loss": final_losses.get(values.TOTAL_LOSS),
        "loss_history": json.dumps(values.history(_expect(entry.get("loss_history") or [], list, where))),
        "step": _count(entry.get("step") or 0, f"{where} step"),
        "total_steps": _count(entry.get("total_steps"), f"{where} total_steps", allow_none=True),
        "finished": finished,
    }
    if row["method"] not in METHODS:
        raise GalleryError(f"{where} has an unknown method {row['method']!r} (one of {', '.join(METHODS)})")
    blend = [float(_expect(s.get("blend"), (int, float), f"{where} style blend")) for s in styles]
    if any(not 0 <= weight < math.inf for weight in blend):
        raise GalleryError(f"{where} has a negative style blend")
    result = None
    if entry.get("image") is not None:
        image = _expect(entry["image"], str, f"{where} image")
        png = _member(archive, zip_path, image, f"the result of run {old_id}", MAX_IMAGE_BYTES)
        thumbnail, width, height = _checked(values.checked_thumbnail, png, f"{where} result image")
        result = {"png": png, "thumbnail": thumbnail, "width": width, "height": height}
    video = _imported_video(archive, zip_path, where, entry.get("video"))
    if (video is not None) != (row["method"] == METHOD_VIDEO and result is not None):
        raise GalleryError(f"{where}: a finished video run has its video, and only a video run has one")
    return {"row": row, "settings": settings, "style_shas": shas[1:], "blend": blend, "result": result,
            "video": video}  # fmt: skip


def _imported_video(archive: zipfile.ZipFile, zip_path: Path, where: str, entry: Any) -> dict[str, Any] | None:
    """A video run's ``videos`` row, its file checked as an upload is (size first, then its header)."""
    if entry is None:
        return None
    from jaxstyle.video import files as video_files

    _expect(entry, dict, f"{where} video")
    name = _expect(entry.get("file"), str, f"{where} video file")
    suffix = Path(name).suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise GalleryError(f"{where}: its video {name} is not one of {', '.join(VIDEO_SUFFIXES)}")
    stats = _expect(entry.get("stats") or {}, dict, f"{where} video stats")
    if any(not isinstance(k, str) or not isinstance(v, (int, float, str, type(None))) for k, v in stats.items()):
        raise GalleryError(f"{where}: its video's stats are not plain numbers")
    try:
        declared = archive.getinfo(name).file_size
    except KeyError:
        raise GalleryError(f"{zip_path} is incomplete: the video of {where} ({name}) is missing") from None
    if declared > video_files.DEFAULT_LIMITS.max_bytes:
        raise GalleryError(f"{where}: its video is {declared / 2**20:.0f} MB; {video_files.DEFAULT_LIMITS.describe()}")
    data = _member(archive, zip_path, name, f"the video of {where}", video_files.DEFAULT_LIMITS.max_bytes)
    with tempfile.TemporaryDirectory(prefix="jaxstyle-import-") as folder:
        probe_path = Path(folder) / f"video{suffix}"
        probe_path.write_bytes(data)
        try:
            video_files.probe(probe_path)
        except video_files.VideoError as error:
            raise GalleryError(f"{where}: {error}".replace(f"video{suffix}", name)) from None
    return {"data": data, "suffix": suffix, "stats": json.dumps(stats)}


def _read_export(zip_path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Read and check a gallery zip completely: its runs (see :func:`_imported_run`) and its ``images`` rows."""
    try:
        archive = zipfile.ZipFile(zip_path)
    except FileNotFoundError:
        raise GalleryError(f"{zip_path} does not exist") from None
    except (zipfile.BadZipFile, OSError) as error:
        raise GalleryError(f"{zip_path} is not a jaxstyle gallery export (not a zip file: {error})") from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise GalleryError(f"{zip_path} holds {len(members):,} files; an export has at most {MAX_MEMBERS:,}")
        total = sum(member.file_size for member in members)
        if total > MAX_TOTAL_BYTES:
            raise GalleryError(
                f"{zip_path} inflates to {_size(total)}; an import takes at most {_size(MAX_TOTAL_BYTES)}"
            )
        manifest = _manifest(archive, zip_path)
        inputs = _expect(manifest.get("inputs"), dict, f"{zip_path}: inputs")
        entries = _expect(manifest.get("runs"), list, f"{zip_path}: runs")
        if len(entries) > MAX_RUNS:
            raise GalleryError(f"{zip_path} holds {len(entries):,} runs; an import takes at most {MAX_RUNS:,}")
        input_rows = [_input_row(archive, zip_path, sha, info) for sha, info in inputs.items()]
        runs = [_imported_run(archive, zip_path, index, entry, inputs) for index, entry in enumerate(entries)]
    return runs, input_rows


class ImportedRuns(list):
    """The new runs' ids (a list, in the export's order), and how many runs of the export were
    already in the gallery and so were skipped."""

    def __init__(self, run_ids: Sequence[int] = (), already_here: int = 0) -> None:
        super().__init__(run_ids)
        self.already_here = already_here

    def summary(self) -> str:
        """``imported 2 runs`` / ``imported 0 runs, 1 already here``."""
        text = f"imported {len(self)} run{'s' if len(self) != 1 else ''}"
        return text + (f", {self.already_here} already here" if self.already_here else "")


def _fingerprint(
    settings: TransferSettings, row: Mapping[str, Any], styles: Sequence[tuple[str, float]],
    result_png: bytes | None, video: bytes | None,
) -> str:  # fmt: skip
    """What makes a run the same run: its settings, method, model, status, inputs (by hash, with
    their blend), result image and video (by hash). Titles, tags and times do not count."""
    document = {
        "settings": settings.to_dict(),
        "method": row["method"], "model": row["model"], "status": row["status"],
        "content": row["content_sha"], "styles": [[sha, float(blend)] for sha, blend in styles],
        "result": images.sha256_hex(result_png) if result_png is not None else None,
        "video": images.sha256_hex(video) if video is not None else None,
    }  # fmt: skip
    return images.sha256_hex(json.dumps(document, sort_keys=True).encode())


def _fingerprints_here(db: sqlite_utils.Database, content_shas: set[str]) -> set[str]:
    """The fingerprints of the gallery's runs whose photo is one of ``content_shas`` (the only ones
    an imported run can be the same as)."""
    found = set()
    for sha in content_shas:
        for row in db.query(
            "SELECT id, settings, method, model, status, content_sha FROM runs WHERE content_sha = ?", [sha]
        ):
            styles = [(r["sha256"], r["blend"]) for r in db.query(
                "SELECT sha256, blend FROM run_styles WHERE run_id = ? ORDER BY position", [row["id"]])]  # fmt: skip
            video = next(db.query("SELECT data FROM videos WHERE run_id = ?", [row["id"]]), None)
            try:
                settings = TransferSettings.from_dict(json.loads(row["settings"]))
            except (SettingsError, ValueError):
                continue  # a run stored by another version: never the same as an imported one
            found.add(_fingerprint(settings, row, styles, run_image(db, row["id"]), video and bytes(video["data"])))
    return found


@guarded
def import_gallery(db: sqlite_utils.Database, zip_path: str | os.PathLike) -> ImportedRuns:
    """Add the runs of an :func:`export_gallery` zip as new runs (new ids), all or nothing; a run
    already in the gallery (same settings, inputs and result: see :func:`_fingerprint`) is skipped
    and counted, so importing the same ZIP twice adds nothing.

    Everything is read and checked (settings via ``TransferSettings.from_dict``, image hashes,
    result images) before one transaction writes it. Runs exported while queued or running
    are imported as failed.

    Returns:
        The new runs' ids, in the export's order, and how many were already here.

    Raises:
        GalleryError: the file is not a valid export (nothing is imported).
    """
    zip_path = Path(zip_path)
    runs, input_rows = _read_export(zip_path)
    imported = ImportedRuns()
    with transaction(db):
        here = _fingerprints_here(db, {run["row"]["content_sha"] for run in runs})
        for row in input_rows:
            insert_image(db, row)
        for run in runs:
            result_png = run["result"]["png"] if run["result"] is not None else None
            video = run["video"]["data"] if run["video"] is not None else None
            styles = list(zip(run["style_shas"], run["blend"], strict=True))
            fingerprint = _fingerprint(run["settings"], run["row"], styles, result_png, video)
            if fingerprint in here:
                imported.already_here += 1
                continue
            here.add(fingerprint)
            run_id = insert_run(db, run["row"], run["settings"], run["style_shas"], run["blend"])
            if run["result"] is not None:
                db["results"].insert({"run_id": run_id, **run["result"]})
            if run["video"] is not None:
                db["videos"].insert({"run_id": run_id, **run["video"]})
            imported.append(run_id)
        # Inputs only the skipped runs used are not kept.
        shas = [row["sha256"] for row in input_rows]
        if shas:
            db["images"].delete_where(
                f"sha256 IN ({', '.join('?' * len(shas))}) "
                "AND sha256 NOT IN (SELECT content_sha FROM runs) AND sha256 NOT IN (SELECT sha256 FROM run_styles)",
                shas,
            )
    return imported
