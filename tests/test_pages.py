"""Every page of the app, headless (streamlit.testing.v1.AppTest), on a temp gallery."""

from __future__ import annotations

import http.server
import io
import re
import threading
import time
import zipfile
from pathlib import Path

import pytest
import streamlit as st
from PIL import Image
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from jaxstyle import gallery, images, inputs
from jaxstyle.jobs import JobRunner
from jaxstyle.settings import TransferSettings
from tests.support import APP, cards


@pytest.fixture(scope="session")
def weights_cache(tmp_path_factory) -> Path:
    """One cache dir for the whole session, so the offline fallback weights are computed once."""
    return tmp_path_factory.mktemp("shared-cache")


@pytest.fixture(autouse=True)
def app_env(monkeypatch, weights_cache):
    monkeypatch.setenv("JAXSTYLE_CACHE_DIR", str(weights_cache))
    st.cache_data.clear()
    st.cache_resource.clear()  # the job runner is per gallery path, which changes per test
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def open_app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    if page:
        at.switch_page(f"app_pages/{page}.py").run()
    if page == "generate":  # without the pretrained VGG19 (as here) Generate opens in Instant: these test Optimize
        at.button_group(key="gen_method").set_value("Optimize").run()
    assert not at.exception
    return at


def small_jpeg(path: Path, size_px: int = 96) -> bytes:
    image = images.fit_long_side(images.open_image(path), size_px)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


def make_run(
    gallery_path: Path,
    shared_data: Path,
    title: str,
    *,
    style: str = "starry_night",
    content: str = "tubingen",
    tags: tuple[str, ...] = (),
    favorite: bool = False,
    status: str = "done",
    **settings,
) -> int:
    """A run stored through the gallery API, with real images (its 'result' is the resized photo)."""
    content_data = small_jpeg(shared_data / "content" / f"{content}.jpg")
    style_data = small_jpeg(shared_data / "styles" / f"{style}.jpg")
    with gallery.connect(gallery_path) as db:
        content_sha = gallery.store_image(db, content_data, origin_kind="upload", origin=f"{content}.jpg")
        style_sha = gallery.store_image(db, style_data, origin_kind="catalog", origin=style)
        run_id = gallery.add_run(
            db,
            TransferSettings(size_px=64, iterations=3, **settings).to_dict(),
            content_sha=content_sha,
            style_shas=[style_sha],
            title=title,
            tags=tags,
        )
        gallery.start_run(db, run_id, total_steps=3)
        if status == "done":
            history = [
                {"step": k, "size_px": 64, "total": 1.0 / k, "content": 0.5 / k, "style": 0.4 / k, "tv": 0.1}
                for k in (1, 2, 3)
            ]
            gallery.finish_run(
                db,
                run_id,
                image_png=images.png_bytes(images.open_image(content_data)),
                initial_losses=history[0],
                final_losses=history[-1],
                loss_history=history,
                compile_s=1.0,
                run_s=2.0,
                device="cpu",
                weights_source="random-fallback",
            )
        else:
            gallery.fail_run(db, run_id, "it broke", cancelled=status == "cancelled")
        if favorite:
            gallery.set_favorite(db, run_id, True)
    return run_id


def wait_for_run(gallery_path: Path, *, timeout_s: float = 300.0) -> gallery.Run:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with gallery.connect(gallery_path) as db:
            runs = gallery.list_runs(db)
            if runs and runs[0].status not in gallery.ACTIVE_STATUSES:
                return gallery.get_run(db, runs[0].id)
        time.sleep(0.5)
    pytest.fail(f"no run finished within {timeout_s:g} s")


# ----- Home -------------------------------------------------------------------------------------


def test_home_with_an_empty_gallery_says_so_and_shows_the_system(app_gallery):
    at = open_app()
    assert not at.error
    assert "No runs yet" in at.info[0].value
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Gallery"] == "0 runs"
    assert metrics["Device"] in ("CPU", "GPU")
    assert any("Offline fallback" in w.value for w in at.warning)  # no pretrained weights in a temp cache
    assert at.button(key="download_weights").label.startswith("Download pretrained weights")


