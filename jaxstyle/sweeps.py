"""Weight sweeps: one photo and style run at several style/content weight ratios, as one group of
runs, to show what the weights do. Which ratios, starting the runs, and finding the sweeps again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from jaxstyle import gallery
from jaxstyle.inputs import LoadedImage, default_title
from jaxstyle.settings import TransferSettings

if TYPE_CHECKING:
    from jaxstyle.jobs import JobRunner

SWEEP_TAG = "sweep"  # every run of a sweep carries it, so sweeps are found among other runs
SWEEP_RATIOS = tuple(float(f"1e{k}") for k in range(-2, 7))  # the ratios a sweep may span: 0.01 … 1e6


def sweep_ratios(low: float, high: float, count: int) -> list[float]:
    """``count`` style/content weight ratios evenly spaced on a log scale from ``low`` to ``high``,
    each rounded to three significant digits."""
    if count == 1 or low == high:
        return [low]
    step = (math.log10(high) - math.log10(low)) / (count - 1)
    return [float(f"{10 ** (math.log10(low) + k * step):.3g}") for k in range(count)]


def weight_ratio(run: gallery.RunSummary | gallery.Run | TransferSettings) -> float:
    """A run's style/content weight ratio (infinite when the content weight is 0)."""
    return run.style_weight / run.content_weight if run.content_weight else math.inf


def start_sweep(
    runner: JobRunner,
    base: TransferSettings,
    content: LoadedImage,
    styles: Sequence[LoadedImage],
    blend: Sequence[float] | None,
    ratios: Sequence[float],
    **share: Any,
) -> str:
    """Queue one run per ratio (content weight 1, style weight = ratio) as one group; returns its id.

    Each run is titled "<default title> · style/content <ratio>" and tagged :data:`SWEEP_TAG`;
    ``share`` (``viewer``, ``limits``) is passed to :meth:`JobRunner.submit`.

    Raises:
        QueueFullError: the runner's queue filled up (the runs queued so far stay queued).
        LimitError: a shared site's user ran out of their share (the runs queued so far stay queued).
        SettingsError: a ratio outside the style weight's range, or a blend that doesn't match the styles.
    """
    group_id = f"sweep-{datetime.now():%Y%m%d-%H%M%S}"
    name = default_title(content, styles)
    for ratio in ratios:
        settings = base.replace(content_weight=1.0, style_weight=ratio)
        runner.submit(
            settings, content, styles, style_blend=blend, group_id=group_id, tags=(SWEEP_TAG,),
            title=f"{name} · style/content {ratio:g}", **share,
        )  # fmt: skip
    return group_id


def sweep_groups(db: gallery.GalleryDatabase, **criteria: Any) -> dict[str, str]:
    """Weight sweeps, newest first: group id → a label such as "chicago × Udnie · 5 runs · 26 Nov 18:41"
    (the time in this machine's time zone); ``criteria`` (RunFilter fields) narrow the runs (a
    shared site's user: their own)."""
    groups: dict[str, list[gallery.RunSummary]] = {}
    for run in gallery.list_runs(db, tag=SWEEP_TAG, limit=1000, **criteria):
        if run.group_id:
            groups.setdefault(run.group_id, []).append(run)
    return {
        group: f"{members[0].title.rsplit(' · ', 1)[0]} · {len(members)} runs · "
        f"{members[0].created.astimezone():%d %b %H:%M}"
        for group, members in groups.items()
    }
