"""The settings of a run, as widgets: presets, and every engine setting in an Advanced expander.

The widget keys are ``s_<field>`` of :class:`~jaxstyle.settings.TransferSettings`; the form builds
the settings from them and shows a refusal in the settings' own words.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import streamlit as st

from jaxstyle import inputs, sweeps
from jaxstyle.errors import SettingsError
from jaxstyle.images import MAX_SIZE_PX
from jaxstyle.optimizers import OPTIMIZERS as OPTIMIZER_TABLE
from jaxstyle.optimizers import WARMUP_START
from jaxstyle.preserve_colors import PRESERVE_COLORS as PRESERVE_COLOR_TABLE
from jaxstyle.settings import (
    INITS,
    INSTANT_ONLY_FIELDS,
    OPTIMIZERS,
    PRESERVE_COLORS,
    PRESETS,
    RANGES,
    STYLE_LOSSES,
    TransferSettings,
)
from jaxstyle.style_losses import STYLE_LOSSES as STYLE_LOSS_TABLE
from jaxstyle.vgg import LAYER_NAMES, POOLINGS
from ui.common import index_of, on_cpu, recall


def log_options(low_exp: int, high_exp: int, *, per_decade: int = 4, zero: bool = True) -> list[float]:
    """Round numbers spaced evenly on a log scale: 1, 1.8, 3.2, 5.6, 10, … (and 0 first)."""
    values = [float(f"{10 ** (k / per_decade):.2g}") for k in range(low_exp * per_decade, high_exp * per_decade + 1)]
    return ([0.0] if zero else []) + values


_WEIGHT_OPTIONS = log_options(-3, 5)
_LR_OPTIONS = log_options(-4, 0, zero=False)
SIZE_OPTIONS = [32, 48, 64, 96, 128, 192, 256, 320, 384, 448, 512, 640, 768, 896, 1024, 1280, 1536, MAX_SIZE_PX]
_SCALE_MIN_OPTIONS = [0, 64, 96, 128, 192, 256, 384, 512]
_EMA_OPTIONS = [0.0, 0.5, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999]
_PYRAMID_OPTIONS = list(range(1, 7))
_DECAY_OPTIONS = [0.0, 0.25, 0.5, 0.75, 1.0]


def _with(options: list[Any], value: Any) -> list[Any]:
    """``options`` plus ``value`` (kept sorted), so a stored run's exact value can be shown."""
    return options if value in options else sorted([*options, value])


def _widget_values(settings: TransferSettings) -> dict[str, Any]:
    """Session-state values of the settings widgets (keys ``s_<field>``) for ``settings``."""
    values = {f"s_{name}": value for name, value in settings.to_dict().items() if name != "style_blend"}
    values["s_content_layers"] = list(settings.content_layers)
    values["s_style_layers"] = list(settings.style_layers)
    layer_weights = settings.style_layer_weights
    values["s_style_layer_weights"] = ", ".join(f"{w:g}" for w in layer_weights) if layer_weights else ""
    return values


def apply_settings(settings: TransferSettings, preset: str | None = None) -> None:
    """Put ``settings`` into the settings widgets (before they render, or in a callback)."""
    st.session_state.update(_widget_values(settings))
    st.session_state["preset"] = preset


def _apply_preset() -> None:
    name = st.session_state.get("preset")
    if name in PRESETS:
        seed = st.session_state.get("s_seed", 0)
        apply_settings(PRESETS[name].replace(seed=seed), name)


def default_preset() -> str:
    return "Quick preview" if on_cpu() else "Balanced"


def _fmt_weight(value: float) -> str:
    return "0 (off)" if value == 0 else f"{value:g}"


def _mark_custom() -> None:
    st.session_state["preset"] = None


