"""The Live page: the browser's camera painted as it films (streamlit-webrtc), and video files painted
frame by frame through the job queue; both with the same model, styles and working size.

- :func:`live_form`: the model (``arbitrary`` first, ``styles26``, then the gallery's trained models),
  its styles with their blend (``arbitrary`` uses the very painting picker of Generate, so one choice
  of paintings serves both pages), strength, working size and smoothing. Its values make the
  :class:`LiveChoice`'s ``key``: a new key gives the stream a new style on its next frame, the same
  key keeps the network it has.
- :func:`live_camera`: one :class:`~jaxstyle.video.live.LivePainter` per browser session, the WebRTC
  stream (no ICE servers by default: the browser and the app on one machine or LAN), a fragment with
  ``painted frames: N · X fps · Y ms per frame`` every half second, and *Capture*, which stores the
  latest frame as an instant run and scores it on a thread.
- :func:`live_video`: an upload, checked by :func:`jaxstyle.video.run.prepare` (a refusal is one
  line, nothing stored), queued with :meth:`JobRunner.submit_video`, followed frame by frame with a
  Cancel button, then shown with its download and what it measured.

Widget keys all start with ``live_`` (the painting picker's keys are Generate's: ``style_ids``, …).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import streamlit as st

from jaxstyle import follow, gallery, images, runs
from jaxstyle.errors import SettingsError
from jaxstyle.inputs import LoadedImage, from_builtin_style, from_model
from jaxstyle.instant import builtin, models
from jaxstyle.video import files as video_files
from jaxstyle.video import flicker, frames
from jaxstyle.video import live as video_live
from jaxstyle.video import run as video_run
from ui import pages
from ui.access import my_models, share, viewer
from ui.builtin_views import builtin_painter, swatch
from ui.common import db, failure_message, gallery_path, index_of, recall, runner
from ui.inputs import blend_input, style_input
from ui.instant_views import model_label, painter, style_label
from ui.run_views import video_progress, video_view

STATS_EVERY_S = 0.5  # how often the painted-frames line refreshes while the camera plays
VIDEO_POLL_S = 0.5  # how often a video's progress refreshes
MAX_STYLES = 4
VIDEO_TYPES = [suffix.lstrip(".") for suffix in video_files.VIDEO_SUFFIXES]
ICE_CAPTION = (
    "No STUN or TURN server is used by default: the camera reaches the app directly, which works when the "
    "browser and the app run on the same machine or LAN. For a deployment behind NAT or a firewall, set "
    f"`{video_live.ICE_SERVERS_VARIABLE}` to a JSON list of ICE servers, e.g. "
    '`[{"urls": ["stun:stun.example.org:3478"]}]`, or a TURN server with its `"username"` and `"credential"`.'
)


# ----- the choice of model and style ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LiveChoice:
    """What the page's widgets ask for: the model's painter, the styles (``arbitrary``: paintings; the
    others: style names), their blend, strength, working size and smoothing, and a ``key`` made of them."""

    model: str
    painter: Any
    paintings: tuple[LoadedImage, ...]  # arbitrary's styles
    names: tuple[str, ...]  # styles26's and a trained model's styles
    blend: tuple[float, ...] | None
    strength: float
    work_px: int
    smooth: float
    key: str

    def live_style(self) -> video_live.LiveStyle:
        styles = tuple(p.image for p in self.paintings) if self.paintings else self.names
        return video_live.LiveStyle(
            self.painter, styles, self.blend, strength=self.strength, work_px=self.work_px, smooth=self.smooth,
            key=self.key,
        )  # fmt: skip

    def style_inputs(self) -> tuple[LoadedImage, ...]:
        """What the gallery stores as a capture's styles: the paintings, a trained model's paintings,
        or styles26's swatches (that network holds no paintings)."""
        if self.paintings:
            return self.paintings
        if isinstance(self.painter, builtin.Styles26Painter):
            return tuple(from_builtin_style(self.model, n, self.painter.swatch(n)) for n in self.names)
        return tuple(from_model(self.painter.model, n) for n in self.names)

    def video_request(self, source: Path, name: str) -> video_run.VideoRequest:
        return video_run.VideoRequest(
            source, model=self.model, styles=self.paintings or self.names, blend=self.blend, work_px=self.work_px,
            strength=self.strength, smooth=self.smooth, name=name,
        )  # fmt: skip


