"""The vocabulary of a run, in one place: its statuses, the names of its loss terms, and where its
input images can come from.

Plain constants with no dependencies, so the gallery (SQL included), the job runners, the CLI and
the app all spell them the same way.
"""

from __future__ import annotations

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
