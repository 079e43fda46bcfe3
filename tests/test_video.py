"""Video files and the camera: painted frame by frame, frames, rate, duration and audio kept,
stored in the gallery; hostile files refused in one line with nothing stored; the live painter
drops frames while busy and changes style without stopping; flicker measured and lowered."""

from __future__ import annotations

import fractions
import io
import json
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from jaxstyle import cli, gallery, inputs, jobs
from jaxstyle.errors import Cancelled, GalleryError, SettingsError
from jaxstyle.instant.builtin import ArbitraryPainter
from jaxstyle.runs import CANCELLED, DONE, FAILED, METHOD_INSTANT, METHOD_VIDEO
from jaxstyle.video import clips, files, flicker, live
from jaxstyle.video import run as video_run
from jaxstyle.video.files import VideoError, VideoLimits

CLIP_W, CLIP_H, CLIP_FPS, CLIP_FRAMES = 96, 72, 12, 12


@pytest.fixture(scope="module")
def painter() -> ArbitraryPainter:
    return ArbitraryPainter()


@pytest.fixture(scope="module")
def painting(shared_data: Path) -> inputs.LoadedImage:
    return inputs.from_path(shared_data / "styles" / "the_scream.jpg")


@pytest.fixture(scope="module")
def frames_of_photo(shared_data: Path) -> list[np.ndarray]:
    photo = Image.open(shared_data / "content" / "golden_gate.jpg")
    return clips.clip_frames(photo, CLIP_FRAMES, CLIP_W, CLIP_H)


@pytest.fixture(scope="module")
def clip(tmp_path_factory, frames_of_photo) -> Path:
    """A 1 s clip of a real photo (a camera pan with sensor noise), 12 fps, with an AAC tone."""
    return clips.write_clip(tmp_path_factory.mktemp("clips") / "golden_gate.mp4", frames_of_photo, CLIP_FPS)


def _request(source: Path, painting, **changes) -> video_run.VideoRequest:
    return video_run.VideoRequest(source, styles=(painting,), work_px=256, **changes)


def _runs(path: Path) -> list:
    if not path.exists():
        return []
    with gallery.connect(path) as db:
        return gallery.list_runs(db, limit=100)


# --- A video file, painted


def test_a_painted_clip_keeps_its_frames_rate_duration_and_audio(clip, painter, painting, tmp_path, gallery_path):
    out = tmp_path / "painted.mp4"
    run = video_run.run_video(_request(clip, painting, smooth=0.5), out, painter=painter, gallery_path=gallery_path)

    before, after = files.probe(clip), files.probe(out)
    assert (after.frames, after.fps, after.width, after.height) == (CLIP_FRAMES, CLIP_FPS, CLIP_W, CLIP_H)
    assert after.duration_s == pytest.approx(before.duration_s, abs=1 / CLIP_FPS)
    assert after.has_audio and after.audio_codec == "aac"
    with av.open(str(out)) as container:  # the frames decode, and they are painted, not the photo
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == CLIP_FRAMES
    assert np.abs(run.result.poster.astype(int) - run.result.input_poster.astype(int)).mean() > 10

    with gallery.connect(gallery_path) as db:
        stored = gallery.get_run(db, run.run_id)
        video = gallery.run_video(db, run.run_id)
        poster = gallery.run_image(db, run.run_id)
    assert (stored.method, stored.model, stored.status) == (METHOD_VIDEO, "arbitrary", DONE)
    assert (
        stored.settings["smooth"] == 0.5 and stored.settings["size_px"] == CLIP_W and stored.settings["stroke_px"] == 0
    )
    assert video.data == out.read_bytes() and video.suffix == ".mp4" and video.mime == "video/mp4"
    assert video.stats["frames"] == CLIP_FRAMES and video.stats["has_audio"] is True
    assert video.stats["frames_per_s"] > 0 and video.stats["flicker"] > 0
    assert Image.open(io.BytesIO(poster)).size == (CLIP_W, CLIP_H)


def test_audio_a_container_cannot_hold_is_re_encoded(frames_of_photo, painter, painting, tmp_path):
    source = clips.write_clip(tmp_path / "pcm.mkv", frames_of_photo[:6], CLIP_FPS, audio_codec="pcm_s16le")
    assert files.probe(source).audio_codec == "pcm_s16le"
    out = tmp_path / "painted.mp4"
    video_run.run_video(_request(source, painting), out, painter=painter, store=False)
    after = files.probe(out)
    assert after.has_audio and after.audio_codec == "aac" and after.frames == 6