def live_form() -> LiveChoice | None:
    """The model, its styles (with blend weights for several), strength, working size and smoothing;
    None while no style is chosen or a blend is invalid (the reason is shown where it is)."""
    records = models.list_records(gallery_path())
    trained = [name for name in my_models(records) if not builtin.is_builtin(name)]
    options = [*builtin.BUILTIN_MODELS, *trained]
    ss = st.session_state
    if "live_model" in ss and ss["live_model"] not in options:  # deleted meanwhile (e.g. in another tab)
        ss["live_model"] = options[0]
    now = recall({"live_model": builtin.ARBITRARY, "live_work_px": frames.DEFAULT_WORK_PX})
    model = st.selectbox(
        "Model", options, index=index_of(options, now["live_model"]) or 0, key="live_model",
        format_func=lambda n: model_label(n, records),
    )  # fmt: skip
    paintings: list[LoadedImage] = []
    names: list[str] = []
    strength = 1.0
    if model == builtin.ARBITRARY:
        paintings, blend = style_input()
        strength = st.slider(
            "Strength", 0.0, 1.0, recall({"live_strength": 1.0})["live_strength"], step=0.05, key="live_strength",
            help="1 paints the painting's style; lower moves towards the camera's own style (worked out once, "
            "from the first frame after a change).",
        )  # fmt: skip
        model_painter: Any = builtin_painter(model)
    elif model == builtin.STYLES26:
        names, blend = _styles26_input()
        model_painter = builtin_painter(model)
    else:
        model_painter = painter(model)
        names, blend = _trained_input(model_painter.model)
    work_px = st.segmented_control(
        "Working size (px)", frames.WORK_SIZES, default=now["live_work_px"], key="live_work_px", required=True,
        help="Each frame is painted at this long side and scaled back to the camera's size: smaller is faster "
        "with bigger strokes.",
    )  # fmt: skip
    smooth = st.slider(
        "Smooth", 0.0, 0.95, recall({"live_smooth": flicker.DEFAULT_SMOOTH})["live_smooth"], step=0.05,
        key="live_smooth",
        help="Against flicker: where the picture did not move, this share of the previous painted frame is kept.",
    )  # fmt: skip
    chosen = paintings or names
    if not chosen:
        st.caption("Choose at least one style." if model != builtin.ARBITRARY else "Choose at least one painting.")
        return None
    if len(chosen) > 1 and blend is None:
        return None
    blend_t = tuple(float(w) for w in blend) if blend is not None else None
    ids = [p.sha256[:16] for p in paintings] or list(names)
    key = f"{model}|{','.join(ids)}|{blend_t}|{strength:g}|{work_px}|{smooth:g}"
    return LiveChoice(
        model, model_painter, tuple(paintings), tuple(names), blend_t, float(strength), int(work_px), float(smooth), key
    )


def _styles26_input() -> tuple[list[str], list[float] | None]:
    """styles26's styles by number (its swatches show them), then the blend of those chosen."""
    names = list(builtin.STYLES26_NAMES)
    chosen_now = [s for s in recall({"live_s26": names[:1]})["live_s26"] if s in names]
    chosen = st.multiselect(
        "Styles", names, default=chosen_now, key="live_s26", max_selections=MAX_STYLES,
        format_func=lambda s: f"Style {s}", placeholder="Choose one or more of the 26 styles",
    )  # fmt: skip
    return chosen, blend_input([(f"live_s26_blend_{s}", f"Style {s}", swatch(s)) for s in chosen])


def _trained_input(model: models.Model) -> tuple[list[str], list[float] | None]:
    """A trained model's styles, then their blend."""
    key = f"live_styles_{model.name}"
    chosen_now = [s for s in recall({key: list(model.styles[:1])})[key] if s in model.styles]
    chosen = st.multiselect(
        "Styles", list(model.styles), default=chosen_now, key=key, max_selections=MAX_STYLES,
        format_func=style_label, placeholder="Choose one or more of the model's styles",
    )  # fmt: skip
    return chosen, blend_input(
        [
            (f"live_blend_{model.name}_{s}", style_label(s), images.thumbnail_bytes(model.style_image(s), 256))
            for s in chosen
        ]
    )


