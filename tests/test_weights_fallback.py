"""The offline fallback VGG19 (what runs without the pretrained file): deterministic and cached,
smooth random filters rescaled one factor per layer, blind to pixel-level stripes, its first layer
seeing colour only through blobs and edges, activations near one on a photo, and always labelled as
not the pretrained model. The pretrained file's loader, cache, download and load order are
test_weights.py.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from jaxstyle import vgg, weights
from tests.support import photo


@pytest.fixture(scope="module")
def fallback(tmp_path_factory):
    """The seed-0 fallback, computed once in a cache dir of its own: (params, cached npz)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JAXSTYLE_CACHE_DIR", str(tmp_path_factory.mktemp("fallback-cache")))
        params = weights.random_fallback_params(0)
        return params, weights.fallback_npz_path(0)


def test_fallback_is_deterministic_and_cached(fallback):
    computed, _ = fallback
    again = weights.random_fallback_params(0)  # this test's own, empty cache: computed afresh
    cached = weights.random_fallback_params(0)  # now read from the cache
    assert weights.fallback_npz_path(0).is_file()
    for params in (again, cached):
        for name in vgg.LAYER_NAMES:
            for what in ("kernel", "bias"):
                np.testing.assert_array_equal(params["params"][name][what], computed["params"][name][what])


def test_fallback_rescales_the_smooth_random_network_one_factor_per_layer(fallback):
    computed, _ = fallback
    raw = weights.smooth_random_params(0)["params"]
    for name in vgg.LAYER_NAMES:
        kernel, raw_kernel = computed["params"][name]["kernel"], raw[name]["kernel"]
        factor = float((kernel * raw_kernel).sum() / (raw_kernel * raw_kernel).sum())
        assert factor > 0, name
        np.testing.assert_allclose(kernel, factor * raw_kernel, rtol=1e-5, atol=1e-7, err_msg=name)


def test_fallback_filters_ignore_pixel_level_stripes(fallback):
    """Every filter of every layer is smooth: a pattern alternating every pixel, across or down,
    gives the same response as its flat mean (so optimizing against the network does not pay off
    in pixel noise). Checked on conv1_1 directly and on each layer's kernel as a 3×3 filter."""
    computed, _ = fallback
    stripes = np.zeros((1, 24, 24, 3), np.float32)
    stripes[:, :, ::2] = 1.0
    flat = np.full_like(stripes, 0.5)
    for image in (stripes, stripes.transpose(0, 2, 1, 3)):
        responses = [vgg.features(computed, x, ["conv1_1"])["conv1_1"][0, 2:-2, 2:-2] for x in (image, flat)]
        np.testing.assert_allclose(*responses, atol=1e-4)
    alternating = np.array([1.0, -1.0, 1.0])
    for name in vgg.LAYER_NAMES:
        kernel = computed["params"][name]["kernel"]
        across = np.einsum("hwio,w->hio", kernel, alternating)
        down = np.einsum("hwio,h->wio", kernel, alternating)
        scale = np.abs(kernel).max()
        assert np.abs(across).max() < 1e-5 * scale and np.abs(down).max() < 1e-5 * scale, name


def test_fallback_first_layer_sees_colour_only_through_blobs_and_edges(fallback):
    """conv1_1: luma filters weigh R, G and B alike; colour filters' weights sum to 0 over R, G, B."""
    computed, _ = fallback
    kernel = computed["params"]["conv1_1"]["kernel"]  # (3, 3, 3 BGR, 64)
    per_pixel = np.abs(kernel).sum(axis=(0, 1))
    luma = np.isclose(kernel[..., 0, :], kernel[..., 1, :], atol=1e-7).all(axis=(0, 1)) & np.isclose(
        kernel[..., 1, :], kernel[..., 2, :], atol=1e-7
    ).all(axis=(0, 1))
    opponent = np.abs(kernel.sum(axis=2)).max(axis=(0, 1)) < 1e-6 * per_pixel.max()
    assert luma.sum() == sum(n for kind, n in weights.FIRST_LAYER_FILTERS.items() if kind.startswith("luma"))
    assert opponent.sum() == sum(n for kind, n in weights.FIRST_LAYER_FILTERS.items() if kind.startswith("colour"))


def test_fallback_mean_activation_is_near_one_on_a_photo(fallback, content_path):
    computed, _ = fallback
    means = {
        name: float(a.mean())
        for name, a in vgg.features(computed, photo(content_path, (128, 96)), vgg.LAYER_NAMES).items()
    }
    print(f"fallback mean activations on {content_path.name} at 128×96:", {k: round(v, 2) for k, v in means.items()})
    assert all(0.3 < mean < 3.0 for mean in means.values()), means


def test_fallback_is_labeled_not_pretrained(fallback):
    _, npz = fallback
    weights.fallback_npz_path(0).parent.mkdir(parents=True)
    shutil.copyfile(npz, weights.fallback_npz_path(0))  # reuse the module's computation
    loaded = weights.load_weights()
    assert (loaded.pretrained, loaded.source, loaded.checksum) == (False, "random-fallback", None)
    assert "not the pretrained model" in loaded.description and "random" in loaded.description
    # The fallback npz carries its label with it, even when named explicitly.
    explicit = weights.load_weights(npz)
    assert not explicit.pretrained and "not the pretrained model" in explicit.description
    assert weights.weights_status(npz).pretrained is False
