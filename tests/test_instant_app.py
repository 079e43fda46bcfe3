"""Instant styles in the app, headless (AppTest) on a temp gallery: Generate's Instant method (the
built-in models on a fresh install, and trained ones), the Models page (built-in and trained models,
import, training in the background, cancel and resume), and instant runs on the Gallery and Compare
pages. Trained models are tiny (32 px crops, a few steps); built-in ones paint at their smallest
size, 256 px; everything scores with the offline fallback VGG19, as an install without the
pretrained file does."""

from __future__ import annotations

import io
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from jaxstyle import gallery, images, inputs, runs
from jaxstyle.instant import models
from jaxstyle.instant.train import TrainSettings, train
from jaxstyle.settings import TransferSettings
from tests.support import APP, CONTENT_DIR, STYLES_DIR
from ui.model_views import binned_losses


@pytest.fixture(autouse=True)
def app_env(monkeypatch, warm_cache_dir, fallback_weights):
    """The app's cache is the session's warm one (fallback weights made once); caches cleared."""
    monkeypatch.setenv("JAXSTYLE_CACHE_DIR", str(warm_cache_dir))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory, fallback_weights) -> Path:
    """A two-style model "demo" (The Starry Night, The Great Wave) trained for 2 steps at 32 px, the
    step cooled over the last one."""
    elsewhere = tmp_path_factory.mktemp("trained") / "gallery.db"
    styles = [(s, inputs.from_path(STYLES_DIR / f"{s}.jpg").image) for s in ("starry_night", "great_wave")]
    settings = TrainSettings(size_px=32, steps=2, batch=1, decay_fraction=0.5)
    train("demo", styles, CONTENT_DIR, settings, fallback_weights, gallery_path=elsewhere)
    return models.model_path("demo", elsewhere)


@pytest.fixture
def with_demo(app_gallery, demo_model) -> Path:
    """The app's gallery holding the demo model."""
    folder = models.models_dir(app_gallery)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(demo_model, folder / demo_model.name)
    return app_gallery


def open_app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    if page:
        at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception
    return at


def small_jpeg(path: Path, size_px: int = 64) -> bytes:
    buffer = io.BytesIO()
    images.fit_long_side(images.open_image(path), size_px).save(buffer, format="JPEG")
    return buffer.getvalue()


def rerun_until(at: AppTest, done: Callable[[AppTest], bool], *, timeout_s: float = 300.0) -> AppTest:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        at.run()
        assert not at.exception
        if done(at):
            return at
        time.sleep(0.5)
    pytest.fail(f"the page did not get there within {timeout_s:g} s")


def texts(elements) -> list[str]:
    return [element.value for element in elements]


# ----- Generate: Instant ----------------------------------------------------------------------------


def test_without_the_pretrained_vgg_generate_opens_in_instant_with_the_built_in_models(app_gallery):
    at = open_app("generate")  # a fresh install, no model trained, the offline fallback VGG19 (as here)
    assert not at.exception and not at.error
    assert at.session_state["gen_method"] == "Instant"
    why = [c for c in texts(at.caption) if "pretrained VGG19 isn't here" in c]
    assert len(why) == 1 and "Instant paints with networks trained on the real one" in why[0]
    model = at.selectbox(key="i_model")
    assert (model.options, model.value) == (["Any painting (arbitrary)", "26 styles (styles26)"], "arbitrary")
    assert [link.proto.label for link in at.get("page_link")] == [
        "Or train a model on paintings of your own (Models page)"
    ]
    assert at.multiselect(key="style_ids").value == ["starry_night"]  # the Optimize picker, its default painting
    assert at.slider(key="i_strength").value == 1.0
    assert at.select_slider(key="ib_size").options[0] == "256" and at.select_slider(key="ib_size").options[-1] == "2048"
    assert at.button(key="paint").disabled
    assert "To paint, choose a photo." in texts(at.caption)

    at.button_group(key="gen_method").set_value("Optimize").run()  # the choice is the user's, and is kept
    assert at.button(key="generate").disabled and at.session_state["gen_method"] == "Optimize"
    at.switch_page("app_pages/gallery.py").run()
    at.switch_page("app_pages/generate.py").run()
    assert at.session_state["gen_method"] == "Optimize"