# ----- the camera -----------------------------------------------------------------------------------


def live_painter() -> video_live.LivePainter:
    """This browser session's live painter (the stream's thread paints with it, the page reads it)."""
    ss = st.session_state
    if "live_painter" not in ss:
        ss["live_painter"] = video_live.LivePainter()
    return ss["live_painter"]


def live_camera(choice: LiveChoice | None) -> None:
    """The camera, painted with ``choice`` (a new one takes effect on the next frame, without
    restarting the stream), the painted-frames line, and *Capture*."""
    live = live_painter()
    if choice is not None:
        live.set_style(choice.live_style())
        st.session_state["live_choice"] = choice
    try:
        servers = video_live.ice_servers()
    except SettingsError as error:
        st.error(str(error), icon=":material/settings_ethernet:")
        return
    from streamlit_webrtc import WebRtcMode, webrtc_streamer  # 0.4 s to import: only on this page

    context = webrtc_streamer(
        key="live_camera", mode=WebRtcMode.SENDRECV, video_processor_factory=lambda: video_live.FrameProcessor(live),
        rtc_configuration={"iceServers": servers}, media_stream_constraints={"video": True, "audio": False},
        async_processing=True,
    )  # fmt: skip
    if context.state.playing:
        _live_status(live, playing=True)
    else:
        _status(live, playing=False)
    st.caption(ICE_CAPTION)


def _status(live: video_live.LivePainter, *, playing: bool) -> None:
    """The painted-frames line (and why the last frame was not painted, if it was not), *Capture*,
    and the latest capture."""
    stats = live.stats()
    latest = live.latest()
    if latest is None:
        if playing:
            st.info(
                "Waiting for the first painted frame: the first one builds the network (a few seconds).",
                icon=":material/hourglass_top:",
            )
        else:
            st.info(
                "Start the camera first: press **START** above and allow the camera; the painted picture "
                "appears in the player.",
                icon=":material/videocam:",
            )
    else:
        st.markdown(f":material/speed: {stats.line()}")
    if stats.error:
        st.error(stats.error, icon=":material/error:")
    if st.button(
        "Capture", key="live_capture", icon=":material/photo_camera:", disabled=latest is None,
        help="Store the current painted frame (with the camera frame as its content) as a run in the gallery.",
    ):  # fmt: skip
        try:
            _capture(live)
        except Exception as error:  # noqa: BLE001 — one line, as ui.guard does
            st.error(failure_message(error, "the capture"), icon=":material/error:")
    _captured()


_live_status = st.fragment(run_every=STATS_EVERY_S)(_status)


class _Scoring(threading.Thread):
    """A capture's scoring (the optimization's loss, seconds on a CPU), off the page's thread."""

    def __init__(self, run_id: int, score_later: Any) -> None:
        super().__init__(name=f"jaxstyle-score-{run_id}", daemon=True)
        self.run_id = run_id
        self.score_later = score_later
        self.error = ""

    def run(self) -> None:
        try:
            if self.score_later is not None:
                self.score_later()
        except Exception as error:  # noqa: BLE001 — the image is stored; only its loss is missing
            self.error = failure_message(error, "scoring the capture")


def _capture(live: video_live.LivePainter) -> None:
    """Store the latest painted frame as an instant run, and score it on a thread."""
    latest, style = live.latest(), live.style
    choice: LiveChoice | None = st.session_state.get("live_choice")
    if latest is None or style is None or choice is None:
        st.info("Start the camera first: there is no painted frame to capture yet.", icon=":material/videocam:")
        return
    camera_frame, painted = latest
    with st.spinner("Storing the frame…"):
        run = video_run.store_capture(
            style, camera_frame, painted, choice.style_inputs(), runner().backend, gallery_path=gallery_path(),
            paint_s=live.stats().ms_per_frame / 1000.0, score=False, owner=viewer().subject,
        )  # fmt: skip
    scoring = _Scoring(run.run_id, run.score_later)
    scoring.start()
    st.session_state["live_captured"] = scoring


