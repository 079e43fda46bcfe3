"""The offline fallback: a VGG19 with smooth random filters, each layer rescaled to a mean
activation of 1 on photo-like images, for when the pretrained weights can't be had.

It still transfers style recognizably, but everything made with it is labeled
(:func:`fallback_description`). Computed once per seed and cached as an ``.npz``; the numbers
depend only on the seed and :data:`FALLBACK_VERSION`, so every machine computes the same params.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from jaxstyle import vgg
from jaxstyle.errors import WeightsError
from jaxstyle.weights import cache
from jaxstyle.weights.keras import Params

log = logging.getLogger(__name__)

# Bump when the fallback's recipe changes (init, calibration images), so old caches are not reused.
FALLBACK_VERSION = 2


def natural_like_images(count: int = 4, size_px: int = 128, seed: int = 0) -> np.ndarray:
    """Deterministic stand-ins for photos, (count, size_px, size_px, 3) RGB in [0, 1].

    Natural images have an amplitude spectrum falling as 1/f and strongly correlated colour
    channels; these are random-phase fields with that spectrum, a shared luminance plus weaker
    colour differences. Generated rather than shipped, so every install calibrates identically.
    """
    rng = np.random.default_rng(seed)
    freq = np.fft.fftfreq(size_px)
    radius = np.hypot(freq[:, None], freq[None, :])
    amplitude = np.divide(1.0, radius, out=np.zeros_like(radius), where=radius > 0)
    images = []
    for _ in range(count):
        fields = []
        for _ in range(3):
            phase = rng.standard_normal((size_px, size_px)) + 1j * rng.standard_normal((size_px, size_px))
            fields.append(np.real(np.fft.ifft2(amplitude * phase)))
        lum, c1, c2 = (field / field.std() for field in fields)
        rgb = np.stack([lum + 0.3 * c1, lum - 0.1 * c1 + 0.1 * c2, lum - 0.3 * c2], axis=-1)
        # Mean and contrast of typical photos (mean ≈ 0.45, std ≈ 0.22 on the [0, 1] scale).
        rgb = (rgb - rgb.mean()) / rgb.std() * 0.22 + 0.45
        images.append(np.clip(rgb, 0.0, 1.0))
    return np.stack(images).astype(np.float32)


def _rescale_to_unit_mean(params: Params, images01: np.ndarray) -> Params:
    """Scale each layer's kernel and bias by one factor so its mean activation on ``images01`` is 1.

    Layers are done in order, each measured on the already rescaled layers before it. A positive
    factor keeps the ReLU's on/off pattern (relu(c·z) = c·relu(z)), so this only evens out the
    scales, as Gatys et al. did for the pretrained VGG. Max pooling, as trained.
    """
    import flax.linen as nn
    import jax.numpy as jnp

    x = vgg.preprocess(jnp.asarray(images01))
    scaled: dict[str, dict[str, np.ndarray]] = {}
    for k, name in enumerate(vgg.LAYER_NAMES):
        if k > 0 and name.endswith("_1"):
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        layer = params["params"][name]
        out = vgg.Conv3x3(vgg.LAYER_CHANNELS[name]).apply({"params": layer}, x)
        mean = float(out.mean())
        if not mean > 0:
            raise WeightsError(f"random VGG19 layer {name} is dead on the calibration images (mean activation 0)")
        factor = 1.0 / mean
        scaled[name] = {what: np.asarray(value, np.float32) * np.float32(factor) for what, value in layer.items()}
        x = out * factor
    return {"params": scaled}


# The fallback's filters are built from three smooth 3×3 shapes: a binomial blob and its two Sobel
# derivatives. Each has a zero at the highest frequency along both axes (a 2 px stripe pattern gives
# no response), as the filters of a trained VGG19 nearly do: trained on photos, it has learned to
# ignore pixel-level noise. Random 3×3 filters (He initialization) instead respond to every
# frequency alike; optimizing an image against them fills it with coloured speckle that neither the
# photo nor the painting has, since noise is the cheapest way to raise their activations.
_BINOMIAL_1D = np.array([1.0, 2.0, 1.0])
_DERIVATIVE_1D = np.array([-1.0, 0.0, 1.0])
SMOOTH_BASIS = np.stack(
    [
        np.outer(_BINOMIAL_1D, _BINOMIAL_1D),  # blob
        np.outer(_BINOMIAL_1D, _DERIVATIVE_1D),  # d/dx (Sobel)
        np.outer(_DERIVATIVE_1D, _BINOMIAL_1D),  # d/dy (Sobel)
    ]
)
SMOOTH_BASIS = SMOOTH_BASIS / np.linalg.norm(SMOOTH_BASIS, axis=(1, 2), keepdims=True)
# Colour directions on the RGB cube: luma (grey), and an orthonormal pair spanning the colour
# differences (whose RGB components sum to 0, so they leave the luma untouched).
_LUMA = np.ones(3) / np.sqrt(3)
_OPPONENT = np.array([[1.0, -1.0, 0.0], [1.0, 1.0, -2.0]]) / np.array([[np.sqrt(2)], [np.sqrt(6)]])
# conv1_1's 64 filters by kind, in the proportions a trained VGG19's first layer shows: mostly
# oriented luma edges and colour-opponent blobs, some luma blobs and colour edges.
FIRST_LAYER_FILTERS = {"luma_edge": 28, "luma_blob": 8, "colour_blob": 16, "colour_edge": 12}


def _first_layer(rng: np.random.Generator) -> np.ndarray:
    """conv1_1's kernel (3, 3, 3 BGR, 64): each filter a smooth shape times a colour direction."""
    blob, d_dx, d_dy = SMOOTH_BASIS
    filters = []
    for kind, count in FIRST_LAYER_FILTERS.items():
        for _ in range(count):
            if kind.endswith("edge"):
                angle = rng.uniform(0, 2 * np.pi)
                shape = np.cos(angle) * d_dx + np.sin(angle) * d_dy
            else:
                shape = blob * rng.choice([-1.0, 1.0])
            if kind.startswith("luma"):
                colour = _LUMA
            else:
                hue = rng.uniform(0, 2 * np.pi)
                colour = np.cos(hue) * _OPPONENT[0] + np.sin(hue) * _OPPONENT[1]
            filters.append(shape[:, :, None] * colour[None, None, ::-1])  # the network sees BGR
    return np.stack(filters, axis=-1)