def test_with_the_pretrained_vgg_generate_opens_in_optimize_without_the_line(app_gallery, monkeypatch, tmp_path):
    import h5py

    weights_file = tmp_path / "vgg19.h5"  # a Keras file as far as the status goes: nothing loads it here
    h5py.File(weights_file, "w").close()
    monkeypatch.setenv("JAXSTYLE_WEIGHTS", str(weights_file))
    at = open_app("generate")
    assert not at.exception
    assert at.session_state["gen_method"] == "Optimize"
    assert not [c for c in texts(at.caption) if "pretrained VGG19 isn't here" in c]
    at.button_group(key="gen_method").set_value("Instant").run()
    assert at.selectbox(key="i_model").value == "arbitrary"


def test_a_fresh_install_paints_an_uploaded_photo_in_a_catalog_painting_and_refines_it(app_gallery):
    at = open_app("generate")
    at.file_uploader(key="content_upload").upload(
        "tubingen.jpg", small_jpeg(CONTENT_DIR / "tubingen.jpg", 320), "image/jpeg"
    )
    at.run()
    at.multiselect(key="style_ids").set_value(["great_wave"]).run()
    at.slider(key="i_strength").set_value(0.6)
    at.select_slider(key="ib_size").set_value(512).run()
    assert at.selectbox(key="ib_stroke").options == [
        "At the size",
        "Paint at 256 px, upscale",
        "Paint at 384 px, upscale",
    ]
    at.selectbox(key="ib_stroke").set_value(384).run()
    at.select_slider(key="ib_size").set_value(256).run()  # the stroke scale is above the size now: back to 0
    assert not at.exception
    assert at.selectbox(key="ib_stroke").options == ["At the size"]  # nothing smaller than 256 px to paint at
    assert at.selectbox(key="ib_stroke").value == 0
    assert not at.button(key="paint").disabled
    at.button(key="paint").click().run()
    assert not at.exception and not at.error

    with gallery.connect(app_gallery) as db:
        (summary,) = gallery.list_runs(db)
        run = gallery.get_run(db, summary.id)
        png = gallery.run_image(db, run.id)
    assert (run.status, run.method, run.model) == (runs.DONE, runs.METHOD_INSTANT, "arbitrary")
    assert [(s.origin_kind, s.origin) for s in run.styles] == [("catalog", "great_wave")]
    assert (run.settings["strength"], run.settings["size_px"], run.settings["stroke_px"]) == (0.6, 256, 0)
    assert max(Image.open(io.BytesIO(png)).size) == 256
    assert run.title == "tubingen × The Great Wave off Kanagawa"
    assert at.session_state["instant_run"] == run.id
    facts = next(c for c in texts(at.caption) if "model arbitrary" in c)
    assert " · style " in facts and "256 px · strength 0.6 ·" in facts
    assert at.get("download_button")[0].label == "Download PNG"

    at.button(key="refine").click().run()  # an optimization from the instant image, in the same painting
    assert not at.exception and not at.error
    refine_id = at.session_state["refine_run"]
    with gallery.connect(app_gallery) as db:
        refined = gallery.get_run(db, refine_id)
    assert refined.method == runs.METHOD_OPTIMIZE and refined.settings["size_px"] == 256
    assert [s.sha256 for s in refined.styles] == [s.sha256 for s in run.styles]
    stop(at, app_gallery, refine_id)

    at.switch_page("app_pages/gallery.py").run()  # the card says how it was made
    assert any("Instant · arbitrary" in caption for caption in texts(at.caption))


