"""The Live page end to end in a real browser: Debian's Chromium with its fake camera (fed a Y4M clip
made here from a real photo) driven by Playwright against `streamlit run` (the server, the page
helpers and the skip rule of tests/servers.py). Start the stream, see `painted frames` rise past
20, change the painting while it runs and see the count keep rising, capture a frame, and find it in
the Gallery; and paint an uploaded clip through the queue, then open its run page, which plays it.
WebRTC runs with no ICE servers (the app's default): browser and app on one machine.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import av
import pytest
from PIL import Image

from jaxstyle.video import clips
from tests.servers import chromium, new_page, settle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

COUNT = re.compile(r"painted frames: (\d+) · ")


def write_y4m(path: Path, photo: Path, *, frames: int = 50, width: int = 320, height: int = 240, fps: int = 25) -> Path:
    """A Y4M clip (what Chromium's fake camera plays, in a loop) of a camera panning over ``photo``."""
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in clips.clip_frames(Image.open(photo), frames, width, height):
            out.write(b"FRAME\n")
            out.write(av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray().tobytes())
    return path


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory, shared_data) -> Path:
    return write_y4m(tmp_path_factory.mktemp("camera") / "camera.y4m", shared_data / "content" / "golden_gate.jpg")


@pytest.fixture(scope="module")
def browser(camera_clip):
    """Chromium with a fake camera that plays ``camera_clip`` and grants itself the permission."""
    with chromium(
        "--disable-quic",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={camera_clip}",
    ) as launched:
        yield launched


def painted_frames(page) -> int:
    """The count in the page's `painted frames: N · X fps · Y ms per frame` line (0 before it shows)."""
    line = page.get_by_text(COUNT)
    if not line.count():
        return 0
    match = COUNT.search(line.first.inner_text())
    return int(match.group(1)) if match else 0


def wait_for_frames(page, above: int, *, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while (count := painted_frames(page)) <= above:
        if time.monotonic() > deadline:
            pytest.fail(f"painted frames stayed at {count} (waited {timeout_s:g} s for more than {above})")
        page.wait_for_timeout(250)
    return count


@pytest.mark.timeout(300)
def test_the_camera_is_painted_live_restyled_while_it_runs_and_a_capture_lands_in_the_gallery(
    browser, app_url, tmp_path
):
    from playwright.sync_api import expect

    from jaxstyle import gallery, runs

    expect.set_options(timeout=30_000)
    shots = ("1-live-painting", "2-live-captured", "3-gallery")
    with new_page(browser, tmp_path, shots=shots) as page:
        page.goto(app_url)
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Live").click()
        expect(page.get_by_role("heading", name="Live")).to_be_visible()
        expect(page.get_by_text("Start the camera first", exact=False)).to_be_visible()
        page.get_by_role("radio", name="256", exact=True).click()  # the smallest working size
        settle(page)

        camera = page.frame_locator("iframe[title*='webrtc']")
        camera.get_by_role("button", name="START").click()
        first = wait_for_frames(page, 20, timeout_s=60)
        expect(camera.locator("video")).to_be_visible()
        page.screenshot(path=tmp_path / "1-live-painting.png")

        # Another painting while the stream runs: the count goes on rising (no restart).
        paintings = page.get_by_role("combobox", name="Paintings")
        paintings.click()
        paintings.press("Backspace")
        paintings.fill("Great Wave")
        paintings.press("Enter")
        paintings.press("Escape")
        expect(page.get_by_text("The Great Wave off Kanagawa — Katsushika Hokusai, c. 1831")).to_be_visible()
        settle(page)
        wait_for_frames(page, max(first, painted_frames(page)) + 20, timeout_s=45)

        page.get_by_role("button", name="Capture").click()
        captured = page.get_by_text(re.compile(r"Captured: run \d+"))
        expect(captured).to_be_visible()
        run_id = int(re.search(r"run (\d+)", captured.inner_text()).group(1))
        page.screenshot(path=tmp_path / "2-live-captured.png")

        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Gallery").click()
        expect(page.get_by_role("heading", name="Gallery")).to_be_visible()
        expect(page.get_by_text(re.compile(r"Live: camera .* × The Great Wave off Kanagawa"))).to_be_visible()
        expect(page.get_by_text(f"#{run_id} · ", exact=False)).to_be_visible()
        page.screenshot(path=tmp_path / "3-gallery.png")

    with gallery.connect(tmp_path / "gallery.db") as db:  # the app's gallery (see app_url)
        run = gallery.get_run(db, run_id)
    assert (run.method, run.model, run.tags) == (runs.METHOD_INSTANT, "arbitrary", ("live",))
    assert [(s.origin_kind, s.origin) for s in run.styles] == [("catalog", "great_wave")]
    assert run.settings["size_px"] == 320 and run.settings["stroke_px"] == 256  # the camera's 320×240 frames


@pytest.mark.timeout(300)
def test_an_uploaded_video_is_painted_with_progress_and_its_run_page_plays_it(browser, app_url, shared_data, tmp_path):
    from playwright.sync_api import expect

    frames = clips.clip_frames(Image.open(shared_data / "content" / "tubingen.jpg"), 24, 96, 64)
    clip = clips.write_clip(tmp_path / "walk.mp4", frames, fps=12, audio=True)
    expect.set_options(timeout=30_000)
    with new_page(browser, tmp_path, shots=("4-video-painted", "5-video-run")) as page:
        page.goto(app_url)
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Live").click()
        expect(page.get_by_role("heading", name="Live")).to_be_visible()
        uploader = page.get_by_test_id("stFileUploader").filter(has_text="A video file")
        uploader.locator("input[type=file]").set_input_files(str(clip))
        expect(page.get_by_text("walk.mp4")).to_be_visible()
        settle(page)
        page.get_by_role("button", name="Paint video").click()
        expect(page.get_by_role("button", name="Download video")).to_be_visible(timeout=120_000)
        expect(
            page.get_by_text("24 frames · 12 fps · 2.0 s · 96×64 · with audio · painted at ", exact=False)
        ).to_be_visible()
        expect(page.locator("video")).to_have_count(1)  # the camera's player is in its own frame
        page.locator("video").scroll_into_view_if_needed()
        page.screenshot(path=tmp_path / "4-video-painted.png")

        page.get_by_role("link", name=re.compile(r"Open run #\d+ in the gallery")).click()
        expect(page.get_by_role("heading", name="walk × The Starry Night")).to_be_visible()
        expect(page.locator("video")).to_have_count(1)
        expect(page.get_by_role("button", name="Download video")).to_be_visible()
        expect(page.get_by_text("No Re-run here", exact=False)).to_be_visible()
        page.screenshot(path=tmp_path / "5-video-run.png")
