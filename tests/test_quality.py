"""The picture's own measures (jaxstyle/quality.py) on images made for the test: coloured noise is
speckle, grey noise is not, a blur loses detail, and a painting's colours are closer to the painting."""

import numpy as np
import pytest

from jaxstyle import images, quality


def smooth_scene(seed: int = 0, size: int = 64) -> np.ndarray:
    """A photo-like image: smooth colour gradients and a few soft-edged blocks."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    image = np.stack([0.3 + 0.4 * x, 0.4 + 0.3 * y, 0.6 - 0.3 * x * y], axis=-1)
    for _ in range(4):
        top, left = rng.integers(0, size - 16, 2)
        image[top : top + 16, left : left + 16] += rng.uniform(-0.2, 0.2, 3)
    return np.clip(np.stack([quality.gaussian_blur(image[..., c], 1.0) for c in range(3)], -1), 0, 1)


def test_a_flat_image_has_no_high_frequency_energy():
    assert quality.high_frequency_energy(np.full((32, 32), 0.4)) == pytest.approx(0.0, abs=1e-20)
    assert quality.high_frequency_energy(np.indices((32, 32)).sum(0) % 2 * 1.0) > 0.1  # a checkerboard


def test_coloured_noise_is_speckle_and_grey_noise_is_not():
    photo, painting = smooth_scene(0), smooth_scene(1)
    rng = np.random.default_rng(2)
    grey = np.clip(photo + rng.normal(0, 0.05, photo.shape[:2])[..., None], 0, 1)
    coloured = np.clip(photo + rng.normal(0, 0.05, photo.shape), 0, 1)
    assert quality.speckle_ratio(photo, photo, painting) <= 1.0
    assert quality.speckle_ratio(grey, photo, painting) < 1.5  # luma detail, no colour
    assert quality.speckle_ratio(coloured, photo, painting) > 10
    assert quality.detail_ratio(grey, photo) > 2  # the grey noise is luma detail


def test_blurring_loses_luma_detail():
    photo = smooth_scene(0)
    rng = np.random.default_rng(3)
    textured = np.clip(photo + rng.normal(0, 0.03, photo.shape[:2])[..., None], 0, 1)
    blurred = np.stack([quality.gaussian_blur(textured[..., c], 2.0) for c in range(3)], -1)
    assert quality.detail_ratio(textured, textured) == pytest.approx(1.0)
    assert quality.detail_ratio(blurred, textured) < 0.5


def test_the_painting_is_closer_to_itself_than_the_photo_is(shared_data):
    photo = images.to_array(images.fit_long_side(images.open_image(shared_data / "content" / "chicago.jpg"), 64))
    painting = images.to_array(images.fit_long_side(images.open_image(shared_data / "styles" / "the_scream.jpg"), 64))
    assert quality.colour_distance(painting, painting) == pytest.approx(0.0, abs=1e-6)
    assert quality.colour_distance(photo, painting) > 0.01
    assert quality.texture_distance(painting, painting) == 0.0
    assert quality.texture_distance(photo, painting) > 0.1
