"""The Live page, headless (AppTest) on a temp gallery: it renders with no camera, says how to start
it and what a malformed ICE setting is; *Capture* stores the live painter's latest frame as an instant
run; uploads that are not videos, or truncated ones, are refused in one line and leave nothing; a
short clip with sound is painted through the queue and shown, and its run page shows the video.

streamlit-webrtc asks Streamlit's runtime for the session (``Runtime.instance()._session_mgr``), which
AppTest's stand-in runtime lacks; the component then renders with no session info, as it does
outside a live server (its own fallback for that case).
"""

from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from jaxstyle import gallery, runs
from jaxstyle.video import clips
from tests.support import APP, CONTENT_DIR

LIVE = "app_pages/live.py"


@pytest.fixture(autouse=True)
def app_env(monkeypatch, warm_cache_dir, fallback_weights):
    """The app's cache is the session's warm one (fallback weights made once); caches cleared;
    streamlit-webrtc without a live server's session manager (see the module's docstring)."""
    import streamlit_webrtc.component

    monkeypatch.setenv("JAXSTYLE_CACHE_DIR", str(warm_cache_dir))
    monkeypatch.delenv("JAXSTYLE_ICE_SERVERS", raising=False)
    monkeypatch.setattr(streamlit_webrtc.component, "get_this_session_info", lambda: None)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def open_live() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page(LIVE).run()
    assert not at.exception
    return at


def all_runs(gallery_path: Path) -> list[gallery.RunSummary]:
    if not gallery_path.exists():
        return []
    with gallery.connect(gallery_path) as db:
        return gallery.list_runs(db)


def texts(elements) -> list[str]:
    return [element.value for element in elements]


@pytest.fixture(scope="module")
def clip_frames() -> list[np.ndarray]:
    """24 frames (2 s at 12 fps) of a camera panning over a real photo, 96×64 px."""
    return clips.clip_frames(Image.open(CONTENT_DIR / "tubingen.jpg"), 24, 96, 64)


def faststart(source: Path, destination: Path) -> Path:
    """``source`` remuxed with its index (moov) first, as phones and web encoders write MP4s: then a
    file cut short still has a header that announces every frame."""
    with av.open(str(source)) as reader, av.open(str(destination), "w", options={"movflags": "faststart"}) as writer:
        streams = {stream.index: writer.add_stream_from_template(stream) for stream in reader.streams}
        for packet in reader.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                writer.mux(packet)
    return destination


def test_the_live_page_renders_with_no_camera_and_says_to_start_it(app_gallery):
    at = open_live()
    assert not at.error
    assert at.title[0].value == "Live"
    assert any("Start the camera first" in text for text in texts(at.info))
    captions = " ".join(texts(at.caption))
    assert "No STUN or TURN server is used by default" in captions and "JAXSTYLE_ICE_SERVERS" in captions
    assert "at most 500 MB, 10 minutes" in captions  # the video limits
    assert at.selectbox(key="live_model").value == "arbitrary"
    assert at.button_group(key="live_work_px").value == 384
    assert at.slider(key="live_smooth").value == 0.5  # the flicker study's choice (flicker.DEFAULT_SMOOTH)
    assert at.button(key="live_capture").disabled  # no frame yet
    assert at.button(key="live_paint_video").disabled  # no video yet
    # The choice went to this session's live painter as its style, with the widgets' values as its key.
    live = at.session_state["live_painter"]
    assert live.style is not None and live.style.work_px == 384 and live.style.key.startswith("arbitrary|")
    assert live.stats().painted == 0


def test_a_malformed_ice_server_setting_is_one_error_line(app_gallery, monkeypatch):
    monkeypatch.setenv("JAXSTYLE_ICE_SERVERS", "stun:stun.example.org")
    at = open_live()
    assert len(at.error) == 1
    assert at.error[0].value.startswith("JAXSTYLE_ICE_SERVERS is not JSON")
    assert at.file_uploader(key="live_video") is not None  # the video files still work


def test_capture_stores_the_latest_painted_frame_as_an_instant_run(app_gallery):
    at = open_live()
    at.button_group(key="live_work_px").set_value(256).run()
    live = at.session_state["live_painter"]
    first_key = live.style.key
    at.slider(key="live_strength").set_value(0.8).run()  # a new style: a new key, the stream keeps going
    assert live.style.key != first_key and live.style.strength == 0.8 and live.style.work_px == 256
    camera = np.asarray(Image.open(CONTENT_DIR / "golden_gate.jpg").convert("RGB").resize((160, 120)))
    live.process(camera)  # the first frame: the network is made for its size, on a thread
    assert live.wait_ready(120)
    for _ in range(3):
        painted = live.process(camera)
    assert painted.shape == camera.shape and not np.array_equal(painted, camera)
    assert live.stats().line().startswith("painted frames: 3 · ")

    at.run()
    assert any(text.endswith(live.stats().line()) for text in texts(at.markdown))
    at.button(key="live_capture").click().run()
    assert not at.exception and not at.error
    (summary,) = all_runs(app_gallery)
    assert texts(at.success)[0].startswith(f"Captured: run {summary.id}")
    scoring = at.session_state["live_captured"]
    scoring.join(timeout=120)
    assert not scoring.error
    with gallery.connect(app_gallery) as db:
        run = gallery.get_run(db, summary.id)
        stored = Image.open(io.BytesIO(gallery.run_image(db, summary.id)))
    assert (run.method, run.model, run.status, run.tags) == (runs.METHOD_INSTANT, "arbitrary", runs.DONE, ("live",))
    assert stored.size == (160, 120)
    assert (run.settings["strength"], run.settings["stroke_px"]) == (0.8, 0)  # 160 px: under the 256 px working size
    assert run.final_losses and run.initial_losses  # scored on the thread