def _captured() -> None:
    """The latest capture of this session: its run, and whether its loss is scored yet."""
    scoring: _Scoring | None = st.session_state.get("live_captured")
    if scoring is None:
        return
    note = " · scoring its loss…" if scoring.is_alive() else ""
    st.success(f"Captured: run {scoring.run_id}{note}", icon=":material/photo_camera:")
    st.page_link(
        pages.GALLERY.path, label=f"Open run #{scoring.run_id} in the gallery", icon=":material/photo_library:",
        query_params={"run": scoring.run_id},
    )  # fmt: skip
    if scoring.error:
        st.warning(scoring.error, icon=":material/warning:")


# ----- video files ----------------------------------------------------------------------------------


def live_video(choice: LiveChoice | None) -> None:
    """An uploaded video painted through the queue with ``choice``: its progress, then the video."""
    limit_mb = int(st.get_option("server.maxUploadSize"))
    upload = st.file_uploader(
        "A video file", type=VIDEO_TYPES, key="live_video",
        help=f"MP4, WebM, MOV, MKV or M4V; videos are {video_files.DEFAULT_LIMITS.describe()} "
        f"(and uploads here at most {limit_mb} MB). The sound is kept.",
    )  # fmt: skip
    st.caption(
        f"Videos are {video_files.DEFAULT_LIMITS.describe()}; uploads here at most {limit_mb} MB. Every frame is "
        "painted at the working size above with the same style, and the sound is kept."
    )
    clicked = st.button(
        "Paint video", key="live_paint_video", type="primary", icon=":material/movie:",
        disabled=upload is None or choice is None,
    )  # fmt: skip
    if upload is not None and choice is None:
        st.caption("Choose a style above to paint the video.")
    if clicked and upload is not None and choice is not None:
        _submit(upload, choice)
    job = st.session_state.get("live_video_job")
    if job is not None:
        video_job(*job)


def _submit(upload: Any, choice: LiveChoice) -> None:
    """Save the upload, check it (a refusal: one line, nothing stored), and queue it."""
    name = upload.name or "video"
    suffix = Path(name).suffix.lower()
    handle, saved = tempfile.mkstemp(prefix="jaxstyle-upload-", suffix=suffix)
    path = Path(saved)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(upload.getvalue())
        prepared = video_run.prepare(choice.video_request(path, name), choice.painter)
        run_id = runner().submit_video(prepared, delete_source=True, **share())
    except Exception as error:  # noqa: BLE001 — one line, as ui.guard does
        path.unlink(missing_ok=True)
        st.session_state.pop("live_video_job", None)
        st.error(_named(failure_message(error, "the video"), path, name), icon=":material/error:")
        return
    st.session_state["live_video_job"] = (run_id, path.name, name)


def _named(message: str, path: Path, name: str) -> str:
    """A message about the saved upload, naming the file as the user knows it."""
    return message.replace(str(path), name).replace(path.name, name)


def video_job(run_id: int, saved: str, name: str) -> None:
    """A queued video: its progress while painting, then the painted video, or why not (one line)."""
    snap = follow.snapshot(runner(), run_id)
    if snap is None:
        st.info(f"Run #{run_id} is no longer in the gallery.", icon=":material/info:")
    elif not snap.finished:
        _video_progress(run_id)
    elif snap.status == runs.DONE:
        with db() as conn:
            run = gallery.visible_run(conn, run_id, viewer())
        st.markdown(f"**#{run.id} · {run.title}**")
        if not video_view(run, key="live_result"):
            st.info(f"Run #{run_id} holds no video.", icon=":material/info:")
    elif snap.status == runs.CANCELLED:
        st.info(f"The video was cancelled ({snap.error}).", icon=":material/cancel:")
    else:
        message = (snap.error or "the video could not be painted").replace(saved, name)
        st.error(message, icon=":material/error:")


@st.fragment(run_every=VIDEO_POLL_S)
def _video_progress(run_id: int) -> None:
    snap = follow.snapshot(runner(), run_id)
    if snap is None or snap.finished:
        st.rerun()
    video_progress(snap, runner().position(run_id), key="live_cancel_video")
