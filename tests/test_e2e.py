"""End to end in a real browser: Debian's Chromium driven by Playwright against `streamlit run`.

Upload a photo, choose a painting, generate at a tiny size, wait for the result, then find the
run in the gallery; paint a photo at once with the built-in model on a fresh install, and with a
trained model. Screenshots go to the test's tmp dir. Without Chromium the test skips (saying
how to install it), unless JAXSTYLE_REQUIRE_BROWSER=1 (set by .ci/run) makes that a failure.
Chromium, the app's server and the page helpers are in servers.py, the fixtures in conftest.py.
"""

from __future__ import annotations

import pytest

from tests.servers import new_page, open_expander, settle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.mark.timeout(600)
def test_upload_generate_and_find_the_run_in_the_gallery(browser, app_url, shared_data, tmp_path):
    from playwright.sync_api import expect

    expect.set_options(timeout=30_000)
    shots = ("1-generate-ready", "2-generate-done", "3-gallery", "4-run-detail")
    with new_page(browser, tmp_path, shots=shots) as page:
        page.goto(app_url)
        expect(page.get_by_role("heading", name="jaxstyle")).to_be_visible()
        page.get_by_role("button", name="Generate an image").click()
        expect(page.get_by_role("heading", name="Generate")).to_be_visible()
        page.get_by_role("radio", name="Optimize (step by step)").click()  # without the pretrained VGG: Instant
        settle(page)

        # A photo from the shared test images.
        uploader = page.get_by_test_id("stFileUploader").first
        uploader.locator("input[type=file]").set_input_files(str(shared_data / "content" / "tubingen.jpg"))
        expect(page.get_by_text("tubingen · 1024×768")).to_be_visible()
        settle(page)

        # A painting: replace the default with The Great Wave.
        paintings = page.get_by_role("combobox", name="Paintings")
        paintings.click()
        paintings.press("Backspace")
        settle(page)
        paintings.fill("Great Wave")
        paintings.press("Enter")
        paintings.press("Escape")
        settle(page)
        expect(page.get_by_text("The Great Wave off Kanagawa — Katsushika Hokusai, c. 1831")).to_be_visible()

        # A tiny run: the smallest size and 3 iterations.
        open_expander(page, "Advanced settings")
        page.get_by_role("group", name="Size (long side, px)").get_by_role("slider").press("Home")
        settle(page)
        iterations = page.get_by_label("Iterations", exact=True)
        iterations.fill("3")
        iterations.press("Enter")
        settle(page)
        expect(page.get_by_text("32 px · 3 iterations", exact=False)).to_be_visible()
        page.screenshot(path=tmp_path / "1-generate-ready.png")

        page.get_by_role("button", name="Generate", exact=True).click()
        expect(page.get_by_role("button", name="Download PNG")).to_be_visible(timeout=420_000)
        expect(page.get_by_text("Content: tubingen")).to_be_visible()
        page.screenshot(path=tmp_path / "2-generate-done.png")

        title = "tubingen × The Great Wave off Kanagawa"
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Gallery").click()
        expect(page.get_by_role("heading", name="Gallery")).to_be_visible()
        expect(page.get_by_text(title)).to_be_visible()
        page.screenshot(path=tmp_path / "3-gallery.png")

        page.get_by_role("button", name="View", exact=True).first.click()
        expect(page.get_by_role("heading", name=title)).to_be_visible()
        expect(page.get_by_text("Style: The Great Wave off Kanagawa")).to_be_visible()
        page.screenshot(path=tmp_path / "4-run-detail.png")


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the select box ``label`` by typing it (its list is searchable)."""
    box = page.get_by_role("combobox", name=label)
    box.click()
    box.fill(option)
    box.press("Enter")
    settle(page)


@pytest.mark.timeout(600)
def test_paints_an_uploaded_photo_in_a_catalog_painting_with_no_model_trained(browser, app_url, shared_data, tmp_path):
    """A fresh install, no model trained and no pretrained VGG19: Generate opens in Instant, and the
    built-in arbitrary model paints the photo in a catalog painting at once."""
    from playwright.sync_api import expect

    from jaxstyle import gallery, runs

    expect.set_options(timeout=30_000)
    with new_page(browser, tmp_path, shots=("1-builtin-ready", "2-builtin-done")) as page:
        page.goto(app_url)
        page.get_by_role("button", name="Generate an image").click()
        expect(page.get_by_role("heading", name="Generate")).to_be_visible()
        expect(page.get_by_text("The pretrained VGG19 isn't here", exact=False)).to_be_visible()
        expect(page.get_by_role("combobox", name="Model")).to_be_visible()  # Instant, with no choosing
        uploader = page.get_by_test_id("stFileUploader").first
        uploader.locator("input[type=file]").set_input_files(str(shared_data / "content" / "golden_gate.jpg"))
        expect(page.get_by_text("golden_gate · ", exact=False)).to_be_visible()
        settle(page)

        paintings = page.get_by_role("combobox", name="Paintings")  # the Optimize picker: replace the default
        paintings.click()
        paintings.press("Backspace")
        settle(page)
        paintings.fill("Great Wave")
        paintings.press("Enter")
        paintings.press("Escape")
        settle(page)
        expect(page.get_by_text("The Great Wave off Kanagawa — Katsushika Hokusai, c. 1831")).to_be_visible()
        page.get_by_role("group", name="Size (long side, px)").get_by_role("slider").press("Home")  # 256 px
        settle(page)
        page.screenshot(path=tmp_path / "1-builtin-ready.png")

        page.get_by_role("button", name="Paint", exact=True).click()
        expect(page.get_by_role("button", name="Download PNG")).to_be_visible(timeout=300_000)
        expect(page.get_by_text("model arbitrary · 256 px", exact=False)).to_be_visible()
        expect(page.get_by_text("golden_gate × The Great Wave off Kanagawa")).to_be_visible()
        page.screenshot(path=tmp_path / "2-builtin-done.png")

    with gallery.connect(tmp_path / "gallery.db") as db:  # the app's gallery (see app_url)
        (summary,) = gallery.list_runs(db)
        run = gallery.get_run(db, summary.id)
    assert (run.status, run.method, run.model) == (runs.DONE, runs.METHOD_INSTANT, "arbitrary")
    assert [(s.origin_kind, s.origin) for s in run.styles] == [("catalog", "great_wave")]
    assert (run.settings["size_px"], run.settings["strength"]) == (256, 1.0)


@pytest.mark.timeout(600)
def test_paint_at_once_with_a_trained_model(browser, app_url, shared_data, tmp_path, fallback_weights):
    """The Instant method: a model in the app's gallery paints the uploaded photo in one pass."""
    from playwright.sync_api import expect

    from jaxstyle import inputs
    from jaxstyle.instant.train import TrainSettings, train

    styles = [(s, inputs.from_path(shared_data / "styles" / f"{s}.jpg").image) for s in ("starry_night", "great_wave")]
    train(
        "demo",
        styles,
        shared_data / "content",
        TrainSettings(size_px=32, steps=1, batch=1),
        fallback_weights,
        gallery_path=tmp_path / "gallery.db",
    )  # fmt: skip  (the app's gallery, see app_url)
    expect.set_options(timeout=30_000)
    with new_page(browser, tmp_path, shots=("1-instant-ready", "2-instant-done")) as page:
        page.goto(app_url)
        page.get_by_role("button", name="Generate an image").click()
        expect(page.get_by_role("heading", name="Generate")).to_be_visible()
        page.get_by_role("radio", name="Instant (one pass)").click()  # a segmented control
        settle(page)
        uploader = page.get_by_test_id("stFileUploader").first
        uploader.locator("input[type=file]").set_input_files(str(shared_data / "content" / "golden_gate.jpg"))
        expect(page.get_by_text("golden_gate · ", exact=False)).to_be_visible()
        settle(page)
        choose(page, "Model", "demo")  # after the built-in models
        page.get_by_role("group", name="Size (long side, px)").get_by_role("slider").press("Home")
        settle(page)
        page.screenshot(path=tmp_path / "1-instant-ready.png")

        page.get_by_role("button", name="Paint", exact=True).click()
        expect(page.get_by_role("button", name="Download PNG")).to_be_visible(timeout=300_000)
        expect(page.get_by_text("model demo", exact=False)).to_be_visible()
        expect(page.get_by_role("button", name="Refine")).to_be_visible()
        page.screenshot(path=tmp_path / "2-instant-done.png")