@pytest.mark.parametrize("kind", ["jpeg_renamed", "cut_before_its_index", "cut_after_its_index"])
def test_a_hostile_upload_is_one_error_line_and_stores_nothing(app_gallery, tmp_path, clip_frames, kind):
    clip = clips.write_clip(tmp_path / "clip.mp4", clip_frames, fps=12)
    if kind == "jpeg_renamed":
        data = (CONTENT_DIR / "tubingen.jpg").read_bytes()
    elif kind == "cut_before_its_index":  # the index (moov) is at the end: a cut file has no header
        data = clip.read_bytes()[: clip.stat().st_size // 2]
    else:  # the header announces 24 frames; decoding finds fewer, in the queue
        full = faststart(clip, tmp_path / "faststart.mp4").read_bytes()
        data = full[: len(full) * 6 // 10]
    at = open_live()
    at.button_group(key="live_work_px").set_value(256).run()
    at.file_uploader(key="live_video").upload("holiday.mp4", data, "video/mp4").run()
    at.button(key="live_paint_video").click().run()
    if kind == "cut_after_its_index":
        run_id = at.session_state["live_video_job"][0]
        deadline = time.monotonic() + 180
        while all_runs(app_gallery):  # queued at once, deleted once refused
            assert time.monotonic() < deadline, "the truncated video was not refused within 180 s"
            time.sleep(0.5)
        at.run()
        assert run_id not in [run.id for run in all_runs(app_gallery)]
    assert not at.exception
    assert len(at.error) == 1, texts(at.error)
    message = at.error[0].value
    assert message.startswith("holiday.mp4 ") and "\n" not in message and "jaxstyle-upload-" not in message
    expected = {"jpeg_renamed": "is an image", "cut_before_its_index": "is not a video", "cut_after_its_index": "trunc"}
    assert expected[kind] in message
    assert all_runs(app_gallery) == []
    assert not at.get("video")


def test_a_short_clip_is_painted_through_the_queue_and_its_run_page_shows_the_video(app_gallery, tmp_path, clip_frames):
    clip = clips.write_clip(tmp_path / "walk.mp4", clip_frames, fps=12, audio=True)
    at = open_live()
    at.button_group(key="live_work_px").set_value(256).run()
    at.file_uploader(key="live_video").upload("walk.mp4", clip.read_bytes(), "video/mp4").run()
    at.button(key="live_paint_video").click().run()
    assert not at.exception and not at.error
    run_id = at.session_state["live_video_job"][0]
    deadline = time.monotonic() + 240
    while True:
        (summary,) = all_runs(app_gallery)
        if summary.status not in runs.ACTIVE_STATUSES:
            break
        assert time.monotonic() < deadline, "the video was not painted within 240 s"
        time.sleep(0.5)
    assert (summary.id, summary.status, summary.method) == (run_id, runs.DONE, runs.METHOD_VIDEO)
    at.run()
    assert not at.exception and not at.error
    assert len(at.get("video")) == 1
    stats_line = next(text for text in texts(at.caption) if text.startswith("24 frames"))
    assert stats_line.startswith("24 frames · 12 fps · 2.0 s · 96×64 · with audio · painted at ")
    assert "flicker ratio " in stats_line
    assert [b.label for b in at.get("download_button")] == ["Download video"]
    with gallery.connect(app_gallery) as db:
        video = gallery.run_video(db, run_id)
        run = gallery.get_run(db, run_id)
    assert (video.suffix, video.stats["frames"], video.stats["fps"], video.stats["has_audio"]) == (".mp4", 24, 12, True)
    assert (run.model, run.settings["size_px"], run.settings["stroke_px"]) == ("arbitrary", 96, 0)
    assert not (Path(tempfile.gettempdir()) / at.session_state["live_video_job"][1]).exists()  # the upload's copy

    # Its run page: the video, its download and stats; no Re-run, with the reason.
    at.switch_page("app_pages/gallery.py").run()
    at.button(key=f"gallery_open_{run_id}").click().run()
    assert not at.exception and not at.error
    assert len(at.get("video")) == 1
    assert [b.label for b in at.get("download_button")] == ["Download video", "Poster PNG"]
    captions = texts(at.caption)
    assert stats_line in captions
    assert any("Video · arbitrary" in text for text in captions)
    assert any("No *Re-run* here" in text for text in captions)
    assert "rerun" not in [b.key for b in at.button]


def test_styles26_on_the_camera_paints_a_numbered_style_and_a_capture_keeps_its_swatch(app_gallery):
    at = open_live()
    at.selectbox(key="live_model").set_value("styles26").run()
    at.multiselect(key="live_s26").set_value(["7"]).run()
    assert not at.exception and not at.error
    live = at.session_state["live_painter"]
    assert (live.style.styles, live.style.strength, live.style.work_px) == (("7",), 1.0, 384)
    assert "live_strength" not in [slider.key for slider in at.slider]  # arbitrary's only
    camera = np.asarray(Image.open(CONTENT_DIR / "tubingen.jpg").convert("RGB").resize((128, 96)))
    live.process(camera)
    assert live.wait_ready(120)
    painted = live.process(camera)
    assert painted.shape == camera.shape and not np.array_equal(painted, camera) and not live.stats().error
    at.run()
    at.button(key="live_capture").click().run()
    assert not at.exception and not at.error
    at.session_state["live_captured"].join(timeout=120)
    (summary,) = all_runs(app_gallery)
    with gallery.connect(app_gallery) as db:
        run = gallery.get_run(db, summary.id)
    assert (run.method, run.model) == (runs.METHOD_INSTANT, "styles26")
    assert [(s.origin_kind, s.origin) for s in run.styles] == [("model", "styles26/7")]
