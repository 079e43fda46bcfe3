"""The image as pyramid levels: they compose back to the image, a coarse level moves a region,
and the projection into the box goes through the finest level."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle import objective, pyramid


@pytest.mark.parametrize("n_levels", [1, 2, 4, 6])
def test_a_pyramid_composes_back_to_its_image(small_content, n_levels):
    image = objective.as_batch(small_content, (48, 64))
    levels = pyramid.pyramid(image, n_levels)
    assert len(levels) == n_levels
    assert [level.shape[1:3] for level in levels] == [(48 >> k, 64 >> k) for k in range(n_levels)]
    np.testing.assert_array_equal(pyramid.compose(levels), image)


def test_a_coarse_level_moves_a_whole_region_smoothly():
    levels = pyramid.pyramid(np.zeros((1, 32, 32, 3), np.float32), 3)
    bumped = (levels[0], levels[1], levels[2].at[0, 3, 3, 0].set(1.0))  # one coarse cell, 1/4 of the side
    image = np.asarray(pyramid.compose(bumped))[0, ..., 0]
    assert image.max() == pytest.approx(1.0, abs=0.3) and (image > 0.1).sum() > 16  # a region, not a pixel
    assert np.abs(np.diff(image, axis=0)).max() < 0.3  # bilinear: no hard edges


def test_the_box_projection_moves_each_pixel_by_its_own_overshoot():
    levels = pyramid.pyramid(jnp.full((1, 8, 8, 3), 0.5, jnp.float32), 2)
    levels = (levels[0].at[0, 0, 0, 0].set(1.4), levels[1] + 0.2)  # one pixel over the top; all raised by 0.2
    projected, image = pyramid.project_into_box(levels)
    image = np.asarray(image)
    assert image.min() >= 0.0 and image.max() <= 1.0
    assert image[0, 0, 0, 0] == pytest.approx(1.0) and image[0, 4, 4, 0] == pytest.approx(0.7)
    np.testing.assert_allclose(pyramid.compose(projected), image, atol=1e-6)
    np.testing.assert_array_equal(projected[1], levels[1])  # the coarse level is left as it was