def test_styles26_paints_a_style_picked_from_the_photo_in_each_and_reruns_from_the_gallery(app_gallery):
    at = open_app("generate")
    at.selectbox(key="i_model").set_value("styles26").run()
    assert not at.exception and not at.error
    assert any(c.startswith("Each style on a small drawn landscape") for c in texts(at.caption))  # no photo yet
    assert not at.slider  # no strength: styles26 blends its styles instead
    at.file_uploader(key="content_upload").upload(
        "chicago.jpg", small_jpeg(CONTENT_DIR / "chicago.jpg", 320), "image/jpeg"
    )
    at.run()
    assert any(c.startswith("Your photo in each style") for c in texts(at.caption))
    assert len(at.image) == 1 + 26  # the photo, and the photo in each style
    assert [c.label for c in at.checkbox] == [str(n) for n in range(26)] and at.checkbox(key="i26_0").value
    at.checkbox(key="i26_0").uncheck()
    at.checkbox(key="i26_3").check()
    at.checkbox(key="i26_17").check().run()
    assert any(c.startswith("Blend: Style 3 50% · Style 17 50%") for c in texts(at.caption))
    at.checkbox(key="i26_17").uncheck().run()
    at.select_slider(key="ib_size").set_value(320).run()
    at.selectbox(key="ib_stroke").set_value(256)
    at.selectbox(key="ib_color").set_value("luminance").run()
    at.button(key="paint").click().run()
    assert not at.exception and not at.error

    with gallery.connect(app_gallery) as db:
        (summary,) = gallery.list_runs(db)
        run = gallery.get_run(db, summary.id)
        png = gallery.run_image(db, run.id)
    assert (run.status, run.model) == (runs.DONE, "styles26")
    assert [(s.origin_kind, s.origin) for s in run.styles] == [("model", "styles26/3")]
    assert (run.settings["size_px"], run.settings["stroke_px"], run.settings["preserve_color"]) == (
        320,
        256,
        "luminance",
    )
    assert max(Image.open(io.BytesIO(png)).size) == 320
    facts = next(c for c in texts(at.caption) if "model styles26" in c)
    assert "strokes painted at 256 px" in facts and "colours: luminance" in facts and "style " not in facts
    assert any("the styles' swatches" in c for c in texts(at.caption))  # what Refine would optimize towards

    at.switch_page("app_pages/gallery.py").run()  # run it again: Generate comes back as it was
    at.button(key=f"gallery_open_{run.id}").click().run()
    shown = {row.setting: row.value for row in at.dataframe[0].value.itertuples()}  # its "Settings used"
    assert shown == {
        "model": "styles26", "size_px": "320", "style_blend": "—", "strength": "1", "stroke_px": "256",
        "preserve_color": "luminance",
    }  # fmt: skip
    at.button(key="rerun").click().run()
    assert not at.exception and not at.error
    assert (at.session_state["gen_method"], at.selectbox(key="i_model").value) == ("Instant", "styles26")
    assert [c.key for c in at.checkbox if c.value] == ["i26_3"]
    assert (at.select_slider(key="ib_size").value, at.selectbox(key="ib_stroke").value) == (320, 256)
    assert at.selectbox(key="ib_color").value == "luminance"


def stop(at: AppTest, gallery_file: Path, run_id: int) -> None:
    """Cancel a queued optimization (a test about what was queued need not wait for it)."""
    with gallery.connect(gallery_file) as db:
        if gallery.get_run(db, run_id).status not in runs.ACTIVE_STATUSES:
            return
    at.button(key="cancel").click().run()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with gallery.connect(gallery_file) as db:
            if gallery.get_run(db, run_id).status not in runs.ACTIVE_STATUSES:
                return
        time.sleep(0.5)


def test_instant_paints_at_once_stores_an_instant_run_and_refines_it(with_demo):
    at = open_app("generate")
    at.button_group(key="gen_method").set_value("Instant").run()
    at.file_uploader(key="content_upload").upload(
        "tubingen.jpg", small_jpeg(CONTENT_DIR / "tubingen.jpg"), "image/jpeg"
    )
    at.run()
    assert at.selectbox(key="i_model").options == [
        "Any painting (arbitrary)", "26 styles (styles26)", "demo · 2 styles"
    ]  # fmt: skip
    at.selectbox(key="i_model").set_value("demo").run()
    assert at.multiselect(key="i_styles_demo").value == ["starry_night"]
    at.multiselect(key="i_styles_demo").set_value(["starry_night", "great_wave"]).run()
    assert any(c.startswith("Blend: The Starry Night 50%") for c in texts(at.caption))
    at.select_slider(key="i_size").set_value(32).run()
    assert not at.button(key="paint").disabled
    at.button(key="paint").click().run()
    assert not at.exception and not at.error

    with gallery.connect(with_demo) as db:
        (summary,) = gallery.list_runs(db)
        run = gallery.get_run(db, summary.id)
        png = gallery.run_image(db, run.id)
    assert (run.status, run.method, run.model) == (runs.DONE, runs.METHOD_INSTANT, "demo")
    assert [(s.origin_kind, s.origin) for s in run.styles] == [
        ("model", "demo/starry_night"),
        ("model", "demo/great_wave"),
    ]
    assert max(Image.open(io.BytesIO(png)).size) == 32
    assert run.final_losses["total"] > 0 and run.initial_losses["total"] > 0
    assert at.session_state["instant_run"] == run.id
    metrics = {m.label for m in at.metric}
    assert {"Loss", "The photo's loss", "Painted in"} <= metrics
    assert at.get("download_button")[0].label == "Download PNG"

    at.button(key="refine").click().run()
    assert not at.exception and not at.error
    refine_id = at.session_state["refine_run"]
    with gallery.connect(with_demo) as db:
        refined = gallery.get_run(db, refine_id)
    assert refined.method == runs.METHOD_OPTIMIZE and refined.title.endswith("· refined")
    assert (refined.content.origin_kind, refined.content.origin) == ("upload", f"instant-run-{run.id}.png")
    assert [s.sha256 for s in refined.styles] == [s.sha256 for s in run.styles]  # the model's paintings
    assert refined.settings["size_px"] == 32 and refined.settings["init"] == "content"
    stop(at, with_demo, refine_id)  # this test is about what was queued

    at.switch_page("app_pages/gallery.py").run()  # the card says how it was made
    assert any("Instant · demo" in caption for caption in texts(at.caption))


