"""The losses of neural style transfer, as pure functions of arrays (jit happens in transfer.py).

Every feature-space loss is *relative*: the squared error divided by the target's mean square.
Each term is then about 1 when the image has nothing of its target and 0 when it matches, for
any layer, image size or model scale (the pretrained VGG's activations are in the hundreds, the
offline fallback's about 1), so a weight means the same thing everywhere.

Differs from Gatys et al.: they sum squared errors with size factors 1/(4N²M²); here each term is
normalized by its target instead, which is what makes the weights carry over between sizes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# Keeps a ratio finite when a target is all zeros (a layer dead on a flat image).
_EPS = 1e-8


def _flatten(features: jax.Array) -> jax.Array:
    """(…, H, W, C) → (positions, C)."""
    return features.reshape(-1, features.shape[-1])


def content_loss(features: jax.Array, target: jax.Array) -> jax.Array:
    """Mean squared difference of activations, relative to the target's mean square."""
    return jnp.mean((features - target) ** 2) / (jnp.mean(target**2) + _EPS)


def gram(features: jax.Array) -> jax.Array:
    """Gram matrix (C, C) of activations, averaged over positions: FᵀF / (H·W)."""
    flat = _flatten(features)
    return flat.T @ flat / flat.shape[0]


def style_loss(features: jax.Array, target_gram: jax.Array) -> jax.Array:
    """Mean squared difference of Gram matrices, relative to the target Gram's mean square."""
    return jnp.mean((gram(features) - target_gram) ** 2) / (jnp.mean(target_gram**2) + _EPS)


@jax.custom_vjp
def gram_style_loss(features: jax.Array, target_gram: jax.Array) -> jax.Array:
    """:func:`style_loss`, with a gradient that costs one matrix product instead of two.

    Autodiff of the Gram matrix FᵀF/N gives F·dGᵀ/N + F·dG/N: two (positions × C) products and
    their sum, each a pass over the layer's activations (7% of a 256 px step). dG is symmetric
    here, so the gradient is F·(2·dG)/N, one product.
    """
    return style_loss(features, target_gram)


def _gram_style_loss_fwd(features: jax.Array, target_gram: jax.Array):
    flat = features.reshape(-1, features.shape[-1])
    gram = flat.T @ flat / flat.shape[0]
    # style_loss is the relative squared error of the Gram matrices, which is content_loss's
    # formula applied to them; its gradient with respect to the Gram matrix comes from there.
    value, gram_vjp = jax.vjp(content_loss, gram, target_gram)
    return value, (features, gram_vjp)


def _gram_style_loss_bwd(residuals, g: jax.Array):
    features, gram_vjp = residuals
    d_gram, d_target = gram_vjp(g)
    flat = features.reshape(-1, features.shape[-1])
    d_gram = d_gram + d_gram.T
    return (flat @ d_gram / flat.shape[0]).reshape(features.shape), d_target


gram_style_loss.defvjp(_gram_style_loss_fwd, _gram_style_loss_bwd)


def gaussian_fit(features: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean (C,) and covariance (C, C) of activations over positions."""
    flat = _flatten(features)
    mean = flat.mean(axis=0)
    centered = flat - mean
    return mean, centered.T @ centered / flat.shape[0]


def sqrtm_psd(matrix: jax.Array) -> jax.Array:
    """Square root of a symmetric positive semi-definite matrix (eigenvalues clipped at 0).

    In JAX because the style targets that need it are computed inside jitted code; numpy callers
    use :func:`jaxstyle.images.symmetric_sqrt` (float64, with an inverse).
    """
    eigenvalues, eigenvectors = jnp.linalg.eigh(matrix)
    return (eigenvectors * jnp.sqrt(jnp.clip(eigenvalues, 0.0))) @ eigenvectors.T


def w2_style_loss(features: jax.Array, target_mean: jax.Array, target_cov_sqrt: jax.Array) -> jax.Array:
    """Squared Wasserstein-2 distance between Gaussian fits of the features and of the target.

    W₂² = |μ − μₜ|² + tr Σ + tr Σₜ − 2 tr (Σₜ^½ Σ Σₜ^½)^½, relative to the target's
    second moment |μₜ|² + tr Σₜ. ``target_cov_sqrt`` is Σₜ^½, computed once per run.
    The last trace only needs the eigenvalues of a symmetric matrix, whose gradient is
    well-defined even for repeated eigenvalues (unlike that of a full matrix square root).
    """
    mean, cov = gaussian_fit(features)
    target_cov = target_cov_sqrt @ target_cov_sqrt
    cross = target_cov_sqrt @ cov @ target_cov_sqrt
    cross = (cross + cross.T) / 2  # exact symmetry for eigvalsh
    cross_trace = jnp.sum(jnp.sqrt(jnp.clip(jnp.linalg.eigvalsh(cross), 0.0) + _EPS))
    distance = jnp.sum((mean - target_mean) ** 2) + jnp.trace(cov) + jnp.trace(target_cov) - 2 * cross_trace
    scale = jnp.sum(target_mean**2) + jnp.trace(target_cov) + _EPS
    return jnp.maximum(distance, 0.0) / scale


def tv_loss(image: jax.Array) -> jax.Array:
    """Total variation: mean squared difference of neighbouring pixels, across and down.

    ``image`` is (…, H, W, C) with pixels in [0, 1]. Differs from Gatys et al. (who used none):
    a small weight removes the high-frequency noise that optimizing pixels directly leaves.
    """
    across = image[..., :, 1:, :] - image[..., :, :-1, :]
    down = image[..., 1:, :, :] - image[..., :-1, :, :]
    return jnp.mean(across**2) + jnp.mean(down**2)