def test_a_webm_upload_is_painted_to_mp4_with_its_opus_audio(frames_of_photo, painter, painting, tmp_path):
    source = clips.write_clip(tmp_path / "clip.webm", frames_of_photo[:6], CLIP_FPS, codec="libvpx-vp9",
                              audio_codec="libopus", audio_hz=48000)  # fmt: skip
    out = tmp_path / "painted.mp4"
    video_run.run_video(_request(source, painting), out, painter=painter, store=False)
    after = files.probe(out)
    assert after.frames == 6 and after.has_audio and after.audio_codec == "opus"


def test_styles26_and_strength_below_one_paint_videos_too(clip, tmp_path):
    from jaxstyle.instant.builtin import Styles26Painter

    out = tmp_path / "s26.mp4"
    request = video_run.VideoRequest(clip, model="styles26", styles=("3", "7"), blend=(0.5, 0.5), work_px=256)
    result = video_run.run_video(request, out, painter=Styles26Painter(), store=False).result
    assert result.frames == CLIP_FRAMES
    with pytest.raises(SettingsError, match="strength"):
        video_run.prepare(
            video_run.VideoRequest(clip, model="styles26", styles=("3",), strength=0.5), Styles26Painter()
        )


def test_a_phone_video_keeps_its_rotation_and_its_poster_stands_upright(frames_of_photo, painter, painting, tmp_path,
                                                                         gallery_path):  # fmt: skip
    """Phones store a portrait video as landscape frames and a rotation for the player."""
    source = _encode(tmp_path / "portrait.mp4", frames_of_photo[:4], CLIP_FPS, rotation=90)
    out = tmp_path / "painted.mp4"
    run = video_run.run_video(_request(source, painting), out, painter=painter, gallery_path=gallery_path)
    assert files.first_frame(out)[1] == 90 and run.result.stats()["rotation"] == 90
    assert run.result.poster.shape[:2] == (CLIP_W, CLIP_H)  # shown upright: portrait
    turned = run.result.input_poster.astype(int)  # the stored frame, decoded (lossy), turned a quarter left
    assert (
        np.abs(turned - np.rot90(frames_of_photo[2])).mean()
        < 0.3 * np.abs(turned - np.rot90(frames_of_photo[2], -1)).mean()
    )
    with gallery.connect(gallery_path) as db:
        stored = gallery.get_run(db, run.run_id)
        content = Image.open(io.BytesIO(gallery.input_image(db, stored.content.sha256)))
    assert content.size == (CLIP_H, CLIP_W)


def test_cancelling_leaves_nothing(clip, painter, painting, tmp_path, gallery_path):
    out = tmp_path / "painted.mp4"
    with pytest.raises(Cancelled):
        video_run.run_video(_request(clip, painting), out, painter=painter, gallery_path=gallery_path,
                            progress=lambda done, total: done >= 3)  # fmt: skip
    assert not out.exists() and not list(tmp_path.glob(".*partial*")) and _runs(gallery_path) == []


# --- Hostile files: one line, nothing stored, nothing written


def _encode(path: Path, frame_list: list[np.ndarray], fps: int, *, pts: list[int] | None = None,
            options: dict[str, str] | None = None, rotation: int = 0) -> Path:  # fmt: skip
    """An H.264 video without sound, as ``clips.write_clip`` writes it but with what a test needs
    beyond it: its own timestamps, container options, a display rotation."""
    with av.open(str(path), "w", options=options or {}) as container:
        stream = container.add_stream("libx264", rate=fps)
        height, width = frame_list[0].shape[:2]
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        for i, frame in enumerate(frame_list):
            image = av.VideoFrame.from_ndarray(frame, format="rgb24")
            image.pts, image.time_base = (pts[i] if pts else i), fractions.Fraction(1, fps)
            container.mux(stream.encode(image))
        container.mux(stream.encode(None))
    return path


def _truncated(frames_of_photo, tmp_path: Path) -> Path:
    """A 3 s clip whose index is at the front (as phones and web encoders write it), cut off at 80 %."""
    whole = _encode(tmp_path / "whole.mp4", frames_of_photo * 3, CLIP_FPS, options={"movflags": "faststart"})
    cut = tmp_path / "cut.mp4"
    data = whole.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.8)])
    return cut


