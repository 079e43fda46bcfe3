"""Style transfer runs: losses fall, weights pull the way they should, seeds reproduce, and
every option (L-BFGS, W2, multi-scale, EMA, blends, colour preservation, cancel) works."""

import numpy as np
import pytest

from jaxstyle import images, inits, objective, preserve_colors, transfer
from jaxstyle.errors import Cancelled, SettingsError
from jaxstyle.settings import TransferSettings

TINY = TransferSettings(size_px=48, iterations=12)


def run(content, styles, weights, **changes):
    return transfer.stylize(content, styles, TINY.replace(**changes), weights, report_every=4)


def test_a_short_run_lowers_the_total_loss_and_reports_everything(small_content, small_style, fallback_weights):
    result = run(small_content, [small_style], fallback_weights)
    assert result.image.size == (48, 36)  # long side 48, the photo's 4:3 aspect
    assert result.final_losses["total"] < 0.6 * result.initial_losses["total"]
    assert result.final_losses["style"] < result.initial_losses["style"]
    assert len(result.loss_history) == 12
    assert [h["step"] for h in result.loss_history] == list(range(1, 13))
    assert set(result.loss_history[0]) == {"step", "size_px", "total", "content", "style", "tv"}
    assert result.device == "cpu"
    assert result.weights_source == "random-fallback"
    assert "fallback" in result.weights_description
    assert result.compile_s > 0 and result.run_s > 0


def test_raising_style_weight_lowers_the_final_style_loss(small_content, small_style, fallback_weights):
    # 40 iterations: in the first dozen, Adam's steps are still ramping up and a heavily weighted
    # style loss can first overshoot.
    low = run(small_content, [small_style], fallback_weights, style_weight=1.0, iterations=40)
    high = run(small_content, [small_style], fallback_weights, style_weight=100.0, iterations=40)
    assert high.final_losses["style"] < low.final_losses["style"]


def test_raising_content_weight_lowers_the_final_content_loss(small_content, small_style, fallback_weights):
    low = run(small_content, [small_style], fallback_weights, content_weight=0.1, init="noise")
    high = run(small_content, [small_style], fallback_weights, content_weight=100.0, init="noise")
    assert high.final_losses["content"] < low.final_losses["content"]


def test_same_seed_same_image_and_different_seeds_differ_with_noise_init(small_content, small_style, fallback_weights):
    a = images.to_array(run(small_content, [small_style], fallback_weights, init="noise", seed=1).image)
    b = images.to_array(run(small_content, [small_style], fallback_weights, init="noise", seed=1).image)
    c = images.to_array(run(small_content, [small_style], fallback_weights, init="noise", seed=2).image)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).mean() > 0.01


@pytest.mark.parametrize(
    "changes",
    [
        {"optimizer": "lbfgs", "iterations": 6},
        {"style_loss": "w2"},
        {"pooling": "average"},
        {"ema_decay": 0.9},
        {"init": "style"},
        {"style_scale": 0.5},
        {"pyramid_levels": 1, "warmup_iterations": 0},
        {"optimizer": "lbfgs", "iterations": 6, "pyramid_levels": 1},
    ],
    ids=["lbfgs", "w2", "average-pooling", "ema", "style-init", "style-scale", "pixels", "lbfgs-pixels"],
)
def test_every_option_lowers_the_loss(small_content, small_style, fallback_weights, changes):
    result = run(small_content, [small_style], fallback_weights, **changes)
    assert np.isfinite(result.final_losses["total"])
    assert result.final_losses["total"] < result.initial_losses["total"]


def test_coarse_to_fine_runs_every_scale_and_ends_at_the_target_size(small_content, small_style, fallback_weights):
    result = run(small_content, [small_style], fallback_weights, size_px=64, scale_min_px=32, scale_iterations=4)
    assert result.image.size == (64, 48)
    assert [h["size_px"] for h in result.loss_history] == [32] * 4 + [45] * 4 + [64] * 12


