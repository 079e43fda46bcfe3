"""What may be stored: the checks and conversions every value passes on its way into the gallery.

Images are checked here the way uploads are (:func:`jaxstyle.images.open_image`: byte cap, pixel
cap, a full decode), whether they come from the app, the CLI, a job or an imported zip.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from typing import Any

from PIL import Image

from jaxstyle import images
from jaxstyle.errors import GalleryError, SettingsError
from jaxstyle.runs import LOSS_NAMES
from jaxstyle.settings import TransferSettings

THUMBNAIL_PX = 256  # long side of the stored JPEG thumbnails
TOTAL_LOSS = LOSS_NAMES[0]  # the weighted total: a run's final_loss, what the "loss" order sorts by


def now_iso() -> str:
    """The current UTC time as stored (ISO 8601, microseconds)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def to_utc_iso(value: datetime | date | str, *, end_of_day: bool) -> str:
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


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _finite(value: Any) -> float | None:
    """A float for JSON; NaN/inf (a diverged run) become None, since standard JSON has no NaN."""
    number = float(value)
    return number if math.isfinite(number) else None


def float_dict(values: Mapping[str, Any], what: str) -> dict[str, float | None]:
    """Loss names to numbers, JSON-safe. Raises GalleryError naming ``what``."""
    try:
        return {str(key): _finite(value) for key, value in dict(values).items()}
    except (TypeError, ValueError) as error:
        raise GalleryError(f"{what} must map names to numbers: {error}") from None


def history(entries: Sequence[Mapping[str, Any]]) -> list[dict[str, float | None]]:
    """A loss history as stored: whole ``step`` and ``size_px``, JSON-safe losses."""
    out = []
    for entry in entries:
        try:
            out.append({str(k): int(v) if k in ("step", "size_px") else _finite(v) for k, v in dict(entry).items()})
        except (TypeError, ValueError) as error:
            raise GalleryError(f"loss_history entries must map names to numbers: {error}") from None
    return out


def tags_json(tags: Sequence[str] | str) -> str:
    """Tags as stored: a JSON list without blanks or repeats; a string is split at commas."""
    if isinstance(tags, str):
        tags = tags.split(",")
    out: list[str] = []
    for tag in tags:
        tag = str(tag).strip()
        if tag and tag not in out:
            out.append(tag)
    return json.dumps(out)


def checked_settings(settings: Mapping[str, Any]) -> TransferSettings:
    """Stored settings (``TransferSettings.to_dict()`` form, possibly partial) as validated settings.

    Raises:
        SettingsError: not a dict, an unknown name or a value out of its range.
    """
    if not isinstance(settings, Mapping):
        raise SettingsError(f"settings must be a dict, got {type(settings).__name__}")
    return TransferSettings.from_dict(settings)


def _checked(data: bytes, what: str) -> tuple[Image.Image, int, int]:
    """The image decoded by the upload guard, and the file's own width and height.

    Raises:
        ImageError: as for an upload: too many bytes or pixels, not an image, truncated or corrupt.
    """
    decoded = images.open_image(data, name=what)
    # open_image turns the image upright and may downscale it; the stored bytes are the file as
    # given, so its size is read from its header (already checked above).
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
    return decoded, width, height


def checked_size(data: bytes, what: str) -> tuple[int, int]:
    """The width and height of an image that passes the upload guard. Raises ImageError."""
    _, width, height = _checked(data, what)
    return width, height


def checked_thumbnail(data: bytes, what: str) -> tuple[bytes, int, int]:
    """A small JPEG (long side THUMBNAIL_PX) of an image that passes the upload guard, and its size.

    Raises:
        ImageError: as for an upload.
    """
    decoded, width, height = _checked(data, what)
    return images.thumbnail_bytes(decoded, THUMBNAIL_PX), width, height
