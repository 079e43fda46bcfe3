"""The style losses, in one table: a new style loss is its functions plus one entry in
:data:`STYLE_LOSSES`. Settings, the CLI's choices and the app's options all read the table.

An entry says what to measure of a style image's features at one layer (``statistics``), how to
prepare the blend of those statistics over the style images once per scale (``target``), and the
loss of an image's features against that target (``loss``, relative: about 1 when nothing matches,
0 when all does). This module imports JAX only inside its functions, so the settings can read the
table without loading JAX.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass(frozen=True)
class StyleLoss:
    label: str  # the name people see
    statistics: Callable[[Any], Any]  # features (N, H, W, C) → what is blended over style images
    target: Callable[[Any], Any]  # the blended statistics → what the loss compares with (once per scale)
    loss: Callable[[Any, Any], Any]  # (features, target) → scalar


def _gram(features):
    from jaxstyle import losses

    return losses.gram(features)


def _gram_loss(features, target_gram):
    from jaxstyle import losses

    return losses.gram_style_loss(features, target_gram)


def _gaussian_fit(features):
    from jaxstyle import losses

    return losses.gaussian_fit(features)


def _w2_target(fit):
    from jaxstyle import losses

    mean, cov = fit
    return mean, losses.sqrtm_psd(cov)  # Σ^½ of the target, once per scale rather than per step


def _w2_loss(features, target):
    from jaxstyle import losses

    mean, cov_sqrt = target
    return losses.w2_style_loss(features, mean, cov_sqrt)


STYLE_LOSSES: dict[str, StyleLoss] = {
    "gram": StyleLoss("Gram (Gatys)", statistics=_gram, target=lambda gram: gram, loss=_gram_loss),
    "w2": StyleLoss("Wasserstein-2", statistics=_gaussian_fit, target=_w2_target, loss=_w2_loss),
}