def _smooth_random_kernel(rng: np.random.Generator, in_channels: int, out_channels: int) -> np.ndarray:
    """A (3, 3, in, out) kernel whose every in→out filter is a random mix of SMOOTH_BASIS."""
    coefficients = rng.standard_normal((len(SMOOTH_BASIS), in_channels, out_channels))
    return np.einsum("bhw,bio->hwio", SMOOTH_BASIS, coefficients)


def smooth_random_params(seed: int = 0) -> Params:
    """VGG19 params with smooth random filters (see SMOOTH_BASIS), before calibration: conv1_1
    built from luma and colour-opponent edges and blobs, every later layer random mixes of the three
    smooth shapes, biases 0. Scales are arbitrary (each layer is rescaled afterwards)."""
    rng = np.random.default_rng(seed)
    layers = {}
    for name in vgg.LAYER_NAMES:
        if name == "conv1_1":
            kernel = _first_layer(rng)
        else:
            kernel = _smooth_random_kernel(rng, vgg.LAYER_IN_CHANNELS[name], vgg.LAYER_CHANNELS[name])
        layers[name] = {
            "kernel": kernel.astype(np.float32),
            "bias": np.zeros(vgg.LAYER_CHANNELS[name], np.float32),
        }
    return {"params": layers}


def fallback_npz_path(seed: int = 0) -> Path:
    """Where the fallback params for ``seed`` are cached."""
    return cache.weights_dir() / f"random_fallback_seed{seed}_v{FALLBACK_VERSION}.npz"


def fallback_description(seed: int = 0) -> str:
    """The one line that labels the fallback everywhere (CLI, app, result metadata)."""
    return (
        f"offline fallback: VGG19 with smooth random filters (seed {seed}), layers rescaled to mean activation 1 "
        "— not the pretrained model"
    )


def random_fallback_params(seed: int = 0) -> Params:
    """The offline fallback: :func:`smooth_random_params`, each layer rescaled to mean activation 1.

    Computed once per seed (a few seconds on a CPU) and cached in :func:`fallback_npz_path`.
    Same seed, same params, on every machine.

    Returns:
        The vgg params pytree as numpy float32.
    """
    path = fallback_npz_path(seed)
    if path.is_file():
        try:
            params, meta = cache.read_npz(path)
            if meta["kind"] == cache.KIND_FALLBACK and meta["seed"] == seed:
                return params  # type: ignore[return-value]
        except WeightsError as error:
            log.warning("ignoring unreadable fallback cache, recomputing it: %s", error)
    start_s = time.perf_counter()
    params = _rescale_to_unit_mean(smooth_random_params(seed), natural_like_images())
    elapsed_s = time.perf_counter() - start_s
    log.info("computed the random VGG19 fallback (seed %d) in %.1f s", seed, elapsed_s)
    meta = {"format_version": cache.NPZ_FORMAT_VERSION, "kind": cache.KIND_FALLBACK, "source_md5": "", "seed": seed}
    try:
        cache.save_npz(path, params, meta)
    except OSError as error:  # a read-only cache only costs recomputing next time
        log.warning("could not cache the fallback weights at %s: %s", path, error)
    return params
