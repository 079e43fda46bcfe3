"""What the gallery hands to callers: frozen records of runs, their inputs, and comparisons.

A new gallery column that callers should see is a field here, filled in :mod:`jaxstyle.gallery.queries`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from jaxstyle.gallery.values import TOTAL_LOSS


@dataclasses.dataclass(frozen=True)
class ImageInfo:
    """An input image: its hash, where it came from, its size, and (for a run's styles) its blend weight."""

    sha256: str
    origin_kind: str  # "upload", "file", "url" or "catalog"
    origin: str  # the upload's file name, the path, the URL or the catalog id
    width: int
    height: int
    blend: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Run:
    """Everything the gallery knows about one run."""

    id: int
    created: datetime  # UTC
    status: str  # one of RUN_STATUSES
    error: str  # why it failed or was cancelled; "" otherwise
    title: str
    tags: tuple[str, ...]
    favorite: bool
    group_id: str | None
    method: str  # jaxstyle.runs.METHODS: an optimization, or one pass of a trained model
    model: str | None  # the trained model of an instant run
    owner: str | None  # a shared site's user it belongs to (None: a personal gallery's run, the admins')
    public: bool  # published on a shared site's public page
    settings: dict[str, Any]  # TransferSettings.to_dict()
    weights_source: str
    device: str
    compile_s: float | None
    run_s: float | None
    initial_losses: dict[str, float]
    final_losses: dict[str, float]
    loss_history: list[dict[str, float]]  # "step", "size_px" and jaxstyle.runs.LOSS_NAMES
    content: ImageInfo
    styles: tuple[ImageInfo, ...]  # each with its blend weight
    step: int  # progress: steps done so far
    total_steps: int | None
    finished: datetime | None  # UTC, when it became done/failed/cancelled
    has_image: bool

    @property
    def final_loss(self) -> float | None:
        return self.final_losses.get(TOTAL_LOSS)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (times as ISO 8601 strings)."""
        data = dataclasses.asdict(self)
        data["created"] = self.created.isoformat()
        data["finished"] = self.finished.isoformat() if self.finished else None
        data["tags"] = list(self.tags)
        data["styles"] = [style.to_dict() for style in self.styles]
        return data


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """One row of :func:`list_runs`: enough for a gallery card or a table line."""

    id: int
    created: datetime
    status: str
    error: str
    title: str
    tags: tuple[str, ...]
    favorite: bool
    group_id: str | None
    method: str
    model: str | None
    owner: str | None
    public: bool
    size_px: int
    iterations: int
    content_weight: float
    style_weight: float
    tv_weight: float
    optimizer: str
    style_loss: str
    content_origin: str
    style_origins: tuple[str, ...]
    final_loss: float | None
    has_image: bool

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["created"] = self.created.isoformat()
        data["tags"] = list(self.tags)
        data["style_origins"] = list(self.style_origins)
        return data


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Several runs side by side (see :func:`compare_runs`)."""

    runs: tuple[Run, ...]
    settings: dict[str, list[Any]]  # setting name -> its value in each run, in run order
    differing: list[str]  # the setting names whose values are not all equal
    loss_histories: dict[int, list[dict[str, float]]]  # run id -> its loss history


def image_info(row: Mapping[str, Any], blend: float | None = None) -> ImageInfo:
    """An ``images`` row (without its bytes) as an ImageInfo."""
    return ImageInfo(row["sha256"], row["origin_kind"], row["origin"], row["width"], row["height"], blend)


@dataclasses.dataclass(frozen=True)
class VideoFile:
    """A video run's painted video: its bytes, its container's suffix (".mp4"), and what it
    measured (frames, fps, duration_s, frames_per_s, flicker, … as :meth:`VideoResult.stats`)."""

    data: bytes = dataclasses.field(repr=False)
    suffix: str
    stats: dict[str, Any]

    @property
    def mime(self) -> str:
        types = {".mp4": "video/mp4", ".mov": "video/quicktime", ".mkv": "video/x-matroska"}
        return types.get(self.suffix, "video/mp4")
