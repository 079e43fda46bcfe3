"""Every setting of a style-transfer run, in one frozen dataclass, with its default and range.

Each default lives here once. The CLI builds its flags from :func:`dataclasses.fields`, the app
builds one from its widgets, the gallery stores :meth:`TransferSettings.to_dict` as JSON and
re-runs rebuild with :meth:`TransferSettings.from_dict`. Bad values raise
:class:`~jaxstyle.errors.SettingsError` naming the field and its allowed range.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from jaxstyle import inits, optimizers, preserve_colors, style_losses
from jaxstyle.errors import SettingsError
from jaxstyle.images import MAX_SIZE_PX
from jaxstyle.layers import LAYER_NAMES, POOLINGS

# The choices that grow live in their own tables; settings, the CLI and the app read the names here.
OPTIMIZERS = tuple(optimizers.OPTIMIZERS)
STYLE_LOSSES = tuple(style_losses.STYLE_LOSSES)
INITS = tuple(inits.INITS)
PRESERVE_COLORS = tuple(preserve_colors.PRESERVE_COLORS)

# Allowed ranges, (low, high) inclusive; one table so messages, the CLI and the UI agree.
RANGES: dict[str, tuple[float, float]] = {
    "size_px": (16, MAX_SIZE_PX),
    "iterations": (1, 5000),
    "scale_iterations": (1, 5000),
    "scale_min_px": (0, MAX_SIZE_PX),
    "content_weight": (0.0, 1e6),
    "style_weight": (0.0, 1e6),
    "tv_weight": (0.0, 1e6),
    "learning_rate": (1e-5, 1.0),
    "warmup_iterations": (0, 5000),
    "decay_power": (0.0, 2.0),
    "ema_decay": (0.0, 0.9999),
    "pyramid_levels": (1, 8),
    "style_scale": (0.1, 4.0),
    "seed": (0, 2**31 - 1),
    "strength": (0.0, 1.0),
    "stroke_px": (0, MAX_SIZE_PX),
    "smooth": (0.0, 0.95),
}

# Settings of instant runs of the built-in pretrained models only (jaxstyle.instant.builtin); an
# optimization or a trained model leaves them at their defaults.
INSTANT_ONLY_FIELDS = ("strength", "stroke_px", "smooth")


# Fields added after runs were first stored, with the value those runs had (see from_dict).
LEGACY_VALUES: dict[str, Any] = {"pyramid_levels": 1, "warmup_iterations": 0, "decay_power": 0.0}


def _check_weights(name: str, weights: Sequence[float]) -> tuple[float, ...]:
    """``weights`` as floats; they must be finite, non-negative and have a positive sum."""
    try:
        weights = tuple(float(w) for w in weights)
    except (TypeError, ValueError):
        raise SettingsError(f"{name} must be non-negative numbers with a positive sum, got {weights!r}") from None
    if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise SettingsError(f"{name} must be non-negative numbers with a positive sum, got {weights}")
    return weights


def blend_weights(style_blend: Sequence[float] | None, n_styles: int) -> tuple[float, ...]:
    """The blend rule, in one place: the weight of each of ``n_styles`` style images, summing to 1.

    ``style_blend`` is normalized; None means equal weights.

    Raises:
        SettingsError: no style image, a weight count other than ``n_styles``, or weights that are
            negative, not finite or sum to 0.
    """
    if n_styles < 1:
        raise SettingsError("at least one style image is needed")
    if style_blend is None:
        return (1.0 / n_styles,) * n_styles
    weights = _check_weights("style_blend", style_blend)
    if len(weights) != n_styles:
        raise SettingsError(f"style_blend has {len(weights)} weights for {n_styles} style image(s)")
    total = sum(weights)
    return tuple(w / total for w in weights)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TransferSettings:
    """One run's settings. Loss weights multiply losses that are each ~1 at the start of a run
    (every term is normalized by its target's magnitude), so they carry over between image sizes
    and models.

    Differs from Gatys et al.: losses are relative (divided by the target's mean square), and
    pixels live in [0, 1] RGB; the VGG preprocessing happens inside the model.
    """

    size_px: int = 512  # long side of the output, pixels, 16–MAX_SIZE_PX (2048)
    iterations: int = 300  # optimizer steps at the final size, 1–5000
    content_weight: float = 1.0  # weight of the content loss, 0–1e6
    style_weight: float = 10.0  # weight of the style loss, 0–1e6
    tv_weight: float = 1.0  # weight of total variation (smoothness), 0–1e6
    content_layers: tuple[str, ...] = ("conv4_2",)  # VGG19 layers whose activations are matched
    style_layers: tuple[str, ...] = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
    style_layer_weights: tuple[float, ...] | None = None  # one per style layer; None = equal
    style_loss: str = "gram"  # a key of style_losses.STYLE_LOSSES: "gram" (Gatys et al.), "w2" (Wasserstein-2)
    optimizer: str = "adam"  # a key of optimizers.OPTIMIZERS: "adam", "lbfgs" (optax.lbfgs with line search)
    learning_rate: float = 0.04  # Adam's (peak) step size on the [0, 1] pixel range, 1e-5–1 (not for L-BFGS)
    warmup_iterations: int = 60  # Adam's step rises from 12% to learning_rate over these, at each scale; 0–5000
    decay_power: float = 0.5  # then falls as (warmup_iterations / iteration)^decay_power; 0 = constant, 0–2
    ema_decay: float = 0.0  # >0: return the exponential moving average of the iterates, 0–0.9999
    pyramid_levels: int = 4  # image optimized as this many pyramid levels (pyramid.compose); 1 = pixels, 1–8
    scale_min_px: int = 0  # >0: coarse-to-fine from this size up by √2 steps; 0 = single scale
    scale_iterations: int = 100  # steps at each size below size_px, 1–5000
    init: str = "content"  # a key of inits.INITS: start from "content", "style" or "noise"
    seed: int = 0  # makes noise init and the whole run reproducible, 0–2^31-1
    pooling: str = "max"  # VGG pooling: "max" or "average"
    style_scale: float = 1.0  # the style image's size relative to the output, 0.1–4
    style_blend: tuple[float, ...] | None = None  # weight per style image; None = equal
    preserve_color: str = "none"  # a key of preserve_colors.PRESERVE_COLORS: "none", "luminance", "histogram"
    strength: float = 1.0  # built-in instant models: the painting's style vector (1) … the photo's own (0), 0–1
    stroke_px: int = 0  # built-in instant models: paint at this long side, then upscale (bigger strokes); 0 = size_px
    smooth: float = 0.0  # videos and the camera: the previous frame's share where nothing moved, 0–0.95 (flicker)

    def __post_init__(self) -> None:
        for name, (low, high) in RANGES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise SettingsError(f"{name} must be a number between {low:g} and {high:g}, got {value!r}")
            if not low <= value <= high:
                raise SettingsError(f"{name} must be between {low:g} and {high:g}, got {value:g}")
        for name in (
            "size_px", "iterations", "scale_iterations", "scale_min_px", "seed", "pyramid_levels", "warmup_iterations",
            "stroke_px",
        ):  # fmt: skip
            if int(getattr(self, name)) != getattr(self, name):
                raise SettingsError(f"{name} must be a whole number, got {getattr(self, name)!r}")
            object.__setattr__(self, name, int(getattr(self, name)))
        for name, allowed in (
            ("style_loss", STYLE_LOSSES),
            ("optimizer", OPTIMIZERS),
            ("init", INITS),
            ("pooling", POOLINGS),
            ("preserve_color", PRESERVE_COLORS),
        ):
            if getattr(self, name) not in allowed:
                raise SettingsError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        for name in ("content_layers", "style_layers"):
            layers = tuple(getattr(self, name))
            object.__setattr__(self, name, layers)
            if not layers:
                raise SettingsError(f"{name} must name at least one VGG19 layer")
            unknown = [layer for layer in layers if layer not in LAYER_NAMES]
            if unknown:
                raise SettingsError(f"{name}: unknown layer(s) {', '.join(unknown)}; known: {', '.join(LAYER_NAMES)}")
        if self.style_layer_weights is not None:
            weights = _check_weights("style_layer_weights", self.style_layer_weights)
            object.__setattr__(self, "style_layer_weights", weights)
            if len(weights) != len(self.style_layers):
                count, got = len(self.style_layers), len(weights)
                raise SettingsError(f"style_layer_weights needs one weight per style layer ({count}), got {got}")
        if self.style_blend is not None:
            object.__setattr__(self, "style_blend", _check_weights("style_blend", self.style_blend))
        if 0 < self.scale_min_px < 16:
            raise SettingsError(f"scale_min_px must be 0 (off) or at least 16, got {self.scale_min_px}")

    def replace(self, **changes: Any) -> TransferSettings:
        """A copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of every field (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TransferSettings:
        """Rebuild from :meth:`to_dict` output (e.g. a stored run); unknown keys are an error.

        A field missing from ``data`` takes the value runs had before the field existed
        (:data:`LEGACY_VALUES`), not today's default, so that a stored run re-runs as it ran.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(unknown)}")
        values = {**LEGACY_VALUES, **{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}}
        try:
            return cls(**values)
        except TypeError as error:  # e.g. a string where a number belongs
            raise SettingsError(f"invalid settings: {error}") from None

    def blend_for(self, n_styles: int) -> tuple[float, ...]:
        """The weight of each of ``n_styles`` style images, summing to 1: see :func:`blend_weights`."""
        return blend_weights(self.style_blend, n_styles)

    def scales(self) -> list[int]:
        """The long-side sizes of the coarse-to-fine schedule, ending at ``size_px``."""
        if not self.scale_min_px or self.scale_min_px >= self.size_px:
            return [self.size_px]
        sizes = []
        size = float(self.scale_min_px)
        while round(size) < self.size_px:
            sizes.append(int(round(size)))
            size *= math.sqrt(2)
        return sizes + [self.size_px]

    def steps_per_scale(self) -> list[int]:
        """Iterations at each size of :meth:`scales`."""
        return [self.scale_iterations] * (len(self.scales()) - 1) + [self.iterations]

    def total_iterations(self) -> int:
        """Iterations over all scales."""
        return sum(self.steps_per_scale())


# Single-scale Adam on the default pyramid with warm-up: at 256 and 512 px it reaches in about 100
# iterations the loss that classic Adam reaches in 300 (README, Speed); coarse to fine and L-BFGS
# were slower to a given loss there.
PRESETS: dict[str, TransferSettings] = {
    "Quick preview": TransferSettings(size_px=256, iterations=100),
    "Balanced": TransferSettings(size_px=384, iterations=150),
    "High quality": TransferSettings(size_px=512, iterations=300),
}
