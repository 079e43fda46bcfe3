"""Importing a gallery ZIP under a budget: all or nothing, and a small ZIP can't grow big.

Two passes over the ZIP, so memory holds one member at a time (plus thumbnails):

1. **Check** everything before writing anything: the directory (member count, declared sizes,
   compression methods) before a byte is inflated; the manifest, parsed with every number checked
   as it is read; every input, result and video through the same guards as an upload (images by
   their header first, then one decode each). Only hashes, sizes and thumbnails are kept.
2. **Write** in one transaction: the runs not already in the gallery, each file read again (and
   its hash checked again) only when the gallery does not hold those bytes yet. Files are stored
   once by SHA-256, so 500 runs pointing at one image add one image.

Each member is inflated at most up to its declared size and its limit (zipfile stops at the
declared size; only stored and deflated members, whose inflating is bounded per read, are read).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from jaxstyle import images
from jaxstyle.errors import GalleryError, ImageError, LimitError, SettingsError
from jaxstyle.gallery import values
from jaxstyle.gallery.access import storage_bytes
from jaxstyle.gallery.archive import EXPORT_FORMAT, EXPORT_VERSION
from jaxstyle.gallery.database import guarded, transaction
from jaxstyle.gallery.lifecycle import (
    ORIGIN_KINDS,
    VIDEO_SUFFIXES,
    insert_image,
    insert_origin,
    insert_result_image,
    insert_run,
    insert_video_file,
    is_stored,
    link_file,
)
from jaxstyle.runs import ACTIVE_STATUSES, FAILED, METHOD_OPTIMIZE, METHOD_VIDEO, METHODS, RUN_STATUSES
from jaxstyle.settings import TransferSettings
from jaxstyle.site import HOW_TO_GET_MORE

# What an import reads at most (the README's limits table). Checked from the ZIP's directory
# before anything is inflated, and again while inflating.
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MAX_IMAGE_BYTES = images.MAX_INPUT_BYTES  # an input or result image, as an upload
MAX_MEMBERS = 100_000
MAX_RUNS = 10_000
MAX_TOTAL_BYTES = 4 * 1024**3  # every member together, inflated
MAX_INT_DIGITS = 18  # a whole number of the manifest fits SQLite's 64-bit integers
MAX_STEPS = 10**9
CHUNK_BYTES = 1 << 20  # videos are copied in pieces this big
# Bounded inflating: zipfile caps each read of these at its size; bzip2 and LZMA reads are not.
READABLE_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}


def _size(count: int) -> str:
    return f"{count / 2**20:,.0f} MB" if count >= 2**20 else f"{count:,} bytes"


@dataclass(frozen=True)
class _Image:
    """An image member that passed the upload guard: its hash, its size and the thumbnail made then."""

    name: str
    sha: str
    thumbnail: bytes  # these three as values.checked_thumbnail returns them
    width: int
    height: int


@dataclass(frozen=True)
class _Video:
    """A video member whose header passed the upload checks."""

    name: str
    sha: str
    size: int
    suffix: str


class _Reader:
    """One open export: members read under their limits, each image decoded once (by hash) and
    each video checked once (by name), whatever the number of runs that point at them."""

    def __init__(self, archive: zipfile.ZipFile, zip_path: Path) -> None:
        self.archive, self.zip_path = archive, zip_path
        self._images: dict[str, _Image] = {}
        self._decoded: dict[str, tuple[bytes, int, int]] = {}
        self._videos: dict[str, _Video] = {}

    def info(self, name: str, what: str, limit: int) -> zipfile.ZipInfo:
        """A member's directory entry; refused when missing, declared over ``limit``, or not
        inflatable under a budget."""
        try:
            info = self.archive.getinfo(name)
        except KeyError:
            raise GalleryError(f"{self.zip_path} is incomplete: {what} ({name}) is missing") from None
        if info.file_size > limit:
            raise GalleryError(
                f"{self.zip_path}: {what} ({name}) inflates to {_size(info.file_size)}; the limit is {_size(limit)}"
            )
        if info.compress_type not in READABLE_METHODS:
            raise GalleryError(
                f"{self.zip_path}: {what} ({name}) is compressed with method {info.compress_type}; "
                f"an export's members are {' or '.join(READABLE_METHODS.values())}"
            )
        return info

    def chunks(self, name: str, what: str, limit: int) -> Iterator[bytes]:
        """A member's bytes in pieces, never inflated past its declared size (nor ``limit``)."""
        info = self.info(name, what, limit)
        try:
            with self.archive.open(info) as member:
                while chunk := member.read(CHUNK_BYTES):
                    yield chunk
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError) as error:
            raise GalleryError(f"{self.zip_path} is damaged: cannot read {name} ({error})") from None

    def read(self, name: str, what: str, limit: int) -> bytes:
        return b"".join(self.chunks(name, what, limit))

    def image(self, name: str, what: str) -> _Image:
        """An image member through the upload guard (header first, then one decode per distinct image)."""
        if name not in self._images:
            data = self.read(name, what, MAX_IMAGE_BYTES)
            sha = images.sha256_hex(data)
            if sha not in self._decoded:
                try:
                    self._decoded[sha] = values.checked_thumbnail(data, what)
                except ImageError as error:  # its message starts with ``what``, which names the zip
                    raise GalleryError(str(error)) from None
            self._images[name] = _Image(name, sha, *self._decoded[sha])
        return self._images[name]

    def video(self, name: str, where: str) -> _Video:
        """A video member checked as an upload is: its declared size, then its header (copied to a
        temporary file in pieces, since the decoder reads files)."""
        from jaxstyle.video import files as video_files

        if name in self._videos:
            return self._videos[name]
        suffix = Path(name).suffix.lower()
        if suffix not in VIDEO_SUFFIXES:
            raise GalleryError(f"{where}: its video {name} is not one of {', '.join(VIDEO_SUFFIXES)}")
        limits = video_files.DEFAULT_LIMITS
        declared = self.info(name, f"the video of {where}", 2**63).file_size
        if declared > limits.max_bytes:
            raise GalleryError(f"{where}: its video is {declared / 2**20:.0f} MB; {limits.describe()}")
        digest = hashlib.sha256()
        with tempfile.TemporaryDirectory(prefix="jaxstyle-import-") as folder:
            probe_path = Path(folder) / f"video{suffix}"
            with probe_path.open("wb") as copy:
                for chunk in self.chunks(name, f"the video of {where}", limits.max_bytes):
                    digest.update(chunk)
                    copy.write(chunk)
            try:
                video_files.probe(probe_path)
            except video_files.VideoError as error:
                raise GalleryError(f"{where}: {error}".replace(f"video{suffix}", name)) from None
        self._videos[name] = _Video(name, digest.hexdigest(), declared, suffix)
        return self._videos[name]

    def stored_bytes(self, name: str, sha: str, limit: int) -> bytes:
        """A member read again for writing, its hash checked against the one checked before."""
        data = self.read(name, name, limit)
        if images.sha256_hex(data) != sha:
            raise GalleryError(f"{self.zip_path} changed while it was imported ({name}); nothing was imported")
        return data