def test_two_styles_blend(small_content, small_style, shared_data, fallback_weights):
    from PIL import Image

    wave = Image.open(shared_data / "styles" / "great_wave.jpg").convert("RGB").resize((64, 44))
    only_starry = run(small_content, [small_style], fallback_weights, init="noise")
    blended = run(small_content, [small_style, wave], fallback_weights, init="noise", style_blend=(0.5, 0.5))
    assert np.abs(images.to_array(only_starry.image) - images.to_array(blended.image)).mean() > 0.005
    with pytest.raises(SettingsError, match="2 weights for 1 style"):
        run(small_content, [small_style], fallback_weights, style_blend=(0.5, 0.5))


def test_luminance_preservation_keeps_the_content_colours(small_content, small_style, fallback_weights):
    result = run(small_content, [small_style], fallback_weights, preserve_color="luminance", init="noise")
    content = images.to_array(small_content.resize(result.image.size))
    out = images.rgb_to_ycbcr(images.to_array(result.image))
    chroma_error = np.abs(out[..., 1:] - images.rgb_to_ycbcr(content)[..., 1:])
    # Equal but for rounding, and for the few pixels whose new luma pushed them out of the RGB gamut.
    assert chroma_error.mean() < 0.005 and np.quantile(chroma_error, 0.99) < 0.02


def colour_stats(image):
    """Each channel's mean and standard deviation."""
    pixels = images.to_array(image).reshape(-1, 3)
    return np.concatenate([pixels.mean(0), pixels.std(0)])


def test_histogram_preservation_keeps_the_content_colours(small_content, small_style, fallback_weights):
    """The style recoloured to the photo's colour statistics: the result's stay much closer to the
    photo's than those of the same run without preservation, which drift towards the painting's."""
    kept = run(small_content, [small_style], fallback_weights, preserve_color="histogram")
    plain = run(small_content, [small_style], fallback_weights, preserve_color="none")
    assert kept.final_losses["total"] < kept.initial_losses["total"]
    content = colour_stats(small_content)
    kept_drift = np.abs(colour_stats(kept.image) - content).sum()
    plain_drift = np.abs(colour_stats(plain.image) - content).sum()
    assert kept_drift < 0.5 * plain_drift, (kept_drift, plain_drift)


def test_progress_reports_previews_and_cancel(small_content, small_style, fallback_weights):
    reports = []
    transfer.stylize(
        small_content, [small_style], TINY, fallback_weights, callback=reports.append, report_every=4, preview_every=8
    )
    assert [r.step for r in reports] == [4, 8, 12]
    assert [r.preview is not None for r in reports] == [False, True, True]
    assert reports[-1].preview.size == (48, 36)
    assert all(r.total_steps == 12 and r.its_per_s > 0 for r in reports)

    with pytest.raises(Cancelled, match="iteration 4 of 12"):
        transfer.stylize(small_content, [small_style], TINY, fallback_weights, callback=lambda r: True, report_every=4)


def test_the_result_moves_towards_the_paintings_colours(small_content, small_style, fallback_weights):
    """What makes it a style transfer even with the offline fallback: the colour statistics of
    the result come closer to the painting's than the photo's were."""
    result = run(small_content, [small_style], fallback_weights, iterations=30, style_weight=100.0)
    style = colour_stats(small_style)
    before = np.abs(colour_stats(small_content) - style).sum()
    after = np.abs(colour_stats(result.image) - style).sum()
    assert after < 0.8 * before


def test_the_pyramid_and_warm_up_reach_a_lower_loss_than_classic_adam(small_content, small_style, fallback_weights):
    """The default recipe against the classic one (pixels, constant step 0.02) in the same number
    of iterations: what makes jaxstyle faster to a given quality (see docs/measurements.md, Optimization speed)."""
    classic = run(
        small_content, [small_style], fallback_weights, iterations=40, pyramid_levels=1, warmup_iterations=0,
        decay_power=0.0, learning_rate=0.02,
    )  # fmt: skip
    default = run(small_content, [small_style], fallback_weights, iterations=40, warmup_iterations=20)
    assert default.final_losses["total"] < classic.final_losses["total"]


