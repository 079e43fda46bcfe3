"""Moving a user to another page with a choice made: Generate with a method, a model, paintings or a
run to re-run; a run in full on the Gallery page; runs chosen for the Compare page.

Pages never write each other's widget keys. The caller records its request in one slot of session
state (:data:`SLOT`, one entry per target page); the target page takes it and turns it into its own
widget values (Generate: :func:`ui.prefill.prefill_generate`; Compare: :func:`ui.compare_views.compare_picker`).
A move itself happens in the frame (``dashboard.py``, :func:`follow`) right after the navigation, on
the rerun the request asks for: a widget's callback runs before the pages are registered, so it
can't switch pages itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import streamlit as st

from ui.pages import COMPARE, GALLERY, GENERATE, AppPage

SLOT = "handoff"  # {target page's path: its request, MOVE: (page path, query params)}
MOVE = "move"
MAX_COMPARED = 4  # runs side by side on the Compare page


@dataclass(frozen=True)
class GenerateRequest:
    """What Generate opens with; None and empty leave the page's own choice as it is."""

    method: str | None = None  # "Optimize" or "Instant" (ui.instant_views.METHODS)
    model: str | None = None  # an instant model, built in or trained
    styles: tuple[str, ...] = ()  # catalog paintings to paint with
    rerun: int | None = None  # a stored run whose inputs and settings Generate takes


def _slot() -> dict[str, Any]:
    return st.session_state.setdefault(SLOT, {})


def _move(page: AppPage, query_params: dict[str, Any] | None = None) -> None:
    """Go to ``page`` on the next run (see :func:`follow`), asked for now: from a widget's callback
    or from the script alike."""
    _slot()[MOVE] = (page.path, query_params)
    st.rerun()


def follow() -> None:
    """The frame's part, after the navigation and before any page is drawn: a move asked for goes now."""
    move = _slot().pop(MOVE, None)
    if move is not None:
        path, query_params = move
        st.switch_page(path, query_params=query_params)


# ----- Generate -----------------------------------------------------------------------------------


def open_generate(
    *, method: str | None = None, model: str | None = None, styles: Sequence[str] = (), rerun: int | None = None
) -> None:
    """Open Generate with a method, an instant model, catalog paintings or a run to re-run chosen."""
    _slot()[GENERATE.path] = GenerateRequest(method=method, model=model, styles=tuple(styles), rerun=rerun)
    _move(GENERATE)


def take_generate_request() -> GenerateRequest | None:
    """Generate's request, once (Generate's part only)."""
    return _slot().pop(GENERATE.path, None)


# ----- Gallery ------------------------------------------------------------------------------------


def open_run(run_id: int) -> None:
    """Show run ``run_id`` in full on the Gallery page (its address says which: ``?run=<id>``)."""
    _move(GALLERY, {"run": run_id})


# ----- Compare ------------------------------------------------------------------------------------


def comparison() -> list[int]:
    """The runs chosen for the Compare page, oldest choice first (a run deleted since may be among them:
    the Compare page shows those that are still there)."""
    return list(_slot().get(COMPARE.path, []))


def choose_for_comparison(run_ids: Sequence[int]) -> None:
    """The runs to compare, the last :data:`MAX_COMPARED` of them."""
    _slot()[COMPARE.path] = list(run_ids)[-MAX_COMPARED:]


def add_to_comparison(run_id: int) -> list[int]:
    """Add a run to the comparison (the oldest choice goes beyond :data:`MAX_COMPARED`); the runs chosen now."""
    choose_for_comparison([i for i in comparison() if i != run_id] + [run_id])
    return comparison()


def drop_from_comparison(run_id: int) -> None:
    choose_for_comparison([i for i in comparison() if i != run_id])