def _expect(value: Any, kinds: type | tuple[type, ...], where: str, allow_none: bool = False) -> Any:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise GalleryError(f"{where} has the wrong type (bool)")
    if not isinstance(value, kinds):
        raise GalleryError(f"{where} has the wrong type ({type(value).__name__})")
    return value


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


def _manifest(reader: _Reader) -> dict[str, Any]:
    zip_path = reader.zip_path
    manifest = _parsed(reader.read("manifest.json", "the manifest", MAX_MANIFEST_BYTES), zip_path)
    if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT:
        raise GalleryError(f"{zip_path} is not a jaxstyle gallery export (no {EXPORT_FORMAT} manifest)")
    version = manifest.get("version")
    if type(version) is not int or version != EXPORT_VERSION:  # true is not 1
        raise GalleryError(f"{zip_path} is export version {str(version)[:20]!r}; this jaxstyle reads {EXPORT_VERSION}")
    return manifest


def _input(reader: _Reader, sha: str, info: Any) -> dict[str, Any]:
    """One input of the export, checked: its ``images`` row without its bytes, and its member's name."""
    where = f"{reader.zip_path}: input {str(sha)[:12]}…"
    _expect(info, dict, where)
    name = _expect(info.get("file"), str, f"{where} file")
    kind = info.get("origin_kind")
    if kind not in ORIGIN_KINDS:
        raise GalleryError(f"{where} has an unknown origin kind {kind!r}")
    origin = str(info.get("origin", ""))
    image = reader.image(name, f"{where} ({origin})")
    if image.sha != sha:
        raise GalleryError(f"{where} is damaged: its bytes don't match its SHA-256")
    return {"sha256": sha, "origin_kind": kind, "origin": origin, "width": image.width, "height": image.height,
            "file": name}  # fmt: skip