def test_a_style_the_model_lacks_is_never_offered_and_a_rerun_reopens_instant(with_demo, shared_data):
    with gallery.connect(with_demo) as db:
        content = gallery.store_image(db, small_jpeg(CONTENT_DIR / "chicago.jpg"), origin_kind="upload", origin="c.jpg")
        style = gallery.store_image(
            db, small_jpeg(STYLES_DIR / "great_wave.jpg"), origin_kind="model", origin="demo/great_wave"
        )
        run_id = gallery.add_run(
            db, TransferSettings(size_px=48).to_dict(), content_sha=content, style_shas=[style], method="instant",
            model="demo", title="An instant one",
        )  # fmt: skip
    at = open_app("gallery")
    at.button(key=f"gallery_open_{run_id}").click().run()
    assert any("Instant · demo" in caption for caption in texts(at.caption))
    at.button(key="rerun").click().run()
    assert not at.exception and not at.error
    assert at.session_state["gen_method"] == "Instant"
    assert at.multiselect(key="i_styles_demo").value == ["great_wave"]
    assert at.multiselect(key="i_styles_demo").options == ["The Starry Night", "The Great Wave off Kanagawa"]
    assert at.select_slider(key="i_size").value == 48


def test_a_model_deleted_meanwhile_falls_back_to_another_and_a_damaged_file_is_named(with_demo, demo_model):
    models.import_model(demo_model, with_demo, name="doomed")
    at = open_app("generate")
    at.button_group(key="gen_method").set_value("Instant").run()
    at.selectbox(key="i_model").select_index(3).run()  # after the two built-in models and demo
    assert at.session_state["i_model"] == "doomed"
    models.delete_model("doomed", with_demo)  # e.g. in another tab
    at.run()
    assert not at.exception and not at.error
    assert at.session_state["i_model"] == "arbitrary"  # the first model, which is always there

    (models.models_dir(with_demo) / "bad.jaxstyle-model").write_bytes(b"junk")
    at.switch_page("app_pages/models.py").run()
    assert not at.exception and not at.error
    assert [w for w in texts(at.warning) if "bad.jaxstyle-model is not a jaxstyle model" in w]
    assert "demo" in texts(at.subheader)


# ----- Compare ----------------------------------------------------------------------------------