def settings_form() -> TransferSettings | None:
    """Presets plus every engine setting in an Advanced expander; None (and a message) if invalid."""
    ss = st.session_state
    preset = recall({"preset": default_preset()})["preset"]
    v = recall(_widget_values(PRESETS[preset or default_preset()]))  # first visit, or back from another page
    st.segmented_control("Preset", list(PRESETS), default=preset, key="preset", on_change=_apply_preset)
    kw: dict[str, Any] = {"on_change": _mark_custom}
    with st.expander("Advanced settings", icon=":material/tune:"):
        image_col, loss_col, opt_col = st.tabs(["Image", "Loss", "Optimizer"])
        with image_col:
            size_options = _with(SIZE_OPTIONS, v["s_size_px"])
            st.select_slider("Size (long side, px)", size_options, v["s_size_px"], key="s_size_px", **kw)
            st.number_input("Iterations", *RANGES["iterations"], v["s_iterations"], step=10, key="s_iterations", **kw)
            st.number_input("Seed", *RANGES["seed"], v["s_seed"], step=1, key="s_seed", **kw)
            st.radio(
                "Start from", INITS, index_of(INITS, v["s_init"]), key="s_init", horizontal=True,
                format_func=str.capitalize, **kw,
            )  # fmt: skip
            st.selectbox(
                "Preserve colors", PRESERVE_COLORS, index_of(PRESERVE_COLORS, v["s_preserve_color"]),
                key="s_preserve_color", **kw,
                format_func=lambda name: PRESERVE_COLOR_TABLE[name].label,
            )  # fmt: skip
        with loss_col:
            for name, label in (
                ("content", "Content weight"),
                ("style", "Style weight"),
                ("tv", "Smoothness (TV) weight"),
            ):
                key = f"s_{name}_weight"
                options = _with(_WEIGHT_OPTIONS, v[key])
                st.select_slider(label, options, v[key], key=key, format_func=_fmt_weight, **kw)
            st.radio(
                "Style loss", STYLE_LOSSES, index_of(STYLE_LOSSES, v["s_style_loss"]), key="s_style_loss",
                horizontal=True, **kw,
                format_func=lambda name: STYLE_LOSS_TABLE[name].label,
            )  # fmt: skip
            st.multiselect("Content layers", LAYER_NAMES, v["s_content_layers"], key="s_content_layers", **kw)
            st.multiselect("Style layers", LAYER_NAMES, v["s_style_layers"], key="s_style_layers", **kw)
            st.text_input(
                "Style layer weights",
                v["s_style_layer_weights"],
                key="s_style_layer_weights",
                placeholder="equal (e.g. 1, 1, 0.5, 0.5, 0.25)",
                **kw,
            )
        with opt_col:
            st.radio(
                "Optimizer", OPTIMIZERS, index_of(OPTIMIZERS, v["s_optimizer"]), key="s_optimizer", horizontal=True,
                **kw, format_func=lambda name: OPTIMIZER_TABLE[name].label,
            )  # fmt: skip
            st.select_slider(
                "Learning rate (Adam)", _with(_LR_OPTIONS, v["s_learning_rate"]), v["s_learning_rate"],
                key="s_learning_rate", disabled=not OPTIMIZER_TABLE[v["s_optimizer"]].uses_step_size, **kw,
            )  # fmt: skip
            st.number_input(
                "Warm-up iterations (Adam)", *RANGES["warmup_iterations"], v["s_warmup_iterations"], step=10,
                key="s_warmup_iterations", disabled=not OPTIMIZER_TABLE[v["s_optimizer"]].uses_step_size,
                help=f"Adam's step rises from {WARMUP_START:.0%} of the learning rate to all of it over "
                "these iterations, at each scale: full steps at the start overshoot and add noise.", **kw,
            )  # fmt: skip
            st.select_slider(
                "Step decay after the warm-up (Adam)", _with(_DECAY_OPTIONS, v["s_decay_power"]), v["s_decay_power"],
                key="s_decay_power", disabled=not OPTIMIZER_TABLE[v["s_optimizer"]].uses_step_size,
                help="After the warm-up the step falls as (warm-up / iteration) to this power: 0 keeps it constant, "
                "0.5 halves it by four times the warm-up. A constant step lets the loss climb back up in long runs.",
                **kw,
            )  # fmt: skip
            st.select_slider(
                "Average of iterates (EMA decay)",
                _with(_EMA_OPTIONS, v["s_ema_decay"]),
                v["s_ema_decay"],
                key="s_ema_decay",
                **kw,
            )
            st.select_slider(
                "Image pyramid levels", _with(_PYRAMID_OPTIONS, v["s_pyramid_levels"]), v["s_pyramid_levels"],
                key="s_pyramid_levels", help="The image is optimized as a sum of levels of halving resolution: "
                "broad shapes settle early, so fewer iterations reach the same loss. 1 optimizes the pixels directly.",
                format_func=lambda v: "1 (pixels)" if v == 1 else f"{v}", **kw,
            )  # fmt: skip
            st.select_slider(
                "Coarse-to-fine from (px)", _with(_SCALE_MIN_OPTIONS, v["s_scale_min_px"]), v["s_scale_min_px"],
                key="s_scale_min_px",
                format_func=lambda v: "off" if v == 0 else f"{v}", **kw,
            )  # fmt: skip
            st.number_input(
                "Iterations per coarse scale",
                *RANGES["scale_iterations"],
                v["s_scale_iterations"],
                step=10,
                key="s_scale_iterations",
                **kw,
            )
            st.radio(
                "Pooling", POOLINGS, index_of(POOLINGS, v["s_pooling"]), key="s_pooling", horizontal=True,
                format_func=str.capitalize, **kw,
            )  # fmt: skip
            st.slider("Style scale", 0.25, 2.0, v["s_style_scale"], step=0.05, key="s_style_scale", **kw)
    try:
        values = {name: ss[f"s_{name}"] for name in _FIELDS}
        values["style_layer_weights"] = inputs.parse_floats(ss["s_style_layer_weights"], what="style layer weights")
        settings = TransferSettings(**values)
    except SettingsError as error:
        st.error(str(error), icon=":material/error:")
        return None
    ratio = sweeps.weight_ratio(settings)
    st.caption(
        ("" if ss["preset"] else "Custom settings · ")
        + f"{settings.size_px} px · {settings.total_iterations()} iterations · "
        + f"{OPTIMIZER_TABLE[settings.optimizer].label} · style/content weight {ratio:g}"
    )
    return settings


_FIELDS = tuple(
    f.name
    for f in dataclasses.fields(TransferSettings)
    if f.name not in ("style_blend", "style_layer_weights", *INSTANT_ONLY_FIELDS)
)
