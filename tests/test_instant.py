"""Instant styles: a trained network paints a photo in one pass (jaxstyle.instant).

Tiny models (32–48 px crops, a few steps) on real photos and paintings from ../shared/data.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from jaxstyle import images, runs
from jaxstyle.errors import Cancelled
from jaxstyle.instant import background, models, network, train
from jaxstyle.instant.paint import Painter
from jaxstyle.runners import InProcessBackend
from tests.instant_support import SMALL, leaves_equal


def _stopped_at_step_2(name, styles, photo_dir, settings, weights, gallery_path, **options) -> None:
    """Train ``name`` and stop it after step 2, as a user's cancel does (a checkpoint is left)."""
    with pytest.raises(Cancelled):
        train.train(
            name, styles, photo_dir, settings, weights, gallery_path=gallery_path,
            callback=lambda progress: progress.step >= 2, report_every=2, **options,
        )  # fmt: skip


@pytest.mark.parametrize(("kernel", "stride"), [(9, 1), (3, 1), (3, 2)])
def test_the_network_convolution_is_a_reflection_padded_one(kernel, stride):
    """The padded-then-cropped convolution (XLA:CPU's fast path) is exactly the plain one."""
    import flax.linen as nn

    class One(nn.Module):
        @nn.compact
        def __call__(self, x):
            return network.reflect_conv(x, 5, kernel, stride)

    photos = np.random.default_rng(0).random((2, 20, 28, 3), dtype=np.float32)
    params = One().init(jax.random.PRNGKey(0), photos)
    pad = kernel // 2
    padded = np.pad(photos, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    conv = params["params"]["Conv_0"]
    expected = (
        jax.lax.conv_general_dilated(
            padded, conv["kernel"], (stride, stride), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        + conv["bias"]
    )
    got = One().apply(params, photos)
    assert got.shape == (2, 20 // stride, 28 // stride, 5)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_training_lowers_the_optimization_loss_on_a_fixed_batch(photo_dir, paintings, fallback_weights, tmp_path):
    """The loss a model's images have (the optimization's own loss) falls as it trains."""
    settings = train.TrainSettings(size_px=32, steps=16, batch=2, checkpoint_every=16)
    styles = [("starry_night", paintings["starry_night"])]
    photos, _ = train.load_photos(photo_dir, settings.size_px)
    batch = train.batch_at(photos, 10_000, settings)  # a batch training never sees (steps < 16)
    model = train.train("falls", styles, photo_dir, settings, fallback_weights, gallery_path=tmp_path / "g.db")

    def loss_of(net, norms) -> float:
        from jaxstyle import objective, vgg

        params = vgg.without_winograd(objective.vgg_params(fallback_weights, train._objective().layers))
        targets = train._style_targets(params, [paintings["starry_night"]], settings.size_px)
        style = jax.tree.map(lambda x: x[0], targets)
        trainable = {"net": net, "norms": norms}
        return float(train.batch_loss(trainable, params, batch, style, np.int32(0))[0])

    before = loss_of(network.init_net(settings.seed), network.init_norms(1))
    after = loss_of(model.net, model.norms)
    assert after < 0.8 * before, (before, after)
    assert len(model.meta["loss_history"]) == 16 and model.meta["step"] == 16


def test_a_model_records_its_styles_training_and_weights(trained):
    model, gallery_path = trained
    assert model.styles == ("starry_night", "great_wave")
    assert model.meta["steps"] == SMALL.steps and len(model.meta["loss_history"]) == SMALL.steps
    assert model.meta["train"]["settings"]["size_px"] == 32 and model.meta["train"]["photo_count"] == 2
    assert model.meta["train"]["weights_source"] == "random-fallback" and model.meta["train_s"] > 0
    assert model.style_image("great_wave").size[0] <= train.STYLE_IMAGE_PX
    assert [m.name for m in models.list_models(gallery_path)] == ["two"]
    assert models.model_path("two", gallery_path).parent == gallery_path.parent / "gallery-models"


def test_training_crops_default_to_half_the_scale_and_are_checked(photo_dir):
    settings = train.TrainSettings(size_px=64, batch=3)
    assert settings.crop_px == 32 and train.TrainSettings().crop_px == 128
    photos, _ = train.load_photos(photo_dir, settings.size_px)
    assert train.batch_at(photos, 0, settings).shape == (3, 32, 32, 3)
    assert train.batch_at(photos, 0, train.TrainSettings(size_px=64, crop_px=64)).shape == (4, 64, 64, 3)
    for bad in (30, 28, 96, True):  # not a multiple of 4, under 32, over the scale, not a number
        with pytest.raises(models.ModelError, match="crop_px"):
            train.TrainSettings(size_px=64, crop_px=bad)


@pytest.mark.slow
def test_a_stopped_training_resumes_to_the_same_params_as_an_uninterrupted_one(
    trained, photo_dir, paintings, fallback_weights, tmp_path
):
    model, _ = trained
    styles = [(name, paintings[name]) for name in ("starry_night", "great_wave")]
    gallery_path = tmp_path / "gallery.db"
    _stopped_at_step_2("two", styles, photo_dir, SMALL, fallback_weights, gallery_path)
    halfway = models.load_model("two", gallery_path)
    assert halfway.meta["step"] == 2
    # Where a training stopped is read without decoding the checkpoint's arrays, and it is the record.
    assert models.read_checkpoint_meta("two", gallery_path) == halfway.meta
    # A checkpoint written before crop_px, decay_fraction and ema_decay existed (it cropped at
    # size_px, as SMALL does, with a constant step and no average) resumes too.
    checkpoint = models.checkpoint_path("two", gallery_path)
    document = models.decode(checkpoint.read_bytes(), "checkpoint")
    for key in ("crop_px", "decay_fraction", "ema_decay"):
        del document["meta"]["train"]["settings"][key]
    del document["average"]
    models.save_model(checkpoint, document)
    # The Models page resumes it with the settings it was made with, filled in as it trained.
    assert background.resume_inputs("two", gallery_path)[2] == SMALL
    resumed = train.train("two", styles, photo_dir, SMALL, fallback_weights, gallery_path=gallery_path, resume=True)
    assert resumed.meta["step"] == SMALL.steps
    assert leaves_equal(resumed.net, model.net) and leaves_equal(resumed.norms, model.norms)
    assert resumed.meta["loss_history"] == model.meta["loss_history"]


class RecordingBackend(InProcessBackend):
    """The in-process backend, noting each call of the protocol's ``train``: its model and options."""

    def __init__(self, weights) -> None:
        super().__init__(lambda: weights)
        self.trained: list[tuple[str, dict]] = []

    def train(self, name, styles, photos, settings, report, **options):
        self.trained.append((name, options))
        return super().train(name, styles, photos, settings, report, **options)


@pytest.mark.slow
def test_a_background_training_goes_through_its_backend_and_reports_the_one_progress_type(
    photo_dir, paintings, fallback_weights, tmp_path
):
    """The app's trainings (Trainings) train through Backend.train (test_ray: the Ray backend's, by
    the same call), stop at a cancel and resume; in this process they make the very model
    train.train makes."""
    backend = RecordingBackend(fallback_weights)
    gallery_path = tmp_path / "gallery.db"
    trainings = background.Trainings(gallery_path, backend=backend)
    styles = [(name, paintings[name]) for name in ("starry_night", "great_wave")]
    job = trainings.start("two", styles, photo_dir, SMALL)
    job.cancel()  # stops after the first step, with a checkpoint
    assert job.join(300)
    stopped = job.snapshot()
    assert isinstance(stopped, runs.Progress) and stopped.finished
    assert (stopped.status, stopped.step, stopped.total_steps) == (runs.CANCELLED, 1, SMALL.steps)
    assert "Resume continues it" in stopped.error

    job = trainings.resume("two")
    assert job.join(300)
    done = job.snapshot()
    assert (done.status, done.step, done.start_step, done.error) == (runs.DONE, SMALL.steps, 1, None)
    assert [point["step"] for point in done.history] == list(range(1, SMALL.steps + 1))
    assert done.losses == {"total": done.history[-1]["total"]} and done.fraction == 1.0
    options = {"gallery_path": gallery_path, "start_from": None, "report_every": 1}
    assert backend.trained == [("two", {**options, "resume": False}), ("two", {**options, "resume": True})]
    # What the trainings did before backends: train.train here, reporting every step, the same cancel.
    direct = tmp_path / "direct" / "gallery.db"
    direct.parent.mkdir()
    with pytest.raises(Cancelled):
        train.train("two", styles, photo_dir, SMALL, fallback_weights, gallery_path=direct,
                    callback=lambda progress: True, report_every=1)  # fmt: skip
    saved_styles, photos, settings, _ = background.resume_inputs("two", direct)  # as Trainings.resume reads them
    expected = train.train("two", saved_styles, photos, settings, fallback_weights, gallery_path=direct, resume=True,
                           report_every=1)  # fmt: skip
    made = models.load_model("two", gallery_path)
    assert leaves_equal(made.net, expected.net) and leaves_equal(made.norms, expected.norms)
    assert made.meta["loss_history"] == expected.meta["loss_history"]


@pytest.mark.slow
def test_adams_step_can_cool_to_zero_over_the_last_steps_and_a_resume_follows_it(
    trained, photo_dir, paintings, fallback_weights, tmp_path
):
    """--decay: the step is constant, then falls linearly over the last fraction of the steps. The
    schedule is a function of the step, so a stopped training resumes onto the same params."""
    schedule = train.learning_rate_schedule(train.TrainSettings(steps=10, decay_fraction=0.3))
    rates = [float(schedule(step)) for step in range(10)]
    assert rates[:8] == pytest.approx([1e-3] * 8) and rates[8:] == pytest.approx([2e-3 / 3, 1e-3 / 3])
    constant = train.learning_rate_schedule(train.TrainSettings(steps=10))
    assert [float(constant(step)) for step in range(10)] == pytest.approx([1e-3] * 10)
    for bad in (-0.1, 1.5, "0.3", True):
        with pytest.raises(models.ModelError, match="decay_fraction"):
            train.TrainSettings(decay_fraction=bad)

    model, _ = trained  # SMALL: 4 steps at a constant step
    styles = [(name, paintings[name]) for name in ("starry_night", "great_wave")]
    cooling = dataclasses.replace(SMALL, decay_fraction=0.5)  # steps 2 and 3 at 1 and 1/2 of the step
    cooled = train.train("cooled", styles, photo_dir, cooling, fallback_weights, gallery_path=tmp_path / "a.db")
    assert cooled.meta["train"]["settings"]["decay_fraction"] == 0.5
    # The same run as the constant one until the step falls (the loss of step 3 is before its update)…
    assert cooled.meta["loss_history"] == model.meta["loss_history"]
    # …and other params after it.
    assert not leaves_equal(cooled.norms, model.norms)

    gallery_path = tmp_path / "b.db"
    _stopped_at_step_2("cooled", styles, photo_dir, cooling, fallback_weights, gallery_path)
    with pytest.raises(models.ModelError, match="other styles or settings"):
        train.train("cooled", styles, photo_dir, SMALL, fallback_weights, gallery_path=gallery_path, resume=True)
    resumed = train.train(
        "cooled", styles, photo_dir, cooling, fallback_weights, gallery_path=gallery_path, resume=True
    )
    assert leaves_equal(resumed.net, cooled.net) and leaves_equal(resumed.norms, cooled.norms)


@pytest.mark.slow
def test_a_model_paints_with_the_moving_average_of_its_params_and_a_resume_keeps_it(
    trained, photo_dir, paintings, fallback_weights, tmp_path
):
    """ema_decay: the model file holds the exponential moving average of the trained params, which
    the checkpoint keeps beside them, so a resumed training ends on the same average."""
    assert float(train.ema_rate(0.999, 0)) == pytest.approx(0.1)
    assert float(train.ema_rate(0.999, 10**6)) == pytest.approx(0.999)
    for bad in (-0.1, 1.0, "0.9", True):
        with pytest.raises(models.ModelError, match="ema_decay"):
            train.TrainSettings(ema_decay=bad)

    styles = [(name, paintings[name]) for name in ("starry_night", "great_wave")]
    averaging = dataclasses.replace(SMALL, ema_decay=0.9, checkpoint_every=1)
    gallery_path = tmp_path / "a.db"
    trained_params = []  # the checkpoint's params after each step

    def keep(progress: train.TrainProgress) -> None:
        saved = models.decode(models.checkpoint_path("avg", gallery_path).read_bytes(), "checkpoint")
        trained_params.append({"net": saved["net"], "norms": saved["norms"]})

    model = train.train(
        "avg", styles, photo_dir, averaging, fallback_weights, gallery_path=gallery_path,
        callback=keep, report_every=1,
    )  # fmt: skip
    # The average does not steer training: the params are the constant run's, bit for bit…
    unaveraged, _ = trained
    assert leaves_equal(trained_params[-1], {"net": unaveraged.net, "norms": unaveraged.norms})
    # …and the model is their running average from the initial params, not the last of them.
    mean = {"net": network.init_net(SMALL.seed), "norms": network.init_norms(2)}
    for step, params in enumerate(trained_params):
        rate = float(train.ema_rate(0.9, step))
        mean = jax.tree.map(lambda m, p: m + (1.0 - rate) * (p - m), mean, params)  # noqa: B023
    for got, want in zip(jax.tree.leaves((model.net, model.norms)), jax.tree.leaves(mean), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert not leaves_equal({"net": model.net, "norms": model.norms}, trained_params[-1])

    stopped = tmp_path / "b.db"
    _stopped_at_step_2("avg", styles, photo_dir, averaging, fallback_weights, stopped)
    resumed = train.train("avg", styles, photo_dir, averaging, fallback_weights, gallery_path=stopped, resume=True)
    assert leaves_equal(resumed.net, model.net) and leaves_equal(resumed.norms, model.norms)


@pytest.mark.slow
def test_a_new_model_can_start_from_a_trained_ones_params(trained, photo_dir, paintings, fallback_weights, tmp_path):
    """``start_from``: a model trained elsewhere (its checkpoint left behind) trains on, as a new model."""
    model, _ = trained
    # Shifted far from where a fresh network starts, so a start from random params can't pass.
    base = dataclasses.replace(model, name="base", norms=jax.tree.map(lambda x: x + 0.5, model.norms))
    styles = [(name, paintings[name]) for name in ("starry_night", "great_wave")]
    one_step = dataclasses.replace(SMALL, steps=1, learning_rate=1e-3)
    gallery_path = tmp_path / "gallery.db"
    started = train.train(
        "next", styles, photo_dir, one_step, fallback_weights, gallery_path=gallery_path, start_from=base
    )
    # Adam's first step moves each param by at most the learning rate.
    for new, old in zip(jax.tree.leaves(started.norms), jax.tree.leaves(base.norms), strict=True):
        assert np.abs(new - old).max() <= 1e-3 * 1.0001
    for new, old in zip(jax.tree.leaves(started.net), jax.tree.leaves(base.net), strict=True):
        assert np.abs(new - old).max() <= 1e-3 * 1.0001
    assert not leaves_equal(started.norms, base.norms)
    origin = started.meta["train"]["started_from"]
    assert origin["model"] == "base" and origin["step"] == SMALL.steps
    assert origin["train"]["settings"] == model.meta["train"]["settings"]
    assert started.meta["step"] == 1 and len(started.meta["loss_history"]) == 1
    # A stopped one resumes from its checkpoint and still names where it started.
    _stopped_at_step_2("stopped", styles, photo_dir, SMALL, fallback_weights, gallery_path, start_from=base)
    resumed = train.train("stopped", styles, photo_dir, SMALL, fallback_weights, gallery_path=gallery_path, resume=True)
    assert resumed.meta["step"] == SMALL.steps and resumed.meta["train"]["started_from"]["model"] == "base"
    # Its styles must be the model's own, in order.
    for wrong in (styles[::-1], styles[:1]):
        with pytest.raises(models.ModelError, match="a model started from it trains those styles"):
            train.train("other", wrong, photo_dir, SMALL, fallback_weights, gallery_path=gallery_path, start_from=base)
    with pytest.raises(models.ModelError, match="not both"):
        train.train(
            "base", styles[:1], photo_dir, SMALL, fallback_weights, gallery_path=gallery_path,
            add_to=base, start_from=base,
        )  # fmt: skip
    assert not models.model_path("other", gallery_path).exists()


def test_blending_two_styles_is_interpolating_their_normalization_params(trained, shared_data):
    model, _ = trained
    photo = images.open_image(shared_data / "content" / "tubingen.jpg")
    painter = Painter(model)
    blended = painter.paint(photo, ["starry_night", "great_wave"], [0.7, 0.3], size_px=48)
    norms = jax.tree.map(lambda rows: 0.7 * rows[0] + 0.3 * rows[1], model.norms)
    batch = images.to_array(images.fit_long_side(photo, 48))[None]
    padded = np.pad(batch, ((0, 0), (0, -batch.shape[1] % 4), (0, -batch.shape[2] % 4), (0, 0)), mode="reflect")
    direct = np.asarray(network.apply(model.net, padded, norms))[0, : batch.shape[1], : batch.shape[2]]
    np.testing.assert_allclose(images.to_array(blended.image), direct, atol=1 / 255 + 1e-6)
    # …and each style alone is its one-hot blend; the two differ.
    alone = [painter.paint(photo, [s], size_px=48) for s in model.styles]
    assert np.abs(images.to_array(alone[0].image) - images.to_array(alone[1].image)).mean() > 1e-3
    # Same shape, other blends: the blend is an argument, not a recompile.
    assert blended.compile_s > 0.0
    assert [result.compile_s for result in alone] == [0.0, 0.0]


@pytest.mark.slow
def test_adding_a_style_trains_only_its_own_params(
    trained, photo_dir, paintings, fallback_weights, shared_data, tmp_path
):
    model, trained_gallery = trained
    gallery_path = tmp_path / "gallery.db"  # a copy of the model, so the other tests keep theirs
    models.import_model(models.export_model("two", tmp_path, trained_gallery), gallery_path)
    before = models.load_model("two", gallery_path)
    added = train.train(
        "two", [("udnie", paintings["udnie"])], photo_dir,
        train.TrainSettings(size_px=32, steps=2, batch=1, checkpoint_every=2),
        fallback_weights, gallery_path=gallery_path, add_to=before,
    )  # fmt: skip
    assert added.styles == ("starry_night", "great_wave", "udnie")
    assert leaves_equal(added.net, before.net)
    for layer, rows in before.norms.items():
        for what in ("scale", "shift"):
            np.testing.assert_array_equal(added.norms[layer][what][:2], rows[what])
    photo = images.open_image(shared_data / "content" / "chicago.jpg")
    for style in before.styles:
        old = Painter(before).paint(photo, [style], size_px=48).image
        new = Painter(added).paint(photo, [style], size_px=48).image
        assert np.array_equal(np.asarray(old), np.asarray(new)), style
    assert added.meta["train"]["added"][-1] == {"style": "udnie", "steps": 2}
    assert models.load_model("two", trained_gallery).styles == before.styles
    with pytest.raises(models.ModelError, match="holds the style"):
        train.train("two", [("udnie", paintings["udnie"])], photo_dir, SMALL, fallback_weights,
                    gallery_path=gallery_path, add_to=added)  # fmt: skip
