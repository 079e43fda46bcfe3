"""Following a run from anywhere: its latest state, from the runner while it follows the run
(live, in memory), else from the gallery (a run of another process, or one finished long ago)."""

from __future__ import annotations

from jaxstyle import gallery
from jaxstyle.jobs import JobRunner
from jaxstyle.runs import Progress


def snapshot(runner: JobRunner, run_id: int) -> Progress | None:
    """The run's latest state, or None when the run is in neither the runner nor its gallery.

    Read from the gallery, a run has no preview, speed or current scale (those live in the runner).
    """
    live = runner.progress(run_id)
    if live is not None:
        return live
    try:
        with gallery.connect(runner.gallery_path) as db:
            run = gallery.get_run(db, run_id)
    except gallery.RunNotFound:
        return None
    return Progress(
        run.status, step=run.step, total_steps=run.total_steps or 0, losses=run.final_losses,
        history=tuple(run.loss_history), error=run.error or None, run_id=run.id,
    )  # fmt: skip
