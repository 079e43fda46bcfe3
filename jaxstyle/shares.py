"""A shared site's fair shares of the job queue, as plain functions the queue calls: whether a
submission is held to a user's limits, the checks of those limits, and the order in which the
workers serve waiting runs (users in turn). See :class:`jaxstyle.jobs.JobRunner`.
"""

from __future__ import annotations

import collections
import heapq
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, TypeVar

from jaxstyle.errors import LimitError
from jaxstyle.site import HOW_TO_GET_MORE, UserLimits, Viewer


class Owned(Protocol):
    owner: str | None


J = TypeVar("J", bound=Owned)


def limited(viewer: Viewer | None, limits: UserLimits | None) -> bool:
    """Whether a submission is held to ``limits``: given, and from a signed-in user who is not an admin."""
    return limits is not None and viewer is not None and not viewer.sees_everything


def check_active(owner: str | None, jobs: Iterable[Owned], limits: UserLimits) -> None:
    """Refuse a run of ``owner`` who already has ``limits.active_runs`` of ``jobs`` (queued or
    running) of their own."""
    if limits.active_runs < 1:
        raise LimitError(f"your account may not start runs on this site (the limit is 0 per user); {HOW_TO_GET_MORE}")
    mine = sum(1 for job in jobs if job.owner == owner)
    if mine >= limits.active_runs:
        runs = "run" if mine == 1 else "runs"
        raise LimitError(
            f"you already have {mine} {runs} queued or running (the limit is {limits.active_runs} per user); "
            "wait for one to finish or cancel one"
        )


def check_storage(gallery_path: str | os.PathLike, owner: str, limits: UserLimits) -> None:
    """Refuse a new run of ``owner`` whose gallery already holds their ``limits.storage_mb``."""
    from jaxstyle import gallery

    with gallery.connect(gallery_path) as db:
        used = gallery.storage_bytes(db, owner)
    if used >= limits.storage_mb * 2**20:
        raise LimitError(
            f"your gallery holds {used / 2**20:,.1f} MB, your limit of {limits.storage_mb:g} MB; "
            f"delete some runs first, or {HOW_TO_GET_MORE}"
        )


def check_video(duration_s: float, limits: UserLimits) -> None:
    """Refuse a video longer than ``limits.video_s``."""
    if duration_s > limits.video_s:
        seconds = math.ceil(duration_s * 10) / 10  # 60.04 s reads "60.1 s", not "60 s"
        raise LimitError(f"a video of {seconds:g} s is over your limit of {limits.video_s:g} s; "
                         f"shorten it or {HOW_TO_GET_MORE}")  # fmt: skip


def serving_order(pending: Sequence[J], last_served: Mapping[str | None, int], served: int) -> list[J]:
    """The waiting runs in the order the workers will take them.

    Owners are served in turn: next is the earliest-queued run of the owner served least recently
    (``last_served``: by owner, the count of runs handed out when they were last served; ``served``:
    that count now), owners not served yet first, ties going to the owner whose run was queued
    first (runs without an owner count as one owner). With one owner this is the queue's order.
    """
    if len(pending) < 2:
        return list(pending)
    by_owner: dict[str | None, collections.deque[tuple[int, J]]] = {}
    for index, job in enumerate(pending):
        by_owner.setdefault(job.owner, collections.deque()).append((index, job))
    # (when last served, the queue index of its next run, owner): -1 for owners not served yet;
    # queue indexes are unique, so owners (None beside strings) are never compared.
    turns = [(last_served.get(owner, -1), runs[0][0], owner) for owner, runs in by_owner.items()]
    heapq.heapify(turns)
    order: list[J] = []
    while turns:
        _, _, owner = heapq.heappop(turns)
        runs = by_owner[owner]
        order.append(runs.popleft()[1])
        if runs:
            heapq.heappush(turns, (served, runs[0][0], owner))
        served += 1
    return order
