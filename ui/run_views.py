"""One run, as the app shows it: live while it is queued or running, then its result, settings and
loss curves (a video run: its painted video and what it measured)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from jaxstyle import follow, gallery, images, runs
from jaxstyle.errors import JaxstyleError
from jaxstyle.inputs import input_label
from jaxstyle.instant import builtin
from jaxstyle.runs import Progress
from ui import pages
from ui.access import viewer
from ui.common import POLL_S, db, placeholder, runner

# ----- live view and results ----------------------------------------------------------------------


def loss_chart(history: Sequence[dict[str, Any]], *, height: int = 240, key: str | None = None) -> None:
    """Loss per component over the steps, on a log scale (components differ by decades)."""
    frame = pd.DataFrame(list(history))
    columns = [c for c in runs.LOSS_NAMES if c in frame]
    if frame.empty or not columns:
        st.caption("No losses recorded yet.")
        return
    long = frame.melt(id_vars=["step"], value_vars=columns, var_name="loss", value_name="value")
    long = long[long["value"] > 0]
    chart = (
        alt.Chart(long)
        .mark_line()
        .encode(
            x=alt.X("step:Q", title="iteration"),
            y=alt.Y("value:Q", title="loss", scale=alt.Scale(type="log")),
            color=alt.Color("loss:N", sort=list(runs.LOSS_NAMES), title=None),
            tooltip=["step", "loss", alt.Tooltip("value:Q", format=".4g")],
        )
        .properties(height=height)
    )
    st.altair_chart(chart, key=key)


def cancel_run(run_id: int) -> None:
    runner().cancel(run_id)


@st.fragment(run_every=POLL_S)
def live_run(run_id: int) -> None:
    """A queued or running run, refreshed every second; reruns the page once it has ended."""
    snap = follow.snapshot(runner(), run_id)
    if snap is None or snap.finished:
        st.rerun()
    if _is_video(run_id):
        video_progress(snap, runner().position(run_id), key="cancel")
        return
    _progress(
        snap, runner().position(run_id), key="cancel",
        preparing="Preparing: compiling for this image size (the first run at a size takes longest)…",
        running=f"Iteration {snap.step} / {snap.total_steps} · {snap.its_per_s:.1f} it/s · {snap.size_px} px · "
        f"{snap.elapsed_s:.0f} s",
    )  # fmt: skip
    preview_png = snap.preview
    if preview_png is None and snap.status == runs.RUNNING:
        with contextlib.suppress(JaxstyleError), db() as conn:
            preview_png = gallery.run_preview(conn, run_id)
    if preview_png:
        st.image(preview_png, caption=f"Iteration {snap.step}: the image so far", width="stretch")
    else:
        st.image(placeholder(), width="stretch")
    if snap.history:
        loss_chart(snap.history, height=160, key=f"live_chart_{run_id}")


def _is_video(run_id: int) -> bool:
    with contextlib.suppress(gallery.RunNotFound), db() as conn:
        return gallery.get_run(conn, run_id).method == runs.METHOD_VIDEO
    return False


def video_progress(snap: Progress, position: int | None, *, key: str) -> None:
    """A queued or running video run: frames painted of the frames announced, frames per second,
    and a Cancel button (``key``)."""
    _progress(
        snap, position, key=key, preparing="Preparing: compiling the network for this frame size…",
        running=f"Frame {snap.step} / {snap.total_steps} · {snap.its_per_s:.1f} frames/s · {snap.elapsed_s:.0f} s",
    )  # fmt: skip


def _progress(snap: Progress, position: int | None, *, key: str, preparing: str, running: str) -> None:
    """A queued or running run's bar (its place in the queue, ``preparing`` before its first step,
    then ``running``) beside a Cancel button (``key``)."""
    bar, cancel = st.columns([4, 1], vertical_alignment="center")
    with bar:
        if snap.status == runs.QUEUED:
            ahead = (position or 1) - 1
            st.progress(0.0, text="Waiting for the worker" + (f": {ahead} run(s) ahead" if ahead else "…"))
        elif snap.step == 0:
            st.progress(0.0, text=preparing)
        else:
            st.progress(snap.fraction, text=running)
    cancel.button(
        "Cancel", key=key, icon=":material/stop_circle:", on_click=cancel_run, args=(snap.run_id,), width="stretch"
    )


def video_stats_line(stats: dict[str, Any]) -> str:
    """What a painted video measured, in one line: frames, rate, duration, painting speed, flicker."""
    parts = [
        f"{stats.get('frames', 0)} frames",
        f"{stats.get('fps') or 0:g} fps",
        f"{stats.get('duration_s') or 0:.1f} s",
    ]
    if stats.get("width") and stats.get("height"):
        parts.append(f"{stats['width']}×{stats['height']}")
    parts.append("with audio" if stats.get("has_audio") else "no audio")
    if stats.get("frames_per_s") is not None:
        realtime = f" ({stats['realtime']:.2f}× real time)" if stats.get("realtime") is not None else ""
        parts.append(f"painted at {stats['frames_per_s']:.1f} frames/s{realtime}")
    flicker = stats.get("flicker")
    parts.append(f"flicker ratio {flicker:.2f}" if flicker is not None else "flicker ratio —")
    return " · ".join(parts)


def video_view(run: gallery.Run, *, key: str, link: bool = True) -> bool:
    """A video run's painted video with its download and what it measured (and a link to the run in
    the gallery when ``link``); False when the run holds no video (not finished, or not a video run)."""
    with db() as conn:
        video = gallery.run_video(conn, run.id)
    if video is None:
        return False
    st.video(video.data, format=video.mime)
    actions = st.container(horizontal=True)
    actions.download_button(
        "Download video", video.data, file_name=images.safe_filename(f"{run.title or f'run-{run.id}'}{video.suffix}"),
        mime=video.mime, key=f"{key}_video_download", icon=":material/download:", on_click="ignore", type="primary",
    )  # fmt: skip
    if link:
        actions.page_link(
            pages.GALLERY.path, label=f"Open run #{run.id} in the gallery", icon=":material/photo_library:",
            query_params={"run": run.id},
        )  # fmt: skip
    st.caption(video_stats_line(video.stats))
    return True


def settings_table(settings: dict[str, Any]) -> None:
    rows = [{"setting": name, "value": fmt_value(value)} for name, value in settings.items()]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", height="content")


def fmt_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list | tuple):
        return ", ".join(fmt_value(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def run_inputs(run: gallery.Run) -> None:
    """The content and style images of a stored run, small, with their names."""
    with db() as conn:
        content = gallery.input_image(conn, run.content.sha256)
        styles = [(info, gallery.input_image(conn, info.sha256)) for info in run.styles]
    st.image(images.thumbnail_bytes(images.open_image(content), 384), caption=f"Content: {input_label(run.content)}")
    for info, data in styles:
        blend = f" ({info.blend:.0%})" if len(styles) > 1 and info.blend is not None else ""
        st.image(images.thumbnail_bytes(images.open_image(data), 384), caption=f"Style: {input_label(info)}{blend}")


def run_facts(run: gallery.Run) -> str:
    """One line: time, device and weights of a finished run."""
    parts = []
    if run.run_s is not None:
        parts.append(f"{run.run_s:.1f} s (+{run.compile_s or 0:.1f} s compile)")
    if run.device:
        parts.append(run.device)
    if run.weights_source:
        parts.append(f"{run.weights_source} weights")
    return " · ".join(parts)


def result_view(run_id: int, *, key: str = "result") -> None:
    """A finished run: its image beside the inputs, download, settings, and a link to the gallery."""
    with db() as conn:
        run = gallery.visible_run(conn, run_id, viewer())
        png = gallery.run_image(conn, run_id)
    if run.status == runs.CANCELLED:
        st.info(f"Run #{run.id} was cancelled ({run.error}).", icon=":material/cancel:")
    elif run.status == runs.FAILED:
        st.error(f"Run #{run.id} failed: {run.error}", icon=":material/error:")
    if png is None:
        return
    image_col, inputs_col = st.columns([3, 1])
    with inputs_col:
        run_inputs(run)
    with image_col:
        if run.method == runs.METHOD_VIDEO and video_view(run, key=key):
            with st.expander("Settings used", icon=":material/tune:"):
                settings_table(shown_settings(run))
            return
        st.image(png, width="stretch")
    actions = st.container(horizontal=True)
    actions.download_button(
        "Download PNG", png, file_name=images.safe_filename(f"{run.title or f'run-{run.id}'}.png"),
        mime="image/png", key=f"{key}_download", icon=":material/download:", on_click="ignore", type="primary",
    )  # fmt: skip
    actions.page_link(
        pages.GALLERY.path, label="Open in the gallery", icon=":material/photo_library:", query_params={"run": run.id}
    )
    st.caption(run_facts(run))
    with st.expander("Settings used", icon=":material/tune:"):
        settings_table(shown_settings(run))
    with st.expander("Loss curves", icon=":material/show_chart:"):
        loss_chart(run.loss_history, key=f"{key}_chart_{run.id}")


def run_view(run_id: int) -> None:
    """Follow a run: live while queued/running, the result once it has ended."""
    snap = follow.snapshot(runner(), run_id)
    with contextlib.suppress(gallery.RunNotFound), db() as conn:
        st.markdown(f"**{run_label(gallery.visible_run(conn, run_id, viewer()))}**")
    if snap is None:
        st.info(f"Run #{run_id} is no longer in the gallery.", icon=":material/info:")
    elif snap.finished:
        result_view(run_id)
    else:
        live_run(run_id)


def run_label(summary: gallery.RunSummary | gallery.Run) -> str:
    return f"#{summary.id} · {summary.title or 'untitled'}"


INSTANT_SETTINGS = ("size_px", "style_blend")  # what an instant run's stored settings mean; the rest are defaults
BUILTIN_SETTINGS = ("strength", "stroke_px", "preserve_color")  # and those a built-in model's run sets too
# A video run: the frames' long side, the working size (stroke_px; 0: at the frames' size), strength, smooth.
VIDEO_SETTINGS = ("size_px", "stroke_px", "strength", "style_blend", "smooth")


def shown_settings(run: gallery.Run) -> dict[str, Any]:
    """The settings that made a run: all of an optimization's; an instant run's model, size and blend
    (and a built-in model's strength, stroke size and colours); a video run's model, frame and working
    sizes, strength, blend and smoothing."""
    if run.method == runs.METHOD_VIDEO:
        return {"model": run.model, **{name: run.settings.get(name) for name in VIDEO_SETTINGS}}
    if run.method != runs.METHOD_INSTANT:
        return dict(run.settings)
    names = INSTANT_SETTINGS + (BUILTIN_SETTINGS if builtin.is_builtin(run.model or "") else ())
    return {"model": run.model, **{name: run.settings.get(name) for name in names}}


def method_label(summary: gallery.RunSummary | gallery.Run) -> str:
    """How a run was made, in a few words: "Instant · demo", "Video · arbitrary" or "Optimize · 300 iterations"."""
    if summary.method == runs.METHOD_INSTANT:
        return f"Instant · {summary.model}"
    if summary.method == runs.METHOD_VIDEO:
        return f"Video · {summary.model}"
    iterations = summary.iterations if isinstance(summary, gallery.RunSummary) else summary.settings.get("iterations")
    return f"Optimize · {iterations} iterations" if iterations is not None else "Optimize"


# Why a video run has no Re-run: the gallery says it beside the run, and Generate if one is asked for.
VIDEO_RERUN_REASON = (
    "a video run is not re-run or refined here (the gallery keeps the painted video, not the original): "
    "upload the video again on the Live page"
)