def test_compare_shows_an_instant_run_by_its_method_and_model(app_gallery, photos):
    from tests.support import add_done_run, solid_png

    with gallery.connect(app_gallery) as db:
        optimized = add_done_run(db, photos, title="Optimized")
        content = gallery.store_image(db, photos["tubingen"], origin_kind="upload", origin="tubingen.jpg")
        style = gallery.store_image(db, photos["starry_night"], origin_kind="model", origin="demo/starry_night")
        instant = gallery.add_run(
            db, TransferSettings(size_px=64).to_dict(), content_sha=content, style_shas=[style], method="instant",
            model="demo", title="Instant", status="running",
        )  # fmt: skip
        gallery.finish_run(
            db, instant, image_png=solid_png("teal"), initial_losses={"total": 9.0}, final_losses={"total": 3.0},
            loss_history=[{"step": 1, "size_px": 64, "total": 3.0}], compile_s=0.1, run_s=0.01, device="cpu",
            weights_source="random-fallback",
        )  # fmt: skip
    at = open_app("compare")
    at.multiselect(key="compare_ids").set_value([optimized, instant]).run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert list(table.loc["method"]) == ["Optimize · 10 iterations", "Instant · demo"]
    assert list(table.loc["model"]) == ["—", "demo"]
    assert table.loc["optimizer"].iloc[1] == "—"  # an instant run has no optimizer settings

    # On the loss chart, the instant run's one point is a level line across the optimization's iterations.
    from ui.compare_views import curve_rows

    with gallery.connect(app_gallery) as db:
        histories = [gallery.get_run(db, run_id).loss_history for run_id in (optimized, instant)]
    histories[0] = [{"step": step, "total": 10.0 / step} for step in range(1, 11)]  # a whole curve
    rows = curve_rows(["Optimized", "Instant"], histories, ["optimize", "instant"], "total")
    level = [(row["step"], row["value"], row["kind"]) for row in rows if row["run"] == "Instant"]
    assert level == [(1, 3.0, "one pass"), (10, 3.0, "one pass")]
    assert [row["step"] for row in rows if row["run"] == "Optimized"] == list(range(1, 11))
    assert curve_rows(["Short"], [[{"step": 1, "total": 2.0}]], ["optimize"], "total")[0]["kind"] == "optimization"


# ----- Models -----------------------------------------------------------------------------------


def test_the_models_page_lists_the_model_with_its_styles_and_a_sample(with_demo):
    with gallery.connect(with_demo) as db:  # a photo in the gallery, for the sample
        content = gallery.store_image(db, small_jpeg(CONTENT_DIR / "chicago.jpg"), origin_kind="upload", origin="c.jpg")
        style = gallery.store_image(db, small_jpeg(STYLES_DIR / "udnie.jpg"), origin_kind="catalog", origin="udnie")
        gallery.add_run(db, TransferSettings(size_px=32).to_dict(), content_sha=content, style_shas=[style])
    at = open_app("models")
    assert not at.exception and not at.error
    assert "demo" in texts(at.subheader)
    captions = {caption for image in at.image for caption in image.captions}
    assert {"The Starry Night", "The Great Wave off Kanagawa"} <= captions
    assert any(c.startswith("Sample: c in The Starry Night, 256 px") for c in captions)
    assert any(
        "2 steps" in c
        and "step cooled over the last 50%" in c
        and "params averaged over the steps (EMA 0.999)" in c
        and "random-fallback VGG19" in c
        for c in texts(at.caption)
    )
    assert [b.label for b in at.get("download_button")] == ["Export"]
    assert len(at.get("vega_lite_chart")) == 1  # its training curve

    at.button(key="use_model_demo").click().run()  # Paint with it: Generate, Instant, this model
    assert not at.exception
    assert at.session_state["gen_method"] == "Instant" and at.selectbox(key="i_model").value == "demo"


def test_the_models_page_shows_the_built_in_models_beside_trained_ones_and_keeps_their_names(with_demo):
    at = open_app("models")
    assert not at.exception and not at.error
    assert texts(at.subheader)[:3] == ["Any painting (arbitrary)", "26 styles (styles26)", "demo"]
    swatches = [image.captions[0] for image in at.image if image.captions and image.captions[0].isdigit()]
    assert swatches == [str(n) for n in range(26)]
    assert sum("Networks and weights by the TensorFlow and Magenta projects" in c for c in texts(at.caption)) == 2
    assert [b.label for b in at.get("download_button")] == ["Export"]  # the trained model's only
    assert "confirm_delete_model_arbitrary" not in [b.key for b in at.button]

    at.text_input(key="t_name").input("styles26")  # a built-in model's name: refused at once, nothing started
    at.multiselect(key="t_styles").set_value(["udnie"])
    at.button_group(key="t_photos").set_value("Upload").run()
    at.file_uploader(key="t_photo_upload").upload("a.jpg", small_jpeg(CONTENT_DIR / "chicago.jpg"), "image/jpeg")
    at.run()
    at.button(key="train").click().run()
    assert not at.exception
    assert texts(at.error) == ["'styles26' is a built-in model's name; choose another name"]
    assert not (models.models_dir(with_demo) / "styles26-photos").exists()
    assert ui_trainings_names() == []

    at.button(key="use_model_styles26").click().run()  # Paint with it: Generate, Instant, styles26
    assert not at.exception
    assert at.session_state["gen_method"] == "Instant" and at.selectbox(key="i_model").value == "styles26"


