"""Generate's side of a handoff (:mod:`ui.handoff`): a request from another page (a method, an
instant model, catalog paintings, a stored run to re-run) turned into Generate's widget values before
they render. Each widget group sets its own keys (``choose_…`` in its module); this only says which.
"""

from __future__ import annotations

import streamlit as st

from jaxstyle import gallery, runs
from jaxstyle.settings import PRESETS, TransferSettings
from ui import handoff
from ui.access import viewer
from ui.common import db, guard
from ui.inputs import choose_catalog_paintings, choose_content, choose_paintings
from ui.instant_views import choose_instant_run, choose_method, choose_model
from ui.run_views import VIDEO_RERUN_REASON
from ui.settings_form import apply_settings


def prefill_generate() -> None:
    """Take Generate's handoff request, if there is one, into its widgets (first thing on the page)."""
    request = handoff.take_generate_request()
    if request is None:
        return
    if request.method is not None:
        choose_method(request.method)
    if request.model is not None:
        choose_model(request.model)
    if request.styles:
        choose_catalog_paintings(request.styles)
    if request.rerun is not None:
        _prefill_run(request.rerun)


def _prefill_run(run_id: int) -> None:
    """A stored run's inputs and settings in Generate's widgets: the same method, photo, paintings (or
    model and styles) and settings, ready to run again."""
    with guard(f"re-running run #{run_id}"), db() as conn:
        run = gallery.visible_run(conn, run_id, viewer())  # only one's own runs are re-run
        if run.method == runs.METHOD_VIDEO:
            st.toast(f"Run #{run_id} is a video: {VIDEO_RERUN_REASON}", icon=":material/movie:")
            return
        choose_content(run.content.sha256)
        if run.method == runs.METHOD_INSTANT:
            choose_instant_run(run)
            st.toast(
                f"Model, styles and photo of run #{run.id} loaded: paint it again with *Paint*.",
                icon=":material/replay:",
            )
            return
        settings = TransferSettings.from_dict(gallery.rerun_settings(conn, run_id))
        choose_method("Optimize")
        choose_paintings(run.styles)
        preset = next((name for name, p in PRESETS.items() if p.replace(seed=settings.seed) == settings), None)
        apply_settings(settings.replace(style_blend=None), preset)
        st.session_state.pop("run_id", None)  # Generate's latest run: the re-run's output column starts empty
        st.toast(f"Settings and images of run #{run_id} loaded.", icon=":material/replay:")