def test_home_with_runs_shows_the_latest_as_cards(app_gallery, shared_data):
    first = make_run(app_gallery, shared_data, "First light")
    second = make_run(app_gallery, shared_data, "Second wave", style="great_wave")
    at = open_app()
    assert cards(at, "home_open") == [second, first]
    assert {m.label: m.value for m in at.metric}["Gallery"] == "2 runs"
    assert not at.info


# ----- Generate ---------------------------------------------------------------------------------


def test_the_home_button_and_a_paintings_use_this_style_open_generate_with_it_chosen(app_gallery):
    at = open_app()
    at.button(key="cta_generate").click().run()
    assert not at.exception and at.title[0].value == "Generate"
    at.switch_page("app_pages/styles.py").run()
    at.button(key="use_the_scream").click().run()  # not the painting Generate starts with
    assert not at.exception and at.title[0].value == "Generate"
    assert (at.session_state["style_source"], at.multiselect(key="style_ids").value) == ("Catalog", ["the_scream"])
    assert at.session_state["handoff"] == {}  # the request was taken, once


def test_generate_at_a_tiny_size_lands_a_run_in_the_gallery(app_gallery, content_path):
    at = open_app("generate")
    assert at.button(key="generate").disabled  # no photo yet
    at.file_uploader(key="content_upload").upload("tubingen.jpg", content_path.read_bytes(), "image/jpeg").run()
    assert at.session_state["style_ids"] == ["starry_night"]  # the first painting on this machine
    at.select_slider(key="s_size_px").set_value(32)
    at.number_input(key="s_iterations").set_value(3).run()
    assert not at.button(key="generate").disabled
    at.button(key="generate").click().run()
    assert not at.exception and not at.error

    run = wait_for_run(app_gallery)
    assert (run.status, run.error) == ("done", "")
    assert (run.settings["size_px"], run.settings["iterations"]) == (32, 3)
    assert (run.content.origin_kind, run.content.origin) == ("upload", "tubingen.jpg")
    assert [(s.origin_kind, s.origin) for s in run.styles] == [("catalog", "starry_night")]
    assert run.title == "tubingen × The Starry Night"
    with gallery.connect(app_gallery) as db:
        assert max(Image.open(io.BytesIO(gallery.run_image(db, run.id))).size) == 32

    at.run()  # the page now shows the result
    assert not at.exception and not at.error
    assert at.session_state["run_id"] == run.id
    assert at.get("download_button")[0].label == "Download PNG"


def test_a_url_that_is_not_http_shows_an_error_under_the_input(app_gallery):
    at = open_app("generate")
    at.button_group(key="content_source").set_value("URL").run()
    at.text_input(key="content_url").input("ftp://example.com/photo.jpg").run()
    assert not at.exception
    assert "http" in at.error[0].value
    assert at.button(key="generate").disabled


@pytest.fixture
def image_server(content_path):
    """A real HTTP server on 127.0.0.1 serving a photo, recording every request it gets."""
    requests_seen: list[str] = []
    body = content_path.read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            requests_seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests_seen
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("host", ["LOOPBACK", "10.1.2.3", "169.254.169.254", "[::1]"])
def test_a_private_address_url_is_refused_before_any_request(app_gallery, image_server, host):
    base, requests_seen = image_server
    url = f"{base}/photo.jpg" if host == "LOOPBACK" else f"http://{host}/photo.jpg"
    at = open_app("generate")
    at.button_group(key="content_source").set_value("URL").run()
    at.text_input(key="content_url").input(url).run()
    assert not at.exception
    assert len(at.error) == 1
    assert "private" in at.error[0].value or "loopback" in at.error[0].value or "link-local" in at.error[0].value
    assert requests_seen == []
    assert at.button(key="generate").disabled


def test_a_non_image_upload_shows_an_error(app_gallery):
    at = open_app("generate")
    at.file_uploader(key="content_upload").upload("notes.png", b"these are my notes, not a picture", "image/png").run()
    assert not at.exception
    assert "notes.png" in at.error[0].value
    assert at.button(key="generate").disabled