def ui_trainings_names() -> list[str]:
    from ui.common import trainings

    return list(trainings().names())


def test_a_long_training_curve_is_drawn_as_bins_of_steps_with_their_range():
    steps = range(1, 8901)
    losses = [10.0 / step + 0.01 * (step % 7) for step in steps]
    losses[5] = 0.0  # not drawable on a log scale: left out
    frame = binned_losses(steps, losses)
    assert len(frame) == 495 and frame["step"].iloc[-1] == 8900  # ⌈8,899 / 500⌉ = 18 steps a bin
    assert (frame["low"] <= frame["mean"]).all() and (frame["mean"] <= frame["high"]).all()
    first = [loss for loss in losses[:19] if loss > 0]  # 8,899 positive losses in bins of 18
    assert frame["step"].iloc[0] == 19 and frame["mean"].iloc[0] == pytest.approx(sum(first) / 18)
    assert (frame["low"].iloc[0], frame["high"].iloc[0]) == (min(first), max(first))
    short = binned_losses([1, 2, 3], [3.0, 2.0, 1.0])  # a short training: every step is its own bin
    assert short["step"].tolist() == [1, 2, 3]
    assert short["mean"].tolist() == short["low"].tolist() == short["high"].tolist() == [3.0, 2.0, 1.0]


def test_a_corrupt_or_taken_model_upload_is_one_error_line(with_demo, demo_model):
    at = open_app("models")
    at.file_uploader(key="m_import").upload("broken.jaxstyle-model", b"\x00 not a model", "application/octet-stream")
    at.run()
    assert not at.exception and not at.success
    assert len(at.error) == 1
    assert at.error[0].value.startswith("broken.jaxstyle-model is not a jaxstyle model")
    assert "\n" not in at.error[0].value and "jaxstyle-model-" not in at.error[0].value  # not the temp copy
    assert [m.name for m in models.list_models(with_demo)] == ["demo"]

    at = open_app("models")
    at.file_uploader(key="m_import").upload("demo.jaxstyle-model", demo_model.read_bytes(), "application/octet-stream")
    at.run()
    assert texts(at.error) == ["a model called 'demo' exists already; import it under another name"]
    at = open_app("models")
    at.text_input(key="m_import_name").input("demo-copy")
    at.file_uploader(key="m_import").upload("demo.jaxstyle-model", demo_model.read_bytes(), "application/octet-stream")
    at.run()
    assert not at.error
    assert texts(at.success) == ["Imported model demo-copy (The Starry Night, The Great Wave off Kanagawa)."]
    assert sorted(m.name for m in models.list_models(with_demo)) == ["demo", "demo-copy"]


def test_training_refuses_a_taken_name_and_no_photos_in_one_line(with_demo):
    at = open_app("models")
    at.text_input(key="t_name").input("demo")
    at.multiselect(key="t_styles").set_value(["udnie"]).run()
    at.button(key="train").click().run()
    assert not at.exception
    assert texts(at.error) == [
        "no photos to train on: generate an image first (its photo joins the gallery), or upload photos"
    ]
    at.button_group(key="t_photos").set_value("Upload").run()
    at.file_uploader(key="t_photo_upload").upload("a.jpg", small_jpeg(CONTENT_DIR / "chicago.jpg"), "image/jpeg")
    at.run()
    at.button(key="train").click().run()
    assert texts(at.error) == ["a model called 'demo' exists already: pick another name, or delete it first"]
    assert not (models.models_dir(with_demo) / "demo-photos").exists()  # checked before any photo is kept


def _fill_training(at: AppTest, name: str, steps: int) -> None:
    at.text_input(key="t_name").input(name)
    at.multiselect(key="t_styles").set_value(["udnie"])
    at.button_group(key="t_photos").set_value("Upload").run()
    uploader = at.file_uploader(key="t_photo_upload")
    uploader.upload("chicago.jpg", small_jpeg(CONTENT_DIR / "chicago.jpg"), "image/jpeg")
    at.run()
    at.select_slider(key="t_size").set_value(32)
    at.number_input(key="t_steps").set_value(steps)
    at.number_input(key="t_batch").set_value(1).run()


