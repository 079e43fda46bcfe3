"""The optimizers' and style losses' tables: every entry works on a toy problem, the settings, the
CLI and the app offer exactly the table's entries, and Adam's step schedule."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle import cli, optimizers, settings, style_losses, transfer
from jaxstyle.errors import SettingsError
from jaxstyle.pyramid import compose, pyramid

# What the tables are expected to hold, written out here: the settings and the CLI read their
# names from the tables, so comparing them with the tables would compare the tables with themselves.
EXPECTED_OPTIMIZERS = {"adam": "Adam", "lbfgs": "L-BFGS"}
EXPECTED_STYLE_LOSSES = ("gram", "w2")


def test_the_settings_and_the_cli_offer_exactly_the_tables_entries():
    assert {name: entry.label for name, entry in optimizers.OPTIMIZERS.items()} == EXPECTED_OPTIMIZERS
    assert tuple(style_losses.STYLE_LOSSES) == EXPECTED_STYLE_LOSSES
    assert tuple(EXPECTED_OPTIMIZERS) == settings.OPTIMIZERS
    assert settings.STYLE_LOSSES == EXPECTED_STYLE_LOSSES
    for field, names in (("optimizer", tuple(EXPECTED_OPTIMIZERS)), ("style_loss", EXPECTED_STYLE_LOSSES)):
        for name in names:
            assert getattr(settings.TransferSettings(**{field: name}), field) == name
        with pytest.raises(SettingsError, match=f"{field} must be one of {', '.join(names)}, got 'other'"):
            settings.TransferSettings(**{field: "other"})
    generate = cli.build_parser()._subparsers._group_actions[0].choices["generate"]
    choices = {action.dest: action.choices for action in generate._actions}
    assert tuple(choices["optimizer"]) == tuple(EXPECTED_OPTIMIZERS)
    assert tuple(choices["style_loss"]) == EXPECTED_STYLE_LOSSES


@pytest.mark.parametrize("name", list(optimizers.OPTIMIZERS))
def test_every_optimizer_brings_a_toy_image_towards_its_target_and_keeps_it_in_the_box(name):
    """A quadratic loss whose minimum is partly outside the [0, 1] box: the result approaches the
    minimum's projection and stays in the box. An optimizer that projects its iterates keeps its
    own images in the box; one that clips in its loss may leave it with its iterates, and the image
    a run delivers from its state (transfer's result, with or without the moving average) is what
    must stay in it."""
    target = jnp.linspace(-0.5, 1.5, 8 * 8 * 3).reshape(1, 8, 8, 3)
    optimizer = optimizers.OPTIMIZERS[name]
    transformation = optimizer.make(optimizers.StepSize(jnp.float32(0.05), jnp.float32(0), jnp.float32(0)))

    def value_and_terms(levels):
        image = compose(levels)
        if optimizer.clips_in_loss:
            image = image.clip(0.0, 1.0)
        total = jnp.mean((image - target) ** 2)
        return total, jnp.stack([total, total, 0.0 * total, 0.0 * total])

    levels = pyramid(jnp.full((1, 8, 8, 3), 0.5), 2)
    state = transformation.init(levels)
    first = None
    for _ in range(60):
        levels, state, image, terms = jax.jit(optimizer.step, static_argnums=(0, 1))(
            transformation, value_and_terms, levels, state
        )
        first = terms[0] if first is None else first
    assert float(terms[0]) < float(first)
    if not optimizer.clips_in_loss:
        assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    for ema_decay in (0.0, 0.5):
        static = transfer.Static.of(settings.TransferSettings(optimizer=name, pyramid_levels=2, ema_decay=ema_decay))
        # With one step averaged the debiased moving average is the last image itself.
        final = transfer.TransferState(levels, state, ema=(1 - ema_decay) * image, step=jnp.int32(1))
        result = np.asarray(transfer._result_image(static, final, jnp.float32(ema_decay)))
        assert result.min() >= 0.0 and result.max() <= 1.0, (ema_decay, result.min(), result.max())
        assert np.abs(result - np.clip(target, 0, 1)).mean() < 0.05


@pytest.mark.parametrize("name", list(style_losses.STYLE_LOSSES))
def test_every_style_loss_is_zero_on_its_own_target_and_positive_elsewhere(name):
    loss = style_losses.STYLE_LOSSES[name]
    features = jnp.asarray(np.random.default_rng(0).uniform(size=(1, 6, 6, 4)), jnp.float32)
    other = features[:, ::-1] ** 2
    target = loss.target(loss.statistics(features))
    assert float(loss.loss(features, target)) == pytest.approx(0.0, abs=1e-3)
    assert float(loss.loss(other, target)) > 0.01


def test_the_step_ramps_up_over_the_warm_up_then_decays():
    schedule = optimizers.step_schedule(optimizers.StepSize(np.float32(0.05), np.float32(10), np.float32(0.5)))
    steps = [float(schedule(count)) for count in (0, 5, 10, 40, 160)]
    ramp = [0.05 * optimizers.WARMUP_START, 0.05 * (1 + optimizers.WARMUP_START) / 2, 0.05]
    assert steps == pytest.approx([*ramp, 0.05 / 2, 0.05 / 4])  # (10 / 40) ** 0.5, (10 / 160) ** 0.5
    constant = optimizers.step_schedule(optimizers.StepSize(np.float32(0.05), np.float32(10), np.float32(0)))
    assert [float(constant(count)) for count in (10, 1000)] == pytest.approx([0.05, 0.05])
    no_warm_up = optimizers.step_schedule(optimizers.StepSize(np.float32(0.05), np.float32(0), np.float32(0)))
    assert float(no_warm_up(0)) == pytest.approx(0.05)