@dataclass
class _Run:
    """One run of the export, checked."""

    row: dict[str, Any]
    settings: TransferSettings
    style_shas: list[str]
    blend: list[float]
    result: _Image | None
    video: _Video | None
    video_stats: str

    def fingerprint(self) -> str:
        return _fingerprint(
            self.settings, self.row, list(zip(self.style_shas, self.blend, strict=True)),
            self.result and self.result.sha, self.video and self.video.sha,
        )  # fmt: skip


def _imported_run(reader: _Reader, index: int, entry: Any, inputs: Mapping[str, Any]) -> _Run:
    """One run of the export, checked: its ``runs`` row, settings, style hashes, blend, result and video."""
    zip_path = reader.zip_path
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
        result = reader.image(_expect(entry["image"], str, f"{where} image"), f"{where} result image")
    video, stats = _video(reader, where, entry.get("video"))
    if (video is not None) != (row["method"] == METHOD_VIDEO and result is not None):
        raise GalleryError(f"{where}: a finished video run has its video, and only a video run has one")
    return _Run(row, settings, shas[1:], blend, result, video, stats)


def _video(reader: _Reader, where: str, entry: Any) -> tuple[_Video | None, str]:
    """A video run's video (checked as an upload is) and what it measured, as stored JSON."""
    if entry is None:
        return None, "{}"
    _expect(entry, dict, f"{where} video")
    name = _expect(entry.get("file"), str, f"{where} video file")
    stats = _expect(entry.get("stats") or {}, dict, f"{where} video stats")
    if any(not isinstance(k, str) or not isinstance(v, (int, float, str, type(None))) for k, v in stats.items()):
        raise GalleryError(f"{where}: its video's stats are not plain numbers")
    return reader.video(name, where), json.dumps(stats)


def _checked_export(reader: _Reader) -> tuple[list[_Run], list[dict[str, Any]]]:
    """Pass 1: the export's runs and inputs, every one of them checked; nothing written."""
    zip_path = reader.zip_path
    members = reader.archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise GalleryError(f"{zip_path} holds {len(members):,} files; an export has at most {MAX_MEMBERS:,}")
    total = sum(member.file_size for member in members)
    if total > MAX_TOTAL_BYTES:
        raise GalleryError(f"{zip_path} inflates to {_size(total)}; an import takes at most {_size(MAX_TOTAL_BYTES)}")
    manifest = _manifest(reader)
    inputs = _expect(manifest.get("inputs"), dict, f"{zip_path}: inputs")
    entries = _expect(manifest.get("runs"), list, f"{zip_path}: runs")
    if len(entries) > MAX_RUNS:
        raise GalleryError(f"{zip_path} holds {len(entries):,} runs; an import takes at most {MAX_RUNS:,}")
    input_rows = [_input(reader, sha, info) for sha, info in inputs.items()]
    runs = [_imported_run(reader, index, entry, inputs) for index, entry in enumerate(entries)]
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
    result_sha: str | None, video_sha: str | None,
) -> str:  # fmt: skip
    """What makes a run the same run: its settings, method, model, status, inputs (by hash, with
    their blend), result image and video (by hash). Titles, tags and times do not count."""
    document = {
        "settings": settings.to_dict(),
        "method": row["method"], "model": row["model"], "status": row["status"],
        "content": row["content_sha"], "styles": [[sha, float(blend)] for sha, blend in styles],
        "result": result_sha, "video": video_sha,
    }  # fmt: skip
    return images.sha256_hex(json.dumps(document, sort_keys=True).encode())


def _fingerprints_here(db: sqlite_utils.Database, content_shas: set[str], owner: str | None) -> set[str]:
    """The fingerprints of ``owner``'s runs whose photo is one of ``content_shas`` (the only ones
    an imported run can be the same as: another user's run is not theirs)."""
    found = set()
    for sha in content_shas:
        for row in db.query(
            "SELECT id, settings, method, model, status, content_sha, "
            "(SELECT sha256 FROM results WHERE run_id = runs.id) AS result_sha, "
            "(SELECT sha256 FROM videos WHERE run_id = runs.id) AS video_sha FROM runs "
            "WHERE content_sha = ? AND owner IS ?",
            [sha, owner],
        ):
            styles = [(r["sha256"], r["blend"]) for r in db.query(
                "SELECT sha256, blend FROM run_styles WHERE run_id = ? ORDER BY position", [row["id"]])]  # fmt: skip
            try:
                settings = TransferSettings.from_dict(json.loads(row["settings"]))
            except (SettingsError, ValueError):
                continue  # a run stored by another version: never the same as an imported one
            found.add(_fingerprint(settings, row, styles, row["result_sha"], row["video_sha"]))
    return found