def test_style_blend_weights_appear_for_several_paintings(app_gallery):
    at = open_app("generate")
    at.multiselect(key="style_ids").set_value(["starry_night", "the_scream"]).run()
    assert not at.exception
    assert len(at.slider) == 2 + 1  # one blend weight per painting, plus the style scale
    assert any(c.value.startswith("Blend: The Starry Night 50%") for c in at.caption)


def test_a_preset_fills_the_advanced_settings(app_gallery):
    at = open_app("generate")
    at.button_group(key="preset").set_value("High quality").run()
    assert (at.session_state["s_size_px"], at.session_state["s_iterations"]) == (512, 300)
    at.number_input(key="s_iterations").set_value(7).run()
    assert at.session_state["preset"] is None  # edited: now custom
    assert any(c.value.startswith("Custom settings") for c in at.caption)


# ----- Gallery ----------------------------------------------------------------------------------


def test_gallery_filters_by_text_tag_favorite_style_and_status(app_gallery, shared_data):
    dawn = make_run(app_gallery, shared_data, "Harbour at dawn", tags=("blue",), favorite=True)
    night = make_run(app_gallery, shared_data, "Harbour at night", style="the_scream", tags=("dark",))
    forest = make_run(app_gallery, shared_data, "Forest", style="the_scream", status="failed")
    with gallery.connect(app_gallery) as db:
        scream_sha = gallery.get_run(db, night).styles[0].sha256
    at = open_app("gallery")
    assert cards(at, "gallery_open") == [forest, night, dawn]

    at.text_input(key="g_text").input("harbour").run()
    assert cards(at, "gallery_open") == [night, dawn]
    at.selectbox(key="g_tag").set_value("dark").run()
    assert cards(at, "gallery_open") == [night]

    at = open_app("gallery")
    at.toggle(key="g_fav").set_value(True).run()
    assert cards(at, "gallery_open") == [dawn]

    at = open_app("gallery")
    at.selectbox(key="g_style").set_value(scream_sha).run()
    assert cards(at, "gallery_open") == [forest, night]
    at.multiselect(key="g_status").set_value(["failed"]).run()
    assert cards(at, "gallery_open") == [forest]
    at.multiselect(key="g_status").set_value(["cancelled"]).run()
    assert cards(at, "gallery_open") == []
    assert "No runs match" in at.info[0].value
    assert not at.exception and not at.error


def test_a_run_opens_in_full_and_can_be_deleted_after_confirming(app_gallery, shared_data):
    keep = make_run(app_gallery, shared_data, "Keep me")
    doomed = make_run(app_gallery, shared_data, "Delete me", style="udnie", tags=("old",))
    at = open_app("gallery")
    at.button(key=f"gallery_open_{doomed}").click().run()
    assert not at.exception and not at.error
    assert at.title[0].value == "Delete me"
    assert at.text_input(key=f"title_{doomed}").value == "Delete me"
    captions = {caption for image in at.image for caption in image.captions}
    assert captions >= {"Content: tubingen", "Style: Udnie (Young American Girl, The Dance)"}

    at.button(key="confirm_delete").click().run()
    assert not at.exception and not at.error
    with gallery.connect(app_gallery) as db:
        assert [run.id for run in gallery.list_runs(db)] == [keep]
    assert cards(at, "gallery_open") == [keep]  # back on the grid


def test_a_run_can_be_renamed_tagged_and_starred(app_gallery, shared_data):
    run_id = make_run(app_gallery, shared_data, "Untitled")
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["run"] = str(run_id)
    at.run().switch_page("app_pages/gallery.py").run()
    at.text_input(key=f"title_{run_id}").input("Evening river").run()
    at.multiselect(key=f"tags_{run_id}").set_value(["river", "warm"]).run()
    at.button(key="favorite").click().run()
    assert not at.exception and not at.error
    with gallery.connect(app_gallery) as db:
        run = gallery.get_run(db, run_id)
    assert (run.title, run.tags, run.favorite) == ("Evening river", ("river", "warm"), True)


