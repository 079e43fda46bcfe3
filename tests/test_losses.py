"""Each loss against a value worked out by hand on a tiny array, and its gradient is finite."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle import losses

# Two positions, two channels: F = [[1, 2], [3, 4]].
F = jnp.array([[[[1.0, 2.0], [3.0, 4.0]]]])  # (1, 1, 2, 2) NHWC


def test_gram_is_features_transposed_times_features_over_positions():
    # FᵀF = [[1·1+3·3, 1·2+3·4], [2·1+4·3, 2·2+4·4]] = [[10, 14], [14, 20]]; over 2 positions.
    np.testing.assert_allclose(losses.gram(F), [[5.0, 7.0], [7.0, 10.0]])


def test_content_loss_is_relative_mean_squared_error():
    target = jnp.zeros_like(F).at[..., 0].set(1.0)  # [[1, 0], [1, 0]]
    # diffs: [0, 2, 2, 4] → mean square 24/4 = 6; target mean square 2/4 = 0.5 → 12.
    assert float(losses.content_loss(F, target)) == pytest.approx(12.0, rel=1e-6)
    assert float(losses.content_loss(F, F)) == 0.0


def test_style_loss_is_relative_gram_error():
    target_gram = jnp.array([[5.0, 7.0], [7.0, 9.0]])  # differs from gram(F) by 1 in one entry
    # mean square of the difference 1/4; mean square of the target (25+49+49+81)/4 = 51 → 1/204.
    assert float(losses.style_loss(F, target_gram)) == pytest.approx(1 / 204, rel=1e-5)
    assert float(losses.style_loss(F, losses.gram(F))) == 0.0


def test_tv_loss_of_a_constant_image_is_zero_and_of_a_ramp_is_known():
    assert float(losses.tv_loss(jnp.full((1, 4, 4, 3), 0.3))) == 0.0
    ramp = jnp.tile(jnp.arange(4.0)[None, None, :, None], (1, 3, 1, 1))  # +1 across, 0 down
    assert float(losses.tv_loss(ramp)) == pytest.approx(1.0)


def test_w2_loss_is_zero_for_the_same_distribution_and_known_for_a_shift():
    rng = np.random.default_rng(0)
    feats = jnp.asarray(rng.normal(size=(1, 8, 8, 3)), jnp.float32)
    mean, cov = losses.gaussian_fit(feats)
    cov_sqrt = losses.sqrtm_psd(cov)
    assert float(losses.w2_style_loss(feats, mean, cov_sqrt)) == pytest.approx(0.0, abs=1e-3)
    # Shifting every feature by d moves only the mean: W₂² = |d|², relative to |μ|² + tr Σ.
    shift = jnp.array([1.0, -2.0, 0.5])
    expected = float(jnp.sum(shift**2) / (jnp.sum(mean**2) + jnp.trace(cov)))
    assert float(losses.w2_style_loss(feats + shift, mean, cov_sqrt)) == pytest.approx(expected, rel=1e-2)


def test_sqrtm_psd_squares_back():
    a = jnp.array([[4.0, 1.0], [1.0, 3.0]])
    root = losses.sqrtm_psd(a)
    np.testing.assert_allclose(root @ root, a, rtol=1e-5)


def test_sqrtm_psd_agrees_with_the_numpy_symmetric_sqrt():
    from jaxstyle.images import symmetric_sqrt

    b = np.random.default_rng(2).normal(size=(4, 4))
    a = b @ b.T
    np.testing.assert_allclose(losses.sqrtm_psd(jnp.asarray(a, jnp.float32)), symmetric_sqrt(a), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "loss",
    [
        lambda x: losses.content_loss(x, jnp.ones_like(x)),
        lambda x: losses.style_loss(x, jnp.eye(3)),
        lambda x: losses.w2_style_loss(x, jnp.zeros(3), jnp.eye(3)),
        losses.tv_loss,
    ],
    ids=["content", "style", "w2", "tv"],
)
def test_gradients_are_finite(loss):
    x = jnp.asarray(np.random.default_rng(1).uniform(size=(1, 6, 6, 3)), jnp.float32)
    grad = jax.grad(loss)(x)
    assert bool(jnp.all(jnp.isfinite(grad)))
    assert float(jnp.abs(grad).sum()) > 0
