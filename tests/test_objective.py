"""The loss as one owner: losses_of scores an image as the optimization's loop reports it, and the
weights weigh the terms the way the settings say."""

import jax.numpy as jnp
import numpy as np

from jaxstyle import objective, transfer, vgg
from jaxstyle.runs import LOSS_NAMES
from jaxstyle.settings import TransferSettings

# The photo (64×48) is already at its working shape (multiples of 16 px, conv5_1's), so the run
# and losses_of start from the very same pixels; the style scale checks the paintings' size too.
SETTINGS = TransferSettings(size_px=64, iterations=1, style_weight=3.0, tv_weight=2.0, style_scale=0.75)


def test_losses_of_scores_an_image_as_the_optimization_reports_it(small_content, small_style, fallback_weights):
    assert objective.working_shape(small_content, 64, SETTINGS.style_layers) == (48, 64)
    run = transfer.stylize(small_content, [small_style], SETTINGS, fallback_weights, report_every=1)
    # The first row of the history is the loss of the starting image: the photo itself.
    reported = run.loss_history[0]
    scored = objective.losses_of(small_content, small_content, [small_style], SETTINGS, fallback_weights)
    assert set(scored) == set(LOSS_NAMES)
    for name in ("total", "style", "tv"):
        # The loop's forward pass runs Winograd's convolutions on CPU, the score the direct ones.
        np.testing.assert_allclose(scored[name], reported[name], rtol=1e-3, err_msg=name)
    assert scored["content"] < 1e-6 and reported["content"] < 1e-4  # the photo is its own content target
    assert scored["total"] > 0


def test_the_total_is_the_settings_weighted_sum_of_the_terms(small_content, small_style, fallback_weights):
    loss = objective.Objective.of(SETTINGS)
    params = vgg.without_winograd(objective.vgg_params(fallback_weights, loss.layers))
    content = objective.as_batch(small_content, (48, 64))
    styles = objective.style_batches(loss, [small_style], 64, 1.0)
    targets = objective.targets(loss, params, content, styles, jnp.ones(1))
    noise = objective.as_batch(small_style, (48, 64))  # anything but the photo: every term is non-zero

    def terms(settings: TransferSettings) -> dict[str, float]:
        _, row = objective.loss_and_terms(loss, params, noise, targets, objective.loss_weights(settings))
        return objective.named_losses(row)

    plain = terms(SETTINGS)
    assert min(plain.values()) > 0
    expected = 1.0 * plain["content"] + 3.0 * plain["style"] + 2.0 * plain["tv"]
    np.testing.assert_allclose(plain["total"], expected, rtol=1e-6)
    # The style layers' weights are shares: scaling them all changes nothing; moving weight to
    # another layer changes the style term only.
    doubled = terms(SETTINGS.replace(style_layer_weights=(2.0,) * 5))
    np.testing.assert_allclose(doubled["style"], plain["style"], rtol=1e-6)
    shifted = terms(SETTINGS.replace(style_layer_weights=(1.0, 0.0, 0.0, 0.0, 0.0)))
    assert shifted["style"] != plain["style"]
    assert (shifted["content"], shifted["tv"]) == (plain["content"], plain["tv"])