def test_rerun_opens_generate_with_the_same_inputs_and_settings(app_gallery, shared_data):
    run_id = make_run(app_gallery, shared_data, "Strong style", style_weight=1000.0, seed=7)
    at = open_app("gallery")
    at.button(key=f"gallery_open_{run_id}").click().run()
    at.button(key="rerun").click().run()
    assert not at.exception and not at.error
    assert at.session_state["s_style_weight"] == 1000.0
    assert at.session_state["s_seed"] == 7
    assert at.session_state["s_size_px"] == 64
    assert at.session_state["content_source"] == "Recent"
    assert at.session_state["style_ids"] == ["starry_night"]
    assert not at.button(key="generate").disabled


# ----- Gallery: export and import ---------------------------------------------------------------


@pytest.fixture(scope="module")
def exported_runs(tmp_path_factory, fallback_weights, shared_data) -> tuple[bytes, dict[str, bytes]]:
    """A ZIP exported from a gallery of two real runs (the fallback VGG19 at 32 px), and their images by title."""
    path = tmp_path_factory.mktemp("elsewhere") / "gallery.db"
    content = inputs.from_path(shared_data / "content" / "chicago.jpg")
    style = inputs.from_path(shared_data / "styles" / "udnie.jpg")
    runner = JobRunner(path, weights=fallback_weights)
    try:
        tiny = TransferSettings(size_px=32, iterations=2)
        ids = [
            runner.submit(tiny.replace(style_weight=weight), content, [style], title=title)
            for title, weight in (("Soft", 1.0), ("Strong", 100.0))
        ]
        deadline = time.monotonic() + 300
        while not all(runner.progress(run_id).finished for run_id in ids) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        runner.shutdown()
    with gallery.connect(path) as db:
        assert [gallery.get_run(db, run_id).status for run_id in ids] == ["done", "done"]
        results = {gallery.get_run(db, run_id).title: gallery.run_image(db, run_id) for run_id in ids}
        gallery.export_gallery(db, path.with_suffix(".zip"))
    return path.with_suffix(".zip").read_bytes(), results


@pytest.fixture
def offered(monkeypatch) -> dict[str, bytes]:
    """What the app offers for download, by file name (AppTest keeps its media only while a run lasts)."""
    offered: dict[str, bytes] = {}
    keep = MemoryMediaFileStorage.load_and_get_id

    def load_and_get_id(self, path_or_data, mimetype, kind, filename=None):
        if filename is not None and isinstance(path_or_data, bytes):
            offered[filename] = path_or_data
        return keep(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", load_and_get_id)
    return offered


def runs_by_title(gallery_path: Path) -> dict[str, bytes]:
    with gallery.connect(gallery_path) as db:
        return {run.title: gallery.run_image(db, run.id) for run in gallery.list_runs(db)}


def test_the_gallery_exports_its_runs_as_a_zip_that_imports_elsewhere(app_gallery, exported_runs, offered, tmp_path):
    archive, results = exported_runs
    (tmp_path / "in.zip").write_bytes(archive)
    with gallery.connect(app_gallery) as db:
        gallery.import_gallery(db, tmp_path / "in.zip")
    at = open_app("gallery")
    assert not at.get("download_button")
    at.button(key="g_export").click().run()
    assert not at.exception and not at.error
    assert at.get("download_button")[0].label.startswith("Download (2 runs, ")
    ((name, data),) = ((n, d) for n, d in offered.items() if n.endswith(".zip"))
    assert re.fullmatch(r"jaxstyle-gallery-\d{4}-\d{2}-\d{2}\.zip", name)

    (tmp_path / "out.zip").write_bytes(data)
    elsewhere = tmp_path / "elsewhere.db"
    with gallery.connect(elsewhere) as db:
        assert len(gallery.import_gallery(db, tmp_path / "out.zip")) == 2
    assert runs_by_title(elsewhere) == results  # the same runs, with the very same images


def test_a_zip_imported_on_the_gallery_page_adds_its_runs(app_gallery, exported_runs):
    archive, results = exported_runs
    at = open_app("gallery")
    assert "The gallery is empty" in at.info[0].value
    assert at.button(key="g_export").disabled  # nothing to export yet
    at.file_uploader(key="g_import").upload("my-runs.zip", archive, "application/zip").run()
    assert not at.exception and not at.error
    assert [message.value for message in at.success] == ["Imported 2 runs from my-runs.zip."]
    assert len(cards(at, "gallery_open")) == 2
    assert not at.button(key="g_export").disabled
    assert runs_by_title(app_gallery) == results

    at.run()  # the ZIP stays in the uploader: later reruns import nothing more
    assert not at.exception and not at.error and not at.success
    assert len(runs_by_title(app_gallery)) == 2


def _zip_without_manifest() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("results/1.png", b"not even a png")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "pattern"),
    [
        ("notes.zip", b"these are my notes", r"notes\.zip is not a jaxstyle gallery export \(not a zip file"),
        ("other.zip", _zip_without_manifest(), r"other\.zip is incomplete: the manifest \(manifest\.json\) is missing"),
    ],
)
def test_a_bad_zip_is_refused_in_one_line_and_imports_nothing(app_gallery, shared_data, name, data, pattern):
    make_run(app_gallery, shared_data, "Already here")
    at = open_app("gallery")
    at.file_uploader(key="g_import").upload(name, data, "application/zip").run()
    assert not at.exception and not at.success
    assert len(at.error) == 1
    message = at.error[0].value
    assert re.match(pattern, message), message
    assert "\n" not in message and "jaxstyle-import-" not in message  # one line, naming the upload, not a temp file
    assert list(runs_by_title(app_gallery)) == ["Already here"]


# ----- Compare ----------------------------------------------------------------------------------


def test_compare_shows_two_runs_and_marks_the_settings_that_differ(app_gallery, shared_data):
    a = make_run(app_gallery, shared_data, "Soft", style_weight=1.0)
    b = make_run(app_gallery, shared_data, "Strong", style_weight=100.0, seed=3)
    at = open_app("compare")
    assert "at least two" in at.info[0].value
    at.multiselect(key="compare_ids").set_value([a, b]).run()
    assert not at.exception and not at.error
    assert any(m.value == "Differs: `style_weight`, `seed`" for m in at.markdown)
    table = at.dataframe[0].value
    assert list(table.columns) == [f"#{a} · Soft", f"#{b} · Strong"]
    assert list(table.loc["style_weight"]) == ["1", "100"]
    at.toggle(key="cmp_only_diff").set_value(True).run()
    assert list(at.dataframe[0].value.index) == ["style_weight", "seed"]


def test_add_to_comparison_from_the_gallery(app_gallery, shared_data):
    a = make_run(app_gallery, shared_data, "One")
    b = make_run(app_gallery, shared_data, "Two", tv_weight=10.0)
    at = open_app("gallery")
    for run_id in (a, b):
        at.button(key=f"gallery_open_{run_id}").click().run()
        at.button(key="add_compare").click().run()
        at.button(key="back").click().run()
    at.switch_page("app_pages/compare.py").run()
    assert at.multiselect(key="compare_ids").value == [a, b]
    assert any(m.value == "Differs: `tv_weight`" for m in at.markdown)


def test_a_weight_sweep_runs_as_one_group_shown_as_a_labeled_row(app_gallery, content_path):
    at = open_app("compare")
    at.file_uploader(key="content_upload").upload("tubingen.jpg", content_path.read_bytes(), "image/jpeg").run()
    at.slider(key="sw_count").set_value(2)
    at.select_slider(key="sw_range").set_value((1.0, 100.0))
    at.select_slider(key="sw_size").set_value(32)
    at.number_input(key="sw_iterations").set_value(2).run()
    assert any(c.value == "Ratios: 1 · 100" for c in at.caption)
    at.button(key="sweep").click().run()
    assert not at.exception and not at.error

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        with gallery.connect(app_gallery) as db:
            runs = gallery.list_runs(db, tag="sweep")
        if len(runs) == 2 and all(run.status == "done" for run in runs):
            break
        time.sleep(0.5)
    assert sorted(run.style_weight for run in runs) == [1.0, 100.0]
    assert len({run.group_id for run in runs}) == 1
    at.run()
    labels = [m.value for m in at.markdown if m.value.startswith("**style/content")]
    assert labels == ["**style/content 1**", "**style/content 100**"]