@pytest.mark.slow
def test_training_from_the_page_runs_in_the_background_to_the_end(app_gallery):
    at = open_app("models")
    assert any("No trained models yet" in message for message in texts(at.info))
    _fill_training(at, "tiny", 2)
    at.button(key="train").click().run()
    assert not at.exception and not at.error
    rerun_until(at, lambda at: any("Trained **tiny**" in m for m in texts(at.success)))
    model = models.load_model("tiny", app_gallery)
    assert (model.styles, model.meta["step"], len(model.meta["loss_history"])) == (("udnie",), 2, 2)
    kept = models.models_dir(app_gallery) / "tiny-photos"
    assert model.meta["train"]["photos"] == str(kept.resolve()) and [p.name for p in kept.iterdir()] == [
        "0000-chicago.jpg"
    ]
    assert "tiny" in texts(at.subheader)
    at.button(key="dismiss_tiny").click().run()
    assert not any("Trained" in m for m in texts(at.success))

    at.button(key="confirm_delete_model_tiny").click().run()
    assert texts(at.success) == ["Model tiny deleted."]
    assert models.list_models(app_gallery) == [] and not kept.exists()


@pytest.mark.slow
def test_a_new_model_can_start_from_a_trained_one_on_the_page(with_demo):
    at = open_app("models")
    at.text_input(key="t_name").input("more")
    at.selectbox(key="t_from").set_value("demo").run()
    assert not at.multiselect  # the styles are the model's own
    learns = "Learns demo's paintings: The Starry Night, The Great Wave off Kanagawa."
    assert any(caption.startswith(learns) for caption in texts(at.caption))
    at.button_group(key="t_photos").set_value("Upload").run()
    at.file_uploader(key="t_photo_upload").upload("c.jpg", small_jpeg(CONTENT_DIR / "chicago.jpg"), "image/jpeg")
    at.run()
    at.select_slider(key="t_size").set_value(32)
    at.number_input(key="t_steps").set_value(1)
    at.number_input(key="t_batch").set_value(1).run()
    # The finish the demo model had: crops of the whole size, a lower step falling to 0.
    at.button_group(key="t_crop").set_value("whole")
    at.number_input(key="t_lr").set_value(3e-4)
    at.slider(key="t_decay").set_value(100).run()
    at.button(key="train").click().run()
    assert not at.exception and not at.error
    rerun_until(at, lambda at: any("Trained **more**" in m for m in texts(at.success)))
    model = models.load_model("more", with_demo)
    assert model.styles == ("starry_night", "great_wave") and model.meta["step"] == 1
    trained = model.meta["train"]["settings"]
    assert (trained["crop_px"], trained["learning_rate"], trained["decay_fraction"]) == (32, 3e-4, 1.0)
    assert model.meta["train"]["started_from"]["model"] == "demo"
    assert any("started from demo (2 steps)" in c for c in texts(at.caption))


@pytest.mark.slow
def test_a_cancelled_training_leaves_a_checkpoint_and_resumes_to_the_end(app_gallery):
    at = open_app("models")
    _fill_training(at, "stopper", 4)
    at.button(key="train").click().run()
    # The sidebar is drawn after the page: it counts the training the click has just started.
    assert ":material/autorenew: 1 training" in texts(at.sidebar.caption)
    at.button(key="cancel_train_stopper").click().run()  # while it is still preparing
    at = rerun_until(at, lambda at: any("stopper" in m for m in texts(at.info)))
    assert any("training stopped at step 1 of 4; Resume continues it" in m for m in texts(at.info))
    assert models.read_checkpoint_meta("stopper", app_gallery)["step"] == 1
    assert models.load_model("stopper", app_gallery).meta["step"] == 1  # a valid model, one step in
    assert any("Training stopped at step 1 of 4" in w for w in texts(at.warning))

    at.button(key="resume_stopper").click().run()
    assert not at.exception and not at.error
    rerun_until(at, lambda at: any("Trained **stopper**" in m for m in texts(at.success)))
    model = models.load_model("stopper", app_gallery)
    assert (model.meta["step"], len(model.meta["loss_history"])) == (4, 4)