def _write(
    db: sqlite_utils.Database, reader: _Reader, run: _Run, inputs: Mapping[str, dict[str, Any]], owner: str | None
) -> int:
    """Pass 2 for one new run, inside the import's transaction: the files the gallery lacks, then the run."""
    for sha in (run.row["content_sha"], *run.style_shas):
        row = {k: v for k, v in inputs[sha].items() if k != "file"}
        if not is_stored(db, "images", sha):
            insert_image(db, {**row, "data": reader.stored_bytes(inputs[sha]["file"], sha, MAX_IMAGE_BYTES)})
        if owner is not None:
            insert_origin(db, sha, owner, row["origin_kind"], row["origin"])
    run_id = insert_run(db, {**run.row, "owner": owner}, run.settings, run.style_shas, run.blend)
    if run.result is not None:
        image = run.result
        if not is_stored(db, "result_images", image.sha):
            png = reader.stored_bytes(image.name, image.sha, MAX_IMAGE_BYTES)
            insert_result_image(db, png, image.thumbnail, image.width, image.height)
        link_file(db, "results", run_id, image.sha)
    if run.video is not None:
        video = run.video
        insert_video_file(db, video.sha, video.suffix, video.size, reader.chunks(video.name, video.name, video.size))
        link_file(db, "videos", run_id, video.sha, stats=run.video_stats)
    return run_id


@guarded
def import_gallery(
    db: sqlite_utils.Database, zip_path: str | os.PathLike, *, owner: str | None = None,
    storage_limit: int | None = None,
) -> ImportedRuns:  # fmt: skip
    """Add the runs of an :func:`~jaxstyle.gallery.archive.export_gallery` zip as new runs (new ids),
    all or nothing; a run already in the gallery (same settings, inputs and result: see
    :func:`_fingerprint`) is skipped and counted, so importing the same ZIP twice adds nothing.

    Everything is read and checked (settings via ``TransferSettings.from_dict``, image hashes,
    images and videos as uploads are) before one transaction writes it, under the limits above.
    Runs exported while queued or running are imported as failed.

    On a shared site the runs become ``owner``'s (whatever the export says), and the import is
    refused when their storage would then pass ``storage_limit`` bytes.

    Returns:
        The new runs' ids, in the export's order, and how many were already here.

    Raises:
        GalleryError: the file is not a valid export, or is over a limit (nothing is imported).
        LimitError: the owner's storage would pass ``storage_limit`` (nothing is imported).
    """
    zip_path = Path(zip_path)
    try:
        archive = zipfile.ZipFile(zip_path)
    except FileNotFoundError:
        raise GalleryError(f"{zip_path} does not exist") from None
    except (zipfile.BadZipFile, OSError) as error:
        raise GalleryError(f"{zip_path} is not a jaxstyle gallery export (not a zip file: {error})") from None
    with archive:
        reader = _Reader(archive, zip_path)
        runs, input_rows = _checked_export(reader)
        inputs = {row["sha256"]: row for row in input_rows}
        imported = ImportedRuns()
        with transaction(db):
            here = _fingerprints_here(db, {run.row["content_sha"] for run in runs}, owner)
            for run in runs:
                fingerprint = run.fingerprint()
                if fingerprint in here:
                    imported.already_here += 1
                    continue
                here.add(fingerprint)
                imported.append(_write(db, reader, run, inputs, owner))
            if owner is not None and storage_limit is not None:
                used = storage_bytes(db, owner)
                if used > storage_limit:  # raising here rolls the whole import back
                    raise LimitError(
                        f"importing {zip_path.name} would bring your gallery to {used / 2**20:,.1f} MB, over your "
                        f"limit of {storage_limit / 2**20:,.0f} MB; delete some runs first, or {HOW_TO_GET_MORE}"
                    )
    return imported
