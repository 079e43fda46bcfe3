"""The vocabulary of background work, in one place: the statuses of a run, a video run or a
training and the one :class:`Progress` that says where any of them is, the names of a run's loss
terms, and where its input images can come from.

Plain constants and a plain dataclass with no dependencies, so the gallery (SQL included), the job
queue, the trainings, the CLI and the app all spell them the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal, get_args

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
RUN_STATUSES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
ACTIVE_STATUSES = (QUEUED, RUNNING)  # not finished yet
FINISHED_STATUSES = (DONE, FAILED, CANCELLED)

# The weighted total and the unweighted terms, in the order the optimizer reports them.
LOSS_NAMES = ("total", "content", "style", "tv")

# Where an input image came from: an upload, a file path, a URL, a catalog painting, or the painting
# a trained instant model learned a style from (origin "<model>/<style>") (jaxstyle.inputs).
OriginKind = Literal["upload", "file", "url", "catalog", "model"]
ORIGIN_KINDS: tuple[str, ...] = get_args(OriginKind)

# How a run was made: an optimization of the pixels, one pass of an instant model, or a video
# file painted frame by frame by an instant model (its result image is a poster frame).
METHOD_OPTIMIZE, METHOD_INSTANT, METHOD_VIDEO = "optimize", "instant", "video"
METHODS = (METHOD_OPTIMIZE, METHOD_INSTANT, METHOD_VIDEO)
MODEL_METHODS = (METHOD_INSTANT, METHOD_VIDEO)  # made by an instant model: the run names it


@dataclasses.dataclass(frozen=True)
class Progress:
    """Where a run, a video run or a training is now, as the process that follows it sees it (the
    gallery holds a run's, less often).

    Attributes:
        status: one of :data:`RUN_STATUSES` (a training is never queued).
        step: steps done so far: optimizer steps over all scales, frames, or training steps.
        total_steps: steps the whole of it takes.
        losses: the latest losses by name (:data:`LOSS_NAMES`; a training has its "total" only).
        preview: the latest preview of a run's image, PNG bytes, if one was made.
        error: why it failed or was cancelled; None when it did neither.
        history: every reported loss so far (thinned for a long training), dicts with "step" and
            the loss names (a run's also "size_px").
        elapsed_s: seconds since it started working (compilation included).
        its_per_s: recent steps (or frames) per second.
        size_px: a run's long side at its current scale.
        run_id: the gallery's id of a run (None for a training: its model's name says which).
        start_step: the step it started from: a resumed training's checkpoint, else 0.
    """

    status: str
    step: int = 0
    total_steps: int = 0
    losses: Mapping[str, float] = dataclasses.field(default_factory=dict)
    preview: bytes | None = None
    error: str | None = None
    history: tuple[Mapping[str, float], ...] = ()
    elapsed_s: float = 0.0
    its_per_s: float = 0.0
    size_px: int = 0
    run_id: int | None = None
    start_step: int = 0

    @property
    def fraction(self) -> float:
        """Share of the steps done, 0–1."""
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES
