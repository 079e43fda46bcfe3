"""Runs side by side (images, settings with the differences marked, loss curves overlaid) and weight
sweeps: the form that starts one, and its runs in a row labeled by their weight ratio."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from jaxstyle import follow, gallery, runs, sweeps
from jaxstyle.inputs import LoadedImage
from jaxstyle.settings import PRESETS
from ui import handoff
from ui.access import mine, share, viewer
from ui.common import POLL_S, cover, db, guard, on_cpu, placeholder, recall, runner, status_badge
from ui.run_views import fmt_value, method_label, run_facts, run_label, shown_settings
from ui.settings_form import SIZE_OPTIONS

# ----- side by side -------------------------------------------------------------------------------


def compare_picker() -> list[int]:
    """Choose 2–4 finished runs, directly or as a group (e.g. a weight sweep)."""
    with db() as conn:
        done = gallery.list_runs(conn, status=runs.DONE, limit=200, **mine())
        mine_all = gallery.list_runs(conn, limit=1000, **mine())
        groups = list(dict.fromkeys(run.group_id for run in mine_all if run.group_id))
    by_id = {run.id: run for run in done}
    ss = st.session_state
    # The choice lives in the handoff (the gallery adds to it): the picker shows it, and says its changes there.
    chosen_now = [i for i in handoff.comparison() if i in by_id]
    if "compare_ids" in ss and ss["compare_ids"] != chosen_now:  # added to in the gallery, or deleted meanwhile
        ss["compare_ids"] = chosen_now
    pick_col, group_col = st.columns([3, 1], vertical_alignment="bottom")
    chosen = pick_col.multiselect(
        "Runs to compare", list(by_id), chosen_now, key="compare_ids", max_selections=handoff.MAX_COMPARED,
        placeholder="Choose 2 to 4 runs", on_change=_keep_choice,
        format_func=lambda i: run_label(by_id[i]),
    )  # fmt: skip
    group_col.selectbox(
        "Or a group", groups, key="cmp_group", index=None, placeholder="Pick a group",
        on_change=_pick_group, args=(by_id,),
    )  # fmt: skip
    return chosen


def _keep_choice() -> None:
    handoff.choose_for_comparison(st.session_state["compare_ids"])


def _pick_group(by_id: dict[int, Any]) -> None:
    group = st.session_state.get("cmp_group")
    if group:
        members = sorted((run for run in by_id.values() if run.group_id == group), key=lambda r: r.style_weight)
        handoff.choose_for_comparison([run.id for run in members][: handoff.MAX_COMPARED])


def _highlight(row: pd.Series, differing: set[str]) -> list[str]:
    style = "background-color: rgba(255, 196, 0, 0.25); font-weight: 600" if row.name in differing else ""
    return [style] * len(row)


def _side_by_side(comp: gallery.Comparison) -> tuple[dict[str, list[Any]], list[str]]:
    """Each setting's value per run, and the ones that differ. With an instant or video run among
    them, a first row says how each run was made, and such a run shows only what it used (its
    stored optimizer settings are defaults, not choices)."""
    if all(run.method == runs.METHOD_OPTIMIZE for run in comp.runs):
        return comp.settings, list(comp.differing)
    shown = [shown_settings(run) for run in comp.runs]
    settings = {"method": [method_label(run) for run in comp.runs]}
    for name in ["model", *comp.settings]:
        values = [run_settings.get(name) for run_settings in shown]
        if any(value is not None for value in values):
            settings[name] = values
    differing = [name for name, values in settings.items() if any(v != values[0] for v in values[1:])]
    return settings, differing


def curve_rows(labels: Sequence[str], histories: Sequence[list[dict]], methods: Sequence[str], component: str) -> list:
    """Chart rows: each run's loss by iteration. An instant run (one pass of a network: one point)
    is drawn as a level line across the others' iterations, so it can be read against them."""
    last_step = max((entry["step"] for history in histories for entry in history), default=1)
    rows = []
    for label, history, method in zip(labels, histories, methods, strict=True):
        if method == runs.METHOD_INSTANT and history:
            value = history[-1].get(component)
            ends = (1, max(2, last_step))
            rows += [{"run": label, "kind": "one pass", "step": step, "value": value} for step in ends]
            continue
        rows += [{"run": label, "kind": "optimization", "step": e["step"], "value": e.get(component)} for e in history]
    return rows


def comparison(run_ids: Sequence[int]) -> None:
    """Runs side by side: images at the same width, a settings table with differences marked, losses overlaid."""
    with db() as conn:
        for run_id in run_ids:  # another user's id is "not found", as a missing one
            gallery.visible_run(conn, run_id, viewer())
        comp = gallery.compare_runs(conn, run_ids)
        pngs = {run.id: gallery.run_image(conn, run.id) for run in comp.runs}
    # At least three slots, so two runs don't fill the screen and push the table out of view.
    for column, run in zip(st.columns(max(3, len(comp.runs))), comp.runs, strict=False):
        with column:
            if pngs[run.id]:
                st.image(pngs[run.id], width="stretch")
            st.markdown(f"**{run_label(run)}**")
            st.caption(" · ".join(part for part in (method_label(run), run_facts(run)) if part))
    labels = [run_label(run) for run in comp.runs]
    settings, differing = _side_by_side(comp)
    st.subheader("Settings", anchor=False)
    if differing:
        st.markdown("Differs: " + ", ".join(f"`{name}`" for name in differing))
    else:
        st.markdown("All settings are the same; only the inputs or the randomness differ.")
    now = recall({"cmp_only_diff": False, "cmp_loss": "total"})
    only = st.toggle("Only the differing settings", now["cmp_only_diff"], key="cmp_only_diff")
    names = [n for n in settings if not only or n in differing]
    table = pd.DataFrame({label: [fmt_value(settings[n][k]) for n in names] for k, label in enumerate(labels)})
    table.index = names
    st.dataframe(table.style.apply(_highlight, axis=1, differing=set(differing)), width="stretch", height="content")
    st.subheader("Loss curves", anchor=False)
    component = st.segmented_control("Loss", runs.LOSS_NAMES, default=now["cmp_loss"], key="cmp_loss", required=True)
    histories = [comp.loss_histories[run.id] for run in comp.runs]
    frame = pd.DataFrame(curve_rows(labels, histories, [run.method for run in comp.runs], component))
    if frame.empty:
        st.caption("No loss history recorded.")
        return
    frame = frame[frame["value"] > 0]
    st.altair_chart(
        alt.Chart(frame)
        .mark_line()
        .encode(
            x=alt.X("step:Q", title="iteration"),
            y=alt.Y("value:Q", title=f"{component} loss", scale=alt.Scale(type="log")),
            color=alt.Color("run:N", title=None, legend=alt.Legend(orient="bottom")),
            strokeDash=alt.StrokeDash("kind:N", title=None, legend=alt.Legend(orient="bottom")),
            tooltip=["run", "kind", "step", alt.Tooltip("value:Q", format=".4g")],
        )
        .properties(height=300),
        key="cmp_chart",
    )


# ----- weight sweeps ------------------------------------------------------------------------------


def sweep_form(content: LoadedImage | None, styles: list[LoadedImage], blend: list[float] | None) -> None:
    """Settings of a weight sweep and the button that queues it as one group."""
    ss = st.session_state
    count_col, range_col, size_col, iter_col = st.columns([1, 2, 1, 1])
    now = recall({"sw_count": 5, "sw_range": (1.0, 10000.0), "sw_size": 128 if on_cpu() else 384, "sw_iterations": 100})
    count = count_col.slider("Values", 2, 7, now["sw_count"], key="sw_count")
    low, high = range_col.select_slider(
        "Style / content weight from … to", sweeps.SWEEP_RATIOS, tuple(now["sw_range"]), key="sw_range",
        format_func=lambda v: f"{v:g}",
    )  # fmt: skip
    size_px = size_col.select_slider("Size (px)", SIZE_OPTIONS, now["sw_size"], key="sw_size")
    iterations = iter_col.number_input("Iterations", 1, 5000, now["sw_iterations"], step=10, key="sw_iterations")
    ratios = sweeps.sweep_ratios(low, high, count)
    st.caption("Ratios: " + " · ".join(f"{r:g}" for r in ratios))
    if st.button(
        "Start the sweep", key="sweep", type="primary", icon=":material/grid_view:", disabled=not (content and styles)
    ):
        with guard("starting the sweep"):
            base = PRESETS["Quick preview"].replace(size_px=int(size_px), iterations=int(iterations))
            ss["sweep_group"] = sweeps.start_sweep(runner(), base, content, styles, blend, ratios, **share())


def sweep_groups() -> dict[str, str]:
    """Weight sweeps, newest first: group id → a label such as "chicago × Udnie · 5 runs · 26 Nov 18:41"."""
    with db() as conn:
        return sweeps.sweep_groups(conn, **mine())


def sweep_grid(group_id: str) -> None:
    """A sweep's runs in a row, ordered and labeled by their style/content weight ratio."""
    with db() as conn:
        members = gallery.list_runs(conn, group_id=group_id, limit=50, **mine())
        thumbs = gallery.thumbnails(conn, [run.id for run in members])
    members.sort(key=sweeps.weight_ratio)
    if not members:
        st.info("This group has no runs left.")
        return
    for column, run in zip(st.columns(len(members)), members, strict=True):
        with column:
            st.markdown(f"**style/content {sweeps.weight_ratio(run):g}**")
            if run.id in thumbs:
                st.image(cover(thumbs[run.id]), width="stretch")
            else:
                snap = follow.snapshot(runner(), run.id)
                st.image(placeholder(), width="stretch")
                if snap is not None:
                    status_badge(snap.status)
                    if snap.status == runs.RUNNING:
                        st.progress(snap.fraction)
            st.caption(f"#{run.id}")
    if st.button("Compare these", key="sweep_compare", icon=":material/compare:"):
        handoff.choose_for_comparison([run.id for run in members if run.id in thumbs][: handoff.MAX_COMPARED])
        st.rerun()


@st.fragment(run_every=2 * POLL_S)
def _live_sweep_grid(group_id: str) -> None:
    with db() as conn:
        active = gallery.count_runs(conn, group_id=group_id, status=runs.ACTIVE_STATUSES, **mine())
    if not active:
        st.rerun()
    sweep_grid(group_id)


def sweep_view(group_id: str) -> None:
    """The sweep's labeled row, refreshing itself while any of its runs is queued or running."""
    with db() as conn:
        active = gallery.count_runs(conn, group_id=group_id, status=runs.ACTIVE_STATUSES, **mine())
    if active:
        _live_sweep_grid(group_id)
    else:
        sweep_grid(group_id)
