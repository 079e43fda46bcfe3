"""Measures of a result image that the loss does not show, as pure functions of arrays.

- :func:`high_frequency_energy`: the mean square of an image channel minus its Gaussian blur
  (σ = 1 px): the energy of detail finer than about two pixels.
- :func:`speckle_ratio`: that energy in the chroma channels (Cb, Cr) of a result, over the larger
  of the photo's and the painting's: coloured noise that neither input has shows as a ratio
  above 1.
- :func:`detail_ratio`: the same energy in luma (Y), result over photo: a blurred result shows as
  a ratio well under 1.
- :func:`colour_distance` and :func:`texture_distance`: how far the result's colour and texture
  statistics are from the painting's, to check that the style transferred (a result should be
  closer to the painting than the photo was).

All take float RGB arrays (H, W, 3) in [0, 1]; the benchmark and the tests call them on images of
one size (the painting resized to the result's).
"""

from __future__ import annotations

import numpy as np

from jaxstyle.images import rgb_to_ycbcr, symmetric_sqrt

# The blur whose residual is "high frequency": σ = 1 px, as the issue that introduced the measure
# defined it.
BLUR_SIGMA_PX = 1.0


def _gaussian_kernel(sigma_px: float) -> np.ndarray:
    radius = max(1, int(np.ceil(4 * sigma_px)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma_px) ** 2)
    return kernel / kernel.sum()


def gaussian_blur(channel: np.ndarray, sigma_px: float = BLUR_SIGMA_PX) -> np.ndarray:
    """A separable Gaussian blur of a 2-D array, edges reflected (so a flat image stays flat)."""
    kernel = _gaussian_kernel(sigma_px)
    radius = len(kernel) // 2
    padded = np.pad(np.asarray(channel, np.float64), radius, mode="reflect")
    rows = sum(w * padded[:, k : k + padded.shape[1] - 2 * radius] for k, w in enumerate(kernel))
    return sum(w * rows[k : k + rows.shape[0] - 2 * radius, :] for k, w in enumerate(kernel))


def high_frequency_energy(channel: np.ndarray, sigma_px: float = BLUR_SIGMA_PX) -> float:
    """Mean square of ``channel`` minus its Gaussian blur."""
    channel = np.asarray(channel, np.float64)
    return float(np.mean((channel - gaussian_blur(channel, sigma_px)) ** 2))


def _chroma_energy(rgb: np.ndarray) -> float:
    ycbcr = rgb_to_ycbcr(rgb)
    return high_frequency_energy(ycbcr[..., 1]) + high_frequency_energy(ycbcr[..., 2])


def _luma_energy(rgb: np.ndarray) -> float:
    return high_frequency_energy(rgb_to_ycbcr(rgb)[..., 0])


def speckle_ratio(result: np.ndarray, photo: np.ndarray, painting: np.ndarray) -> float:
    """Chroma (Cb + Cr) high-frequency energy of ``result`` over the larger of the photo's and the
    painting's (all three of one size). 1 or less: no coloured detail beyond what the inputs have."""
    reference = max(_chroma_energy(photo), _chroma_energy(painting), 1e-12)
    return _chroma_energy(result) / reference


def detail_ratio(result: np.ndarray, photo: np.ndarray) -> float:
    """Luma high-frequency energy of ``result`` over the photo's: how much fine detail survives."""
    return _luma_energy(result) / max(_luma_energy(photo), 1e-12)


def colour_distance(image: np.ndarray, painting: np.ndarray) -> float:
    """Squared Wasserstein-2 distance between Gaussian fits of the two images' RGB pixels."""
    a = np.asarray(image, np.float64).reshape(-1, 3)
    b = np.asarray(painting, np.float64).reshape(-1, 3)
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_b = symmetric_sqrt(cov_b)
    cross = symmetric_sqrt(root_b @ cov_a @ root_b)
    return float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a + cov_b - 2 * cross))


def _texture_statistics(rgb: np.ndarray) -> np.ndarray:
    """Log energies of luma in difference-of-Gaussian bands (σ = 1, 2, 4 px), split by
    orientation (horizontal and vertical gradients of each band): a small texture signature
    that does not depend on the VGG network."""
    luma = rgb_to_ycbcr(rgb)[..., 0].astype(np.float64)
    stats = []
    previous = luma
    for sigma_px in (1.0, 2.0, 4.0):
        blurred = gaussian_blur(luma, sigma_px)
        band = previous - blurred
        previous = blurred
        stats.append(np.log(np.mean(np.diff(band, axis=1) ** 2) + 1e-8))
        stats.append(np.log(np.mean(np.diff(band, axis=0) ** 2) + 1e-8))
    return np.asarray(stats)


def texture_distance(image: np.ndarray, painting: np.ndarray) -> float:
    """Euclidean distance between the texture signatures of two images (see _texture_statistics)."""
    return float(np.linalg.norm(_texture_statistics(image) - _texture_statistics(painting)))