def test_a_short_run_is_the_start_of_a_longer_one(small_content, small_style, fallback_weights):
    """The step at an iteration does not depend on the run's length: a preset's 100 iterations are
    the first 100 of a longer run, which is what the live preview shows."""
    short = run(small_content, [small_style], fallback_weights, iterations=16, warmup_iterations=4)
    long = run(small_content, [small_style], fallback_weights, iterations=32, warmup_iterations=4)
    assert [h["total"] for h in short.loss_history] == [h["total"] for h in long.loss_history[:16]]
    assert short.final_losses["total"] == pytest.approx(long.loss_history[16]["total"], rel=1e-6)


@pytest.mark.parametrize("painting", ["starry_night.jpg", "the_scream.jpg"])
def test_the_default_recipe_never_climbs_back_up(shared_data, fallback_weights, painting):
    """At the checkpoints the presets stop at, the loss is never more than 1% above its lowest
    value so far (the default before decay_power climbed 17–240% by 300 iterations, README
    "Quality"), on two pairs at 64 px."""
    from jaxstyle.bench.evaluation import rise

    content = images.open_image(shared_data / "content" / "chicago.jpg")
    style = images.open_image(shared_data / "styles" / painting)
    result = transfer.stylize(content, [style], TransferSettings(size_px=64, iterations=150), fallback_weights)
    totals = [h["total"] for h in result.loss_history] + [result.final_losses["total"]]
    assert totals[-1] < 0.5 * totals[0]
    for n in (100, 150):
        assert rise(totals, n) <= 0.01, (n, totals[n], min(totals[: n + 1]))


# What the start and colour tables are expected to hold, written out here: the settings read their
# names from the tables, so comparing them with the tables would compare the tables with themselves.
EXPECTED_INITS = ("content", "style", "noise")
EXPECTED_PRESERVE_COLORS = ("none", "luminance", "histogram")


def test_the_settings_offer_exactly_the_start_and_colour_tables_entries():
    from jaxstyle import settings

    assert tuple(inits.INITS) == settings.INITS == EXPECTED_INITS
    assert tuple(preserve_colors.PRESERVE_COLORS) == settings.PRESERVE_COLORS == EXPECTED_PRESERVE_COLORS
    for field, names in (("init", EXPECTED_INITS), ("preserve_color", EXPECTED_PRESERVE_COLORS)):
        for name in names:
            assert getattr(TransferSettings(**{field: name}), field) == name
        with pytest.raises(SettingsError, match=f"{field} must be one of {', '.join(names)}, got 'other'"):
            TransferSettings(**{field: "other"})


def test_every_start_is_an_image_of_the_photos_shape(small_content, small_style):
    photo = objective.as_batch(small_content, (48, 64))
    starts = {name: np.asarray(start(photo, small_style, 1)) for name, start in inits.INITS.items()}
    for name, image in starts.items():
        assert image.shape == photo.shape and image.min() >= 0.0 and image.max() <= 1.0, name
    np.testing.assert_array_equal(starts["content"], photo)
    np.testing.assert_array_equal(starts["style"], objective.as_batch(small_style, (48, 64)))
    assert not np.array_equal(starts["noise"], inits.INITS["noise"](photo, small_style, 2))


def test_colour_preservation_leaves_the_inputs_and_the_result_alone_only_when_off(small_content, small_style):
    photo, paintings = small_content.convert("RGB"), [small_style.convert("RGB")]
    result = images.to_array(small_style.resize(small_content.size))

    def pixels(images_: list) -> list:
        return [images.to_array(image).tolist() for image in images_]

    expected = {"none": (True, True), "luminance": (False, False), "histogram": (False, True)}
    for name, entry in preserve_colors.PRESERVE_COLORS.items():
        content, styles = entry.prepare(photo, paintings)
        inputs_kept = pixels([content, *styles]) == pixels([photo, *paintings])
        result_kept = np.array_equal(entry.restore(result, photo), result)
        assert (inputs_kept, result_kept) == expected[name], name