def _claiming_hours(tmp_path: Path) -> Path:
    """Two frames three hours apart: the header says the video lasts three hours."""
    black = np.zeros((48, 64, 3), np.uint8)
    return _encode(tmp_path / "hours.mp4", [black, black], 25, pts=[0, 3 * 3600 * 25])


def _eight_k(tmp_path: Path) -> Path:
    return clips.write_clip(tmp_path / "8k.mp4", [np.zeros((4320, 7680, 3), np.uint8)], 25, audio=False, codec="mpeg4")


def _audio_only(tmp_path: Path) -> Path:
    path = tmp_path / "tone.m4a"
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=44100)
        stream.layout = "mono"
        block = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        block.sample_rate, block.pts = 44100, 0
        container.mux(stream.encode(block))
        container.mux(stream.encode(None))
    return path


HOSTILE = {
    "not a video": (
        lambda frames, tmp, photos: _write(tmp / "photo.mp4", photos["tubingen"]),
        "not a video we can read",
    ),
    "empty": (lambda frames, tmp, photos: _write(tmp / "empty.mp4", b""), "is empty"),
    "truncated": (lambda frames, tmp, photos: _truncated(frames, tmp), "truncated or damaged"),
    "three hours": (lambda frames, tmp, photos: _claiming_hours(tmp), "lasts 3.0 hours"),
    "8K frames": (lambda frames, tmp, photos: _eight_k(tmp), "has 7680×4320 frames"),
    "no picture": (lambda frames, tmp, photos: _audio_only(tmp), "has no video stream"),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_files_are_refused_in_one_line_with_nothing_stored(
    case, frames_of_photo, photos, painter, painting, tmp_path, gallery_path, capsys
):
    make, message = HOSTILE[case]
    source = make(frames_of_photo, tmp_path, photos)
    out = tmp_path / "out.mp4"
    with pytest.raises(VideoError, match=message):
        video_run.run_video(_request(source, painting), out, painter=painter, gallery_path=gallery_path)
    assert not out.exists() and not list(tmp_path.glob(".*partial*")) and _runs(gallery_path) == []

    code = cli.main(["video", str(source), "--style", str(painting.origin), "--out", str(out),
                     "--gallery", str(gallery_path), "--quiet"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err and "Traceback" not in err
    assert not out.exists() and _runs(gallery_path) == []


def test_limits_are_checked_before_decoding_and_while_decoding(clip, frames_of_photo, painter, painting, tmp_path,
                                                                monkeypatch):  # fmt: skip
    with pytest.raises(VideoError, match="MB"):
        files.probe(clip, VideoLimits(max_bytes=1000))
    with pytest.raises(VideoError, match="claims 12 frames"):
        files.probe(clip, VideoLimits(max_frames=5))
    # A header that lies (claims 3 frames): decoding stops at the limit, not after the file.
    lying = files.VideoInfo(CLIP_W, CLIP_H, CLIP_FPS, 3, 0.25, "h264", True, "aac")
    monkeypatch.setattr(files, "probe", lambda path, limits=None: lying)
    frames = video_run.FramePainter(painter.styled([painting.image]), 256)
    with pytest.raises(VideoError, match="more than 5 frames"):
        files.paint_video(clip, tmp_path / "out.mp4", frames, limits=VideoLimits(max_frames=5))
    assert not (tmp_path / "out.mp4").exists()


def test_the_cli_paints_a_video_and_reports_json(clip, painting, tmp_path, gallery_path, capsys):
    out = tmp_path / "painted.mov"
    code = cli.main(["video", str(clip), "--style", str(painting.origin), "--size", "256", "--smooth", "0.3",
                     "--out", str(out), "--gallery", str(gallery_path), "--json", "--quiet"])  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and out.exists()
    assert summary["frames"] == CLIP_FRAMES and summary["fps"] == CLIP_FPS and summary["has_audio"] is True
    assert summary["method"] == "video" and summary["smooth"] == 0.3 and summary["frames_per_s"] > 0
    assert [run.id for run in _runs(gallery_path)] == [summary["run_id"]]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--size", "100"], "256–2048"),
        (["--smooth", "0.99"], "smooth must be between 0 and 0.95"),
        (["--strength", "2"], "strength must be between 0 and 1"),
        (["--model", "nope"], "nope"),
        (["--out", "painted.gif"], "--out must be"),
    ],
)
def test_the_cli_refuses_bad_settings_in_one_line(flags, message, clip, painting, tmp_path, gallery_path, capsys):
    out = ["--out", str(tmp_path / "painted.mp4")] if "--out" not in flags else []
    flags = [str(tmp_path / f) if f.endswith(".gif") else f for f in flags]
    code = cli.main(["video", str(clip), "--style", str(painting.origin), *out, *flags, "--gallery", str(gallery_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err
    assert _runs(gallery_path) == []


# --- The job queue


def test_the_queue_paints_a_video_counting_frames(clip, painter, painting, gallery_path):
    runner = jobs.JobRunner(gallery_path, weights_loader=lambda: None)
    try:
        prepared = video_run.prepare(_request(clip, painting), painter)
        run_id = runner.submit_video(prepared)
        seen = []
        deadline = time.monotonic() + 120
        while not (progress := runner.progress(run_id)).finished and time.monotonic() < deadline:
            seen.append(progress.step)
            time.sleep(0.05)
        assert progress.status == DONE and progress.step == progress.total_steps == CLIP_FRAMES
        assert seen == sorted(seen)
        with gallery.connect(gallery_path) as db:
            assert gallery.get_run(db, run_id).status == DONE
            assert gallery.run_video(db, run_id).stats["frames"] == CLIP_FRAMES
    finally:
        runner.shutdown()


def test_the_queue_leaves_no_run_for_a_video_refused_while_decoding(frames_of_photo, painter, painting, tmp_path,
                                                                    gallery_path):  # fmt: skip
    source = _truncated(frames_of_photo, tmp_path)
    prepared = video_run.prepare(_request(source, painting), painter)  # its header is whole: it passes
    runner = jobs.JobRunner(gallery_path, weights_loader=lambda: None)
    try:
        run_id = runner.submit_video(prepared, delete_source=True)
        deadline = time.monotonic() + 120
        while not (progress := runner.progress(run_id)).finished and time.monotonic() < deadline:
            time.sleep(0.05)
        assert progress.status == FAILED and "truncated" in progress.error
        assert _runs(gallery_path) == [] and not source.exists()
    finally:
        runner.shutdown()


def test_a_queued_video_can_be_cancelled(clip, painter, painting, gallery_path):
    runner = jobs.JobRunner(gallery_path, weights_loader=lambda: None)
    try:
        prepared = video_run.prepare(_request(clip, painting), painter)
        first, second = runner.submit_video(prepared), runner.submit_video(prepared)
        assert runner.cancel(second)
        deadline = time.monotonic() + 120
        while not runner.progress(first).finished and time.monotonic() < deadline:
            time.sleep(0.05)
        with gallery.connect(gallery_path) as db:
            assert gallery.get_run(db, second).status == CANCELLED
            assert gallery.get_run(db, first).status == DONE
    finally:
        runner.shutdown()


# --- The camera


class _SlowNetwork:
    """Stands in for a network where the test is about timing, not pictures: it takes ``delay_s``."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    def __call__(self, photos: np.ndarray) -> np.ndarray:
        time.sleep(self.delay_s)
        return 1.0 - photos

    def compile_for(self, shape) -> float:
        return 0.0


def test_frames_arriving_while_one_is_painted_are_dropped_not_queued(frames_of_photo):
    made = []

    def make_network(painter, styles, blend, *, strength, photo):
        made.append(styles)
        return _SlowNetwork(0.3)

    # smooth 0: each frame exactly as the network paints it (the temporal filter is tested below)
    painter = live.LivePainter(live.LiveStyle(None, ("a",), smooth=0.0, key="a"), make_network=make_network)
    first, second = frames_of_photo[0], frames_of_photo[1]
    assert painter.process(first) is first  # its network is being made: the frame goes back as it came
    assert painter.wait_ready(5)
    worker = threading.Thread(target=painter.process, args=(first,))
    worker.start()
    time.sleep(0.05)
    started = time.perf_counter()
    answer = painter.process(second)  # arrives while the first is being painted
    assert time.perf_counter() - started < 0.05  # answered at once, not after the painting
    assert answer is second  # nothing painted yet: the camera frame itself
    worker.join()
    assert painter.latest() is not None and painter.latest()[0] is first
    stats = painter.stats()
    assert (stats.painted, stats.dropped) == (1, 1)
    assert np.array_equal(painter.process(second), 255 - second)  # the network's answer, at the frame's size
    assert len(made) == 1  # the network was made once for the style, not per frame

    painter.set_style(live.LiveStyle(None, ("a",), smooth=0.0, key="a"))  # a page rerun with the same widgets
    painter.process(first)
    assert len(made) == 1
    painter.set_style(live.LiveStyle(None, ("b",), smooth=0.0, key="b"))  # a new painting, without stopping
    painter.process(first)
    assert painter.wait_ready(5) and made == [("a",), ("b",)]
    assert live.LiveStats(12, 3, 9.04, 110.4).line() == "painted frames: 12 · 9.0 fps · 110 ms per frame"


def test_a_new_style_is_made_off_the_streams_thread_while_the_old_one_paints(frames_of_photo):
    """streamlit-webrtc ends a stream whose frame takes 10 s; making a network (a style vector,
    compiling for the frame size) can take seconds: it happens on a thread of its own."""
    release = threading.Event()

    class Network(_SlowNetwork):
        def __init__(self, offset: float, slow_compile: bool) -> None:
            super().__init__(0.0)
            self.offset, self.slow_compile = offset, slow_compile

        def __call__(self, photos):
            return np.clip(photos * 0 + self.offset, 0, 1)

        def compile_for(self, shape) -> float:
            if self.slow_compile:
                release.wait(10)
            return 0.0

    def make_network(painter, styles, blend, *, strength, photo):
        return Network(0.0 if styles == ("black",) else 1.0, slow_compile=styles == ("white",))

    frame = frames_of_photo[0]
    painter = live.LivePainter(live.LiveStyle(None, ("black",), key="black"), make_network=make_network)
    painter.process(frame)
    assert painter.wait_ready(5) and painter.process(frame).max() == 0
    painter.set_style(live.LiveStyle(None, ("white",), key="white"))
    started = time.perf_counter()
    assert painter.process(frame).max() == 0  # the old style paints while the new one compiles
    assert time.perf_counter() - started < 0.5
    release.set()
    assert painter.wait_ready(5) and painter.process(frame).min() == 255
    assert painter.process(frames_of_photo[1][:40]).shape[0] == 40  # another frame size: back as it came


def test_the_webrtc_processor_paints_the_newest_frame_and_counts_the_rest(frames_of_photo, painter, painting):
    import asyncio

    style = live.LiveStyle(painter, (painting.image,), work_px=256, key="scream")
    live_painter = live.LivePainter(style)
    live_painter.process(frames_of_photo[0])  # the network is made for the camera's frame size
    assert live_painter.wait_ready(60)
    processor = live.FrameProcessor(live_painter)
    camera = []
    for i, frame in enumerate(frames_of_photo[:3]):
        video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
        video_frame.pts, video_frame.time_base = i * 3000, fractions.Fraction(1, 90000)
        camera.append(video_frame)
    (out,) = asyncio.run(processor.recv_queued(camera))
    assert out.pts == 6000 and (out.width, out.height) == (CLIP_W, CLIP_H)
    painted = out.to_ndarray(format="rgb24")
    assert np.abs(painted.astype(int) - frames_of_photo[2].astype(int)).mean() > 10
    stats = live_painter.stats()
    assert (stats.painted, stats.dropped) == (1, 2) and stats.ms_per_frame > 0 and not stats.error


def test_a_style_the_model_refuses_is_shown_and_the_stream_goes_on(frames_of_photo):
    from jaxstyle.instant.builtin import Styles26Painter

    live_painter = live.LivePainter(live.LiveStyle(Styles26Painter(), ("99",), key="bad"))
    assert live_painter.process(frames_of_photo[0]) is frames_of_photo[0]
    assert not live_painter.wait_ready(10)
    assert live_painter.process(frames_of_photo[0]) is frames_of_photo[0]  # the stream goes on, unpainted
    assert "0–25" in live_painter.stats().error


def test_a_capture_is_stored_as_an_instant_run(frames_of_photo, painter, painting, in_process, gallery_path):
    style = live.LiveStyle(painter, (painting.image,), work_px=256, strength=0.8, smooth=0.2, key="k")
    live_painter = live.LivePainter(style)
    live_painter.process(frames_of_photo[0])
    assert live_painter.wait_ready(60)
    live_painter.process(frames_of_photo[0])
    camera, painted = live_painter.latest()
    run = video_run.store_capture(style, camera, painted, [painting], in_process, gallery_path=gallery_path)
    run.score_later()
    with gallery.connect(gallery_path) as db:
        stored = gallery.get_run(db, run.run_id)
        image = Image.open(io.BytesIO(gallery.run_image(db, run.run_id)))
    assert (stored.method, stored.model, stored.status) == (METHOD_INSTANT, "arbitrary", DONE)
    assert stored.settings["strength"] == 0.8 and stored.settings["smooth"] == 0.2 and "live" in stored.tags
    assert stored.content.origin.startswith("camera ") and stored.final_losses
    assert np.array_equal(np.asarray(image), painted)


def test_ice_servers_are_none_by_default_and_read_from_the_environment():
    assert live.ice_servers({}) == []
    servers = [{"urls": ["turn:turn.example.org:3478"], "username": "u", "credential": "c"}]
    assert live.ice_servers({live.ICE_SERVERS_VARIABLE: json.dumps(servers)}) == servers
    for bad in ("stun:x", '{"urls": "x"}', "[{}]"):
        with pytest.raises(SettingsError, match=live.ICE_SERVERS_VARIABLE):
            live.ice_servers({live.ICE_SERVERS_VARIABLE: bad})


# --- Flicker


def test_flicker_is_the_outputs_change_over_the_inputs():
    meter = flicker.FlickerMeter()
    still = np.full((4, 4, 3), 100, np.uint8)
    meter.add(still, still)
    meter.add(still, still)
    assert meter.ratio is None  # the input never changed
    meter.add(still + 10, still + 30)
    assert meter.ratio == pytest.approx(3.0)
    assert meter.summary()["input_change"] == pytest.approx(5 / 255)


def test_the_temporal_filter_calms_still_parts_and_leaves_moving_parts_alone():
    rng = np.random.default_rng(0)
    frame = np.full((32, 32, 3), 120, np.uint8)
    moved = frame.copy()
    moved[:, 16:] = 220  # the right half changed: something moved there
    painted = [rng.random((32, 32, 3)).astype(np.float32) for _ in range(2)]  # a network that shimmers
    filtered = flicker.TemporalFilter(smooth=0.8, threshold=0.06)
    filtered(frame, painted[0])
    out = filtered(moved, painted[1])
    still_change = np.abs(out[:, :14] - painted[0][:, :14]).mean()
    assert still_change < 0.3 * np.abs(painted[1][:, :14] - painted[0][:, :14]).mean()  # calmer where still
    assert np.array_equal(out[:, 18:], painted[1][:, 18:])  # exactly as painted where it moved: no ghost
    unmasked = flicker.TemporalFilter(smooth=0.8, masked=False)
    unmasked(frame, painted[0])
    assert not np.allclose(unmasked(moved, painted[1])[:, 18:], painted[1][:, 18:])  # the peer's blend ghosts


# --- The gallery keeps video runs whole


def test_a_video_run_exports_and_imports_with_its_video(clip, painter, painting, tmp_path, gallery_path):
    run = video_run.run_video(_request(clip, painting), tmp_path / "painted.mp4", painter=painter,
                              gallery_path=gallery_path)  # fmt: skip
    with gallery.connect(gallery_path) as db:
        _, json_path = gallery.export_run(db, run.run_id, tmp_path)
        gallery.export_gallery(db, tmp_path / "export.zip")
        original = gallery.run_video(db, run.run_id)
    assert (tmp_path / f"run-{run.run_id}.mp4").read_bytes() == original.data
    assert json.loads(json_path.read_text())["method"] == METHOD_VIDEO
    other = tmp_path / "other.db"
    with gallery.connect(other) as db:
        (new_id,) = gallery.import_gallery(db, tmp_path / "export.zip")
        imported = gallery.run_video(db, new_id)
        assert gallery.get_run(db, new_id).method == METHOD_VIDEO
    assert imported.data == original.data and imported.stats == original.stats


def test_an_export_whose_video_is_not_a_video_is_refused_whole(clip, painter, painting, tmp_path, gallery_path):
    import zipfile

    run = video_run.run_video(_request(clip, painting), tmp_path / "painted.mp4", painter=painter,
                              gallery_path=gallery_path)  # fmt: skip
    with gallery.connect(gallery_path) as db:
        gallery.export_gallery(db, tmp_path / "export.zip")
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(tmp_path / "export.zip") as source, zipfile.ZipFile(forged, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            target.writestr(item, b"not a video at all" if item.filename.startswith("videos/") else data)
    other = tmp_path / "other.db"
    with gallery.connect(other) as db, pytest.raises(GalleryError, match=f"run {run.run_id}.*not a video"):
        gallery.import_gallery(db, forged)
    assert _runs(other) == []
