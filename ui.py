"""Every widget group and renderer the pages share; the pages only arrange them.

Rules kept here: widget keys are explicit and stable (tests use them); session state holds only
UI facts (ids, choices), never images or connections; the gallery is opened per operation; the
job runner and device probe are process-wide via ``st.cache_resource``; every failure becomes a
message (``guard``), never a traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import math
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st
from PIL import Image, ImageOps

from jaxstyle import catalog, follow, gallery, images, inputs, jobs, paths, sweeps, transfer, weights
from jaxstyle.errors import CatalogError, FetchError, JaxstyleError, SettingsError
from jaxstyle.inputs import LoadedImage, input_label
from jaxstyle.jobs import JobRunner
from jaxstyle.settings import INITS, OPTIMIZERS, PRESERVE_COLORS, PRESETS, RANGES, STYLE_LOSSES, TransferSettings
from jaxstyle.vgg import LAYER_NAMES, POOLINGS

log = logging.getLogger("jaxstyle.app")

HOME_PAGE = "app_pages/home.py"
GENERATE_PAGE = "app_pages/generate.py"
GALLERY_PAGE = "app_pages/gallery.py"
COMPARE_PAGE = "app_pages/compare.py"
STYLES_PAGE = "app_pages/styles.py"

IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff"]
STATUS_BADGES = {  # status -> (label, color, icon)
    "queued": ("Queued", "gray", ":material/schedule:"),
    "running": ("Running", "blue", ":material/autorenew:"),
    "done": ("Done", "green", ":material/check_circle:"),
    "failed": ("Failed", "red", ":material/error:"),
    "cancelled": ("Cancelled", "orange", ":material/cancel:"),
}
LOSS_COMPONENTS = ("total", "content", "style", "tv")
POLL_S = 1.0  # how often a running run's view refreshes

# Two small layout fixes Streamlit has no option for: less top padding (the default 6rem pushes
# pages below the fold on a laptop), and a sticky output column on Generate, so the progress
# stays in view after clicking Generate at the bottom of a long form.
CSS = """<style>
[data-testid='stMainBlockContainer'] { padding-top: 2.5rem; }
[data-testid='stColumn']:has(.st-key-run_output) { position: sticky; top: 1rem; align-self: flex-start; }
</style>"""


# ----- process-wide resources -------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def app_icon() -> Image.Image:
    """The app's icon, drawn here so the favicon needs no network: a palette on the theme color."""
    from PIL import ImageDraw

    icon = Image.new("RGBA", (128, 128), (0, 0, 0, 0))
    draw = ImageDraw.Draw(icon)
    draw.rounded_rectangle((4, 4, 124, 124), radius=28, fill=(91, 91, 214))
    draw.ellipse((22, 26, 106, 102), fill=(255, 255, 255))
    for (x, y), color in zip(
        ((44, 44), (64, 38), (84, 48), (42, 68)),
        ((230, 57, 70), (255, 183, 3), (42, 157, 143), (69, 123, 157)),
        strict=True,
    ):
        draw.ellipse((x - 8, y - 8, x + 8, y + 8), fill=color)
    draw.ellipse((70, 70, 88, 88), fill=(91, 91, 214))
    return icon


def gallery_path() -> Path:
    return paths.default_gallery_path()


@st.cache_resource(show_spinner=False)
def _runner(path: str) -> JobRunner:
    # Concurrent runs and queue length: JAXSTYLE_WORKERS (default 1) and JAXSTYLE_MAX_QUEUED (16).
    return JobRunner(path, **jobs.options_from_env())


def runner() -> JobRunner:
    """The job runner of this gallery (one per process, shared by every session)."""
    return _runner(str(gallery_path()))


def db() -> gallery.GalleryDatabase:
    """A fresh gallery connection: use as ``with ui.db() as db:`` (one per operation)."""
    return gallery.connect(gallery_path())


@st.cache_resource(show_spinner=False)
def device() -> str:
    return transfer.device_description()


@contextlib.contextmanager
def guard(what: str = "this") -> Iterator[None]:
    """Show a failure as a message: ours as written, anything else briefly (details in the log)."""
    try:
        yield
    except JaxstyleError as error:
        st.error(str(error), icon=":material/error:")
    except Exception as error:  # noqa: BLE001 — the app must never show a raw traceback
        log.exception("unexpected error in %s", what)
        st.error(
            f"Something went wrong with {what}: {type(error).__name__}: {error}. The server log has the details.",
            icon=":material/error:",
        )


def recall(defaults: dict[str, Any]) -> dict[str, Any]:
    """The current value of each widget (by key): its state, else its value before a page switch,
    else the default. Pass it as the widget's ``value``/``default``/``index``.

    Streamlit drops a widget's value when a page without it runs, so the values are also kept in
    a plain dict that survives. Handing them back as the widget's default (rather than writing the
    widget's key) keeps the browser and the server in agreement: when a widget is (re)created the
    browser starts from its default, and a default that differed from the state could be sent back
    as a change. (The same is why ``persist_state`` isn't used: in 1.67 it sometimes replays stale
    values after a quick succession of changes.)
    """
    ss = st.session_state
    kept = ss.setdefault("_kept", {})
    values = {key: ss[key] if key in ss else kept.get(key, default) for key, default in defaults.items()}
    kept.update(values)
    return values


def _index(options: Sequence[Any], value: Any) -> int | None:
    return list(options).index(value) if value in options else None


def header(title: str, caption: str) -> None:
    st.title(title, anchor=False)
    st.caption(caption)


def status_badge(status: str) -> None:
    label, color, icon = STATUS_BADGES.get(status, (status, "gray", None))
    st.badge(label, color=color, icon=icon)


@st.cache_data(show_spinner=False, max_entries=512)
def cover(data: bytes, *, aspect: float = 4 / 3, width_px: int = 384) -> bytes:
    """The image center-cropped to ``aspect`` (width/height), as JPEG: cards in a row line up."""
    image = images.open_image(data)
    tile = ImageOps.fit(image, (width_px, round(width_px / aspect)), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    tile.save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()


@st.cache_data(show_spinner=False)
def placeholder(*, aspect: float = 4 / 3, width_px: int = 384) -> bytes:
    """A quiet grey tile for an image that isn't there (not downloaded, not finished)."""
    buffer = io.BytesIO()
    Image.new("RGB", (width_px, round(width_px / aspect)), (236, 236, 240)).save(buffer, format="PNG")
    return buffer.getvalue()


def ago(when: datetime) -> str:
    """'3 min ago' style age of a UTC time."""
    seconds = max(0.0, (datetime.now(when.tzinfo) - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f} {unit} ago"
    return "just now"


# ----- system status ------------------------------------------------------------------------------


def weights_panel() -> None:
    """Which VGG19 weights runs use, with a download button while they are the offline fallback."""
    status = weights.weights_status()
    if status.get("problem"):
        st.error(status["problem"], icon=":material/error:")
    if status["pretrained"]:
        st.success("Pretrained VGG19 (ImageNet)", icon=":material/verified:")
        st.caption(status["description"])
        return
    st.warning("Offline fallback (random VGG19): results show texture, not painting style.", icon=":material/warning:")
    if st.button(
        f"Download pretrained weights ({weights.KERAS_SIZE_MB} MB)", key="download_weights", icon=":material/download:"
    ):
        bar = st.progress(0.0, text="Downloading VGG19 weights…")

        def progress(done: int, total: int | None) -> None:
            text = f"Downloading VGG19 weights… {done / 1e6:.0f} MB" + (f" of {total / 1e6:.0f} MB" if total else "")
            bar.progress(min(1.0, done / total) if total else 0.0, text=text)

        with guard("the weights download"):
            weights.download_weights(progress=progress)
            runner().reset_weights()
            st.toast("Pretrained weights downloaded; new runs use them.", icon=":material/check:")
        bar.empty()


def sidebar() -> None:
    """The shared sidebar: what is running now, device and weights in one glance."""
    with st.sidebar:
        active, queued = runner().active_ids(), runner().queued_ids()
        if active or queued:
            text = " · ".join(
                part
                for part in (f"{len(active)} running" if active else "", f"{len(queued)} waiting" if queued else "")
                if part
            )
            st.caption(f":material/autorenew: {text}")
        status = weights.weights_status()
        kind = "pretrained VGG19" if status["pretrained"] else "fallback VGG19"
        st.caption(f":material/memory: {device()} · {kind}")


# ----- input images -------------------------------------------------------------------------------


@st.cache_data(ttl=900, max_entries=8, show_spinner="Fetching the image…")
def _load_url(url: str) -> tuple[LoadedImage | None, str | None, str | None]:
    """The URL's image, or why not and the icon that goes with it (cached either way, so a slow
    refusal isn't repeated at every rerun).

    Never allows private, loopback or link-local addresses: this is user input.
    """
    try:
        return inputs.from_url(url), None, None
    except FetchError as error:
        return None, str(error), ":material/link_off:"
    except JaxstyleError as error:
        return None, str(error), ":material/broken_image:"


def _from_url(url: str) -> LoadedImage | None:
    loaded, problem, icon = _load_url(url.strip())
    if problem:
        st.error(problem, icon=icon)
    return loaded


def _from_file(file: Any) -> LoadedImage | None:
    """An uploaded (or camera) file decoded, or an error under the widget."""
    if file is None:
        return None
    try:
        return inputs.from_upload(file.getvalue(), file.name or "upload")
    except JaxstyleError as error:
        st.error(str(error), icon=":material/broken_image:")
        return None


def _from_gallery(info: gallery.ImageInfo) -> LoadedImage | None:
    try:
        with db() as conn:
            return inputs.from_gallery(conn, info)
    except JaxstyleError as error:
        st.error(str(error), icon=":material/error:")
        return None


def _catalog_image(style_id: str) -> LoadedImage | None:
    """A catalog painting if it is on this machine (no download here: that is a button)."""
    try:
        return inputs.from_catalog(style_id, download=False)
    except JaxstyleError:
        return None


def _recent_inputs(kind: str) -> dict[str, gallery.ImageInfo]:
    with db() as conn:
        return {info.sha256: info for info in gallery.list_inputs(conn, kind)}


def preview(image: LoadedImage, *, height_px: int = 200) -> None:
    width, height = image.image.size
    st.image(
        images.thumbnail_bytes(image.image, 512),
        caption=f"{input_label(image)} · {width}×{height}",
        width=int(min(520, height_px * width / height)),
    )


def content_input() -> LoadedImage | None:
    """Content photo from an upload, a URL, the camera or an earlier run; errors under the input."""
    now = recall({"content_source": "Upload", "content_url": ""})
    source = st.segmented_control(
        "Content from", ["Upload", "URL", "Camera", "Recent"], default=now["content_source"], key="content_source",
        required=True,
    )  # fmt: skip
    loaded = None
    if source == "Upload":
        loaded = _from_file(st.file_uploader("Photo", type=IMAGE_TYPES, key="content_upload"))
    elif source == "URL":
        url = st.text_input("Image URL", now["content_url"], key="content_url", placeholder="https://…/photo.jpg")
        loaded = _from_url(url) if url.strip() else None
    elif source == "Camera":
        loaded = _from_file(st.camera_input("Take a photo", key="content_camera"))
    else:
        recent = _recent_inputs("content")
        if not recent:
            st.info("No earlier content images yet: they appear here after a run.", icon=":material/history:")
        else:
            choice = recall({"content_recent": None})["content_recent"]
            sha = st.selectbox(
                "Earlier photo", list(recent), index=_index(list(recent), choice) or 0, key="content_recent",
                format_func=lambda s: input_label(recent[s]),
            )  # fmt: skip
            loaded = _from_gallery(recent[sha]) if sha in recent else None
    if loaded is not None:
        preview(loaded)
    return loaded


def download_style(style: catalog.Style, *, key: str) -> None:
    """A button that downloads a catalog painting with a progress bar (or says why it can't)."""
    if not st.button("Download", key=key, icon=":material/download:", help=style.url):
        return
    bar = st.progress(0.0, text=f"Downloading {style.title}…")

    def progress(done: int, total: int | None) -> None:
        bar.progress(min(1.0, done / total) if total else 0.0, text=f"Downloading {style.title}… {done / 1e6:.1f} MB")

    try:
        catalog.style_image_path(style.id, download=True, progress=progress)
    except CatalogError as error:
        bar.empty()
        st.session_state[f"{key}_error"] = str(error)
    else:
        bar.empty()
        st.session_state.pop(f"{key}_error", None)
        st.rerun()


def style_download_error(key: str) -> None:
    if message := st.session_state.get(f"{key}_error"):
        st.error(message, icon=":material/cloud_off:")


@st.cache_data(show_spinner=False, max_entries=64)
def _style_thumbnail(style_id: str, path: str, mtime: float) -> bytes:
    del style_id, mtime  # cache key only: a re-downloaded file gets a new thumbnail
    return images.thumbnail_bytes(images.open_image(path), 256)


def style_thumbnail(style_id: str) -> bytes | None:
    """A catalog painting's thumbnail, or None while its image isn't on this machine."""
    try:
        path = catalog.style_image_path(style_id, download=False)
        return _style_thumbnail(style_id, str(path), path.stat().st_mtime)
    except (JaxstyleError, OSError):
        return None


def _toggle_style(style_id: str) -> None:
    chosen = list(st.session_state.get("style_ids", []))
    st.session_state["style_ids"] = [s for s in chosen if s != style_id] if style_id in chosen else chosen + [style_id]


def catalog_browser() -> None:
    """A popover with every painting's thumbnail and an add/remove button."""
    with st.popover("Browse paintings", icon=":material/palette:"):
        chosen = st.session_state.get("style_ids", [])
        for row in chunks(catalog.list_styles(), 3):
            for column, style in zip(st.columns(3), row, strict=False):
                with column:
                    thumb = style_thumbnail(style.id)
                    st.image(cover(thumb) if thumb else placeholder(), width="stretch")
                    st.caption(
                        f"**{style.title}** · {style.artist}, {style.year}" + ("" if thumb else " · not downloaded")
                    )
                    st.button(
                        "Remove" if style.id in chosen else "Add",
                        key=f"browse_{style.id}",
                        on_click=_toggle_style,
                        args=(style.id,),
                        disabled=style.id not in chosen and len(chosen) >= 4,
                    )


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _default_style() -> list[str]:
    available = [style.id for style in catalog.list_styles() if catalog.is_available_offline(style.id)]
    return available[:1]


def style_input() -> tuple[list[LoadedImage], list[float] | None]:
    """Style images (catalog paintings, an upload, a URL or earlier ones) and their blend weights."""
    now = recall({"style_source": "Catalog", "style_url": ""})
    source = st.segmented_control(
        "Style from", ["Catalog", "Upload", "URL", "Recent"], default=now["style_source"], key="style_source",
        required=True,
    )  # fmt: skip
    loaded: list[LoadedImage] = []
    if source == "Catalog":
        styles = {style.id: style for style in catalog.list_styles()}
        chosen_now = recall({"style_ids": _default_style()})["style_ids"]
        offline = {style_id: catalog.is_available_offline(style_id) for style_id in styles}
        chosen = st.multiselect(
            "Paintings",
            list(styles),
            default=[s for s in chosen_now if s in styles],
            key="style_ids",
            max_selections=4,
            placeholder="Choose one or more paintings",
            format_func=lambda s: styles[s].label + ("" if offline[s] else " (download)"),
        )
        catalog_browser()
        for style_id in chosen:
            image = _catalog_image(style_id)
            if image is None:
                st.warning(f"**{styles[style_id].title}** is not on this machine yet.", icon=":material/cloud_off:")
                download_style(styles[style_id], key=f"get_{style_id}")
                style_download_error(f"get_{style_id}")
            else:
                loaded.append(image)
    elif source == "Upload":
        files = st.file_uploader("Style images", type=IMAGE_TYPES, key="style_upload", accept_multiple_files=True)
        loaded = [image for image in (_from_file(file) for file in (files or [])[:4]) if image is not None]
    elif source == "URL":
        url = st.text_input("Style image URL", now["style_url"], key="style_url", placeholder="https://…/painting.jpg")
        image = _from_url(url) if url.strip() else None
        loaded = [image] if image else []
    else:
        recent = _recent_inputs("style")
        if not recent:
            st.info("No earlier style images yet: they appear here after a run.", icon=":material/history:")
        chosen_now = recall({"style_recent": []})["style_recent"]
        chosen = st.multiselect(
            "Earlier styles", list(recent), default=[s for s in chosen_now if s in recent], key="style_recent",
            max_selections=4, format_func=lambda s: input_label(recent[s]),
        )  # fmt: skip
        loaded = [image for image in (_from_gallery(recent[sha]) for sha in chosen) if image is not None]
    return loaded, _blend_input(loaded)


def _blend_input(styles: list[LoadedImage]) -> list[float] | None:
    """Thumbnails of the chosen styles; with several, a blend slider under each."""
    if not styles:
        return None
    blend = []
    for column, style in zip(st.columns(4), styles, strict=False):
        with column:
            st.image(images.thumbnail_bytes(style.image, 256), caption=input_label(style), width="stretch")
            if len(styles) > 1:
                key = f"blend_{style.sha256[:12]}"
                weight = recall({key: 1.0})[key]
                blend.append(st.slider("Weight", 0.0, 1.0, weight, step=0.05, key=key))
    if len(styles) == 1:
        return None
    if sum(blend) <= 0:
        st.error("At least one style needs a weight above 0.", icon=":material/error:")
        return None
    st.caption(
        "Blend: " + " · ".join(f"{input_label(s)} {w / sum(blend):.0%}" for s, w in zip(styles, blend, strict=True))
    )
    return blend


# ----- settings -----------------------------------------------------------------------------------


def _log_options(low_exp: int, high_exp: int, *, per_decade: int = 4, zero: bool = True) -> list[float]:
    """Round numbers spaced evenly on a log scale: 1, 1.8, 3.2, 5.6, 10, … (and 0 first)."""
    values = [float(f"{10 ** (k / per_decade):.2g}") for k in range(low_exp * per_decade, high_exp * per_decade + 1)]
    return ([0.0] if zero else []) + values


_WEIGHT_OPTIONS = _log_options(-3, 5)
_LR_OPTIONS = _log_options(-4, 0, zero=False)
_SIZE_OPTIONS = [32, 48, 64, 96, 128, 192, 256, 320, 384, 448, 512, 640, 768, 896, 1024, 1280, 1536, 2048]
_SCALE_MIN_OPTIONS = [0, 64, 96, 128, 192, 256, 384, 512]
_EMA_OPTIONS = [0.0, 0.5, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999]
_PYRAMID_OPTIONS = list(range(1, 7))


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
    return "Quick preview" if device() == "cpu" else "Balanced"


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
            size_options = _with(_SIZE_OPTIONS, v["s_size_px"])
            st.select_slider("Size (long side, px)", size_options, v["s_size_px"], key="s_size_px", **kw)
            st.number_input("Iterations", *RANGES["iterations"], v["s_iterations"], step=10, key="s_iterations", **kw)
            st.number_input("Seed", *RANGES["seed"], v["s_seed"], step=1, key="s_seed", **kw)
            st.radio(
                "Start from", INITS, _index(INITS, v["s_init"]), key="s_init", horizontal=True,
                format_func=str.capitalize, **kw,
            )  # fmt: skip
            st.selectbox(
                "Preserve colors", PRESERVE_COLORS, _index(PRESERVE_COLORS, v["s_preserve_color"]),
                key="s_preserve_color", **kw,
                format_func={"none": "No (take the style's colors)", "luminance": "Luminance only",
                             "histogram": "Match the photo's colors"}.get,
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
                "Style loss", STYLE_LOSSES, _index(STYLE_LOSSES, v["s_style_loss"]), key="s_style_loss",
                horizontal=True, **kw,
                format_func={"gram": "Gram (Gatys)", "w2": "Wasserstein-2"}.get,
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
                "Optimizer", OPTIMIZERS, _index(OPTIMIZERS, v["s_optimizer"]), key="s_optimizer", horizontal=True, **kw,
                format_func={"adam": "Adam", "lbfgs": "L-BFGS"}.get,
            )  # fmt: skip
            st.select_slider(
                "Learning rate (Adam)", _with(_LR_OPTIONS, v["s_learning_rate"]), v["s_learning_rate"],
                key="s_learning_rate", disabled=v["s_optimizer"] == "lbfgs", **kw,
            )  # fmt: skip
            st.number_input(
                "Warm-up iterations (Adam)", *RANGES["warmup_iterations"], v["s_warmup_iterations"], step=10,
                key="s_warmup_iterations", disabled=v["s_optimizer"] == "lbfgs",
                help=f"Adam's step rises from {transfer.WARMUP_START:.0%} of the learning rate to all of it over "
                "these iterations, at each scale: full steps at the start overshoot and add noise.", **kw,
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
                "Pooling", POOLINGS, _index(POOLINGS, v["s_pooling"]), key="s_pooling", horizontal=True,
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
        + f"{'L-BFGS' if settings.optimizer == 'lbfgs' else 'Adam'} · style/content weight {ratio:g}"
    )
    return settings


_FIELDS = tuple(
    f.name for f in dataclasses.fields(TransferSettings) if f.name not in ("style_blend", "style_layer_weights")
)


# ----- runs: live view and results ----------------------------------------------------------------


def loss_chart(history: Sequence[dict[str, Any]], *, height: int = 240, key: str | None = None) -> None:
    """Loss per component over the steps, on a log scale (components differ by decades)."""
    frame = pd.DataFrame(list(history))
    columns = [c for c in LOSS_COMPONENTS if c in frame]
    if frame.empty or not columns:
        st.caption("No losses recorded yet.")
        return
    long = frame.melt(id_vars=["step"], value_vars=columns, var_name="loss", value_name="value")
    long = long[long["value"] > 0]
    chart = (
        alt.Chart(long)
        .mark_line()
        .encode(
            x=alt.X("step:Q", title="iteration"),
            y=alt.Y("value:Q", title="loss", scale=alt.Scale(type="log")),
            color=alt.Color("loss:N", sort=list(LOSS_COMPONENTS), title=None),
            tooltip=["step", "loss", alt.Tooltip("value:Q", format=".4g")],
        )
        .properties(height=height)
    )
    st.altair_chart(chart, key=key)


def _cancel(run_id: int) -> None:
    runner().cancel(run_id)


@st.fragment(run_every=POLL_S)
def live_run(run_id: int) -> None:
    """A queued or running run, refreshed every second; reruns the page once it has ended."""
    snap = follow.snapshot(runner(), run_id)
    if snap is None or snap.finished:
        st.rerun()
    position = runner().position(run_id)
    top = st.columns([4, 1], vertical_alignment="center")
    with top[0]:
        if snap.status == "queued":
            ahead = (position or 1) - 1
            st.progress(0.0, text="Waiting for the worker" + (f": {ahead} run(s) ahead" if ahead else "…"))
        elif snap.step == 0:
            st.progress(0.0, text="Preparing: compiling for this image size (the first run at a size takes longest)…")
        else:
            st.progress(
                snap.fraction,
                text=f"Iteration {snap.step} / {snap.total_steps} · {snap.its_per_s:.1f} it/s · "
                f"{snap.size_px} px · {snap.elapsed_s:.0f} s",
            )
    with top[1]:
        st.button(
            "Cancel", key="cancel", icon=":material/stop_circle:", on_click=_cancel, args=(run_id,), width="stretch"
        )
    preview_png = snap.preview_png
    if preview_png is None and snap.status == "running":
        with contextlib.suppress(JaxstyleError), db() as conn:
            preview_png = gallery.run_preview(conn, run_id)
    if preview_png:
        st.image(preview_png, caption=f"Iteration {snap.step}: the image so far", width="stretch")
    else:
        st.image(placeholder(), width="stretch")
    if snap.history:
        loss_chart(snap.history, height=160, key=f"live_chart_{run_id}")


def settings_table(settings: dict[str, Any]) -> None:
    rows = [{"setting": name, "value": _fmt_value(value)} for name, value in settings.items()]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", height="content")


def _fmt_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list | tuple):
        return ", ".join(_fmt_value(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def run_inputs(run: gallery.Run) -> None:
    """The content and style images of a stored run, small, with their names."""
    with db() as conn:
        content = gallery.input_image(conn, run.content.sha256)
        styles = [(info, gallery.input_image(conn, info.sha256)) for info in run.styles]
    st.image(images.thumbnail_bytes(images.open_image(content), 384), caption=f"Content: {input_label(run.content)}")
    for info, data in styles:
        blend = f" ({info.blend:.0%})" if len(styles) > 1 and info.blend is not None else ""
        st.image(images.thumbnail_bytes(images.open_image(data), 384), caption=f"Style: {input_label(info)}{blend}")


def run_facts(run: gallery.Run) -> str:
    """One line: time, device and weights of a finished run."""
    parts = []
    if run.run_s is not None:
        parts.append(f"{run.run_s:.1f} s (+{run.compile_s or 0:.1f} s compile)")
    if run.device:
        parts.append(run.device)
    if run.weights_source:
        parts.append(f"{run.weights_source} weights")
    return " · ".join(parts)


def result_view(run_id: int, *, key: str = "result") -> None:
    """A finished run: its image beside the inputs, download, settings, and a link to the gallery."""
    with db() as conn:
        run = gallery.get_run(conn, run_id)
        png = gallery.run_image(conn, run_id)
    if run.status == "cancelled":
        st.info(f"Run #{run.id} was cancelled ({run.error}).", icon=":material/cancel:")
    elif run.status == "failed":
        st.error(f"Run #{run.id} failed: {run.error}", icon=":material/error:")
    if png is None:
        return
    image_col, inputs_col = st.columns([3, 1])
    with image_col:
        st.image(png, width="stretch")
    with inputs_col:
        run_inputs(run)
    actions = st.container(horizontal=True)
    actions.download_button(
        "Download PNG", png, file_name=images.safe_filename(f"{run.title or f'run-{run.id}'}.png"),
        mime="image/png", key=f"{key}_download", icon=":material/download:", on_click="ignore", type="primary",
    )  # fmt: skip
    actions.page_link(
        GALLERY_PAGE, label="Open in the gallery", icon=":material/photo_library:", query_params={"run": run.id}
    )
    st.caption(run_facts(run))
    with st.expander("Settings used", icon=":material/tune:"):
        settings_table(run.settings)
    with st.expander("Loss curves", icon=":material/show_chart:"):
        loss_chart(run.loss_history, key=f"{key}_chart_{run.id}")


def run_view(run_id: int) -> None:
    """Follow a run: live while queued/running, the result once it has ended."""
    snap = follow.snapshot(runner(), run_id)
    with contextlib.suppress(gallery.RunNotFound), db() as conn:
        st.markdown(f"**{run_label(gallery.get_run(conn, run_id))}**")
    if snap is None:
        st.info(f"Run #{run_id} is no longer in the gallery.", icon=":material/info:")
    elif snap.finished:
        result_view(run_id)
    else:
        live_run(run_id)


# ----- gallery cards and picking runs -------------------------------------------------------------


def open_run(run_id: int) -> None:
    st.query_params["run"] = str(run_id)


def run_card(summary: gallery.RunSummary, thumb: bytes | None, *, key: str) -> None:
    """One gallery card: thumbnail, title, status and age, an Open button."""
    with st.container(border=True):
        st.image(cover(thumb) if thumb else placeholder(), width="stretch")
        star = ":material/star: " if summary.favorite else ""
        st.markdown(f"**{star}{summary.title or f'Run #{summary.id}'}**")
        meta = st.container(horizontal=True, vertical_alignment="center")
        with meta:
            if summary.status != "done":
                status_badge(summary.status)
            st.caption(f"#{summary.id} · {ago(summary.created)}")
        st.button("View", key=f"{key}_{summary.id}", on_click=_go_to_run, args=(summary.id,), width="stretch")


def _go_to_run(run_id: int) -> None:
    st.session_state["goto_run"] = run_id


def follow_card_clicks() -> None:
    """After a card's Open click (a callback can't change page): go to the run in the gallery."""
    run_id = st.session_state.pop("goto_run", None)
    if run_id is not None:
        st.switch_page(GALLERY_PAGE, query_params={"run": run_id})


def run_grid(summaries: Sequence[gallery.RunSummary], *, key: str, columns: int = 4) -> None:
    with db() as conn:
        thumbs = gallery.thumbnails(conn, [s.id for s in summaries])
    for row in chunks(list(summaries), columns):
        for column, summary in zip(st.columns(columns), row, strict=False):
            with column:
                run_card(summary, thumbs.get(summary.id), key=key)


def run_label(summary: gallery.RunSummary | gallery.Run) -> str:
    return f"#{summary.id} · {summary.title or 'untitled'}"


# ----- re-run: Generate pre-filled from a stored run ----------------------------------------------


def request_rerun(run_id: int) -> None:
    """Open Generate with this run's inputs and settings (the page reads it on its next render)."""
    st.session_state["prefill_run"] = run_id
    st.switch_page(GENERATE_PAGE)


def prefill_from_run() -> None:
    """If a re-run was asked for, put the stored run's inputs and settings into Generate's widgets."""
    run_id = st.session_state.pop("prefill_run", None)
    if run_id is None:
        return
    with guard(f"re-running run #{run_id}"), db() as conn:
        run = gallery.get_run(conn, run_id)
        settings = TransferSettings.from_dict(gallery.rerun_settings(conn, run_id))
        ss = st.session_state
        ss["content_source"], ss["content_recent"] = "Recent", run.content.sha256
        ids = [info.origin for info in run.styles if info.origin_kind == "catalog"]
        if len(ids) == len(run.styles) and all(catalog.is_available_offline(i) for i in ids):
            ss["style_source"], ss["style_ids"] = "Catalog", ids
        else:
            ss["style_source"], ss["style_recent"] = "Recent", [info.sha256 for info in run.styles]
        for info in run.styles:
            ss[f"blend_{info.sha256[:12]}"] = round((info.blend if info.blend is not None else 1.0) * 20) / 20
        preset = next((name for name, p in PRESETS.items() if p.replace(seed=settings.seed) == settings), None)
        apply_settings(settings.replace(style_blend=None), preset)
        ss.pop("run_id", None)
        st.toast(f"Settings and images of run #{run_id} loaded.", icon=":material/replay:")


# ----- gallery ------------------------------------------------------------------------------------

GALLERY_PAGE_SIZE = 12


def _reset_gallery_page() -> None:
    st.session_state["g_page"] = 1


def gallery_filters() -> dict[str, Any]:
    """The gallery's filter row; returns keyword arguments for ``gallery.list_runs``."""
    with db() as conn:
        styles = {info.sha256: info for info in gallery.list_inputs(conn, "style")}
        tags = sorted({tag for run in gallery.list_runs(conn, limit=1000) for tag in run.tags}, key=str.lower)
    now = recall({"g_text": "", "g_style": None, "g_tag": None, "g_status": [], "g_fav": False})
    kw: dict[str, Any] = {"on_change": _reset_gallery_page}
    search, style_col, tag_col, status_col, date_col, fav_col = st.columns(
        [3, 2, 2, 2, 2, 1.6], vertical_alignment="bottom"
    )
    text = search.text_input(
        "Search titles", now["g_text"], key="g_text", placeholder="Search titles", icon=":material/search:", **kw
    )
    style = style_col.selectbox(
        "Style", list(styles), key="g_style", index=_index(list(styles), now["g_style"]), placeholder="Any style",
        format_func=lambda s: input_label(styles[s]), **kw,
    )  # fmt: skip
    tag = tag_col.selectbox("Tag", tags, _index(tags, now["g_tag"]), key="g_tag", placeholder="Any tag", **kw)
    status = status_col.multiselect(
        "Status",
        gallery.RUN_STATUSES,
        now["g_status"],
        key="g_status",
        placeholder="Any status",
        format_func=str.capitalize,
        **kw,
    )
    dates = date_col.date_input("Created", value=(), key="g_dates", **kw)
    favorite = fav_col.toggle("Starred", now["g_fav"], key="g_fav", help="Only favorites", **kw)
    since, until = (tuple(dates) + (None, None))[:2] if dates else (None, None)
    return {
        "text": text.strip() or None,
        "style": style,
        "tag": tag,
        "status": status or None,
        "since": since,
        "until": until or since,
        "favorite": True if favorite else None,
    }


def gallery_grid(filters: dict[str, Any]) -> None:
    """The filtered runs, newest first, as pages of thumbnail cards."""
    with db() as conn:
        total = gallery.count_runs(conn, **filters)
        pages = max(1, math.ceil(total / GALLERY_PAGE_SIZE))
        page = min(int(st.session_state.get("g_page", 1)), pages)
        runs = gallery.list_runs(conn, **filters, limit=GALLERY_PAGE_SIZE, offset=(page - 1) * GALLERY_PAGE_SIZE)
    if not runs:
        filtered = any(value for value in filters.values())
        st.info(
            "No runs match these filters." if filtered else "The gallery is empty: generate an image first.",
            icon=":material/photo_library:",
        )
        return
    st.caption(f"{total} run{'s' if total != 1 else ''}, newest first")
    run_grid(runs, key="gallery_open")
    if pages > 1:
        with st.container(horizontal_alignment="center"):
            st.pagination(pages, key="g_page", default=page)


def _toggle_favorite(run_id: int, favorite: bool) -> None:
    with db() as conn:
        gallery.set_favorite(conn, run_id, favorite)


def _rename(run_id: int) -> None:
    with db() as conn:
        gallery.set_title(conn, run_id, st.session_state[f"title_{run_id}"])


def _retag(run_id: int) -> None:
    with db() as conn:
        gallery.set_tags(conn, run_id, st.session_state[f"tags_{run_id}"])


def _delete(run_id: int) -> None:
    try:
        with db() as conn:
            gallery.delete_run(conn, run_id)
    except JaxstyleError as error:
        st.session_state["delete_error"] = str(error)
        return
    st.query_params.pop("run", None)
    st.session_state["compare_ids"] = [i for i in st.session_state.get("compare_ids", []) if i != run_id]
    st.toast(f"Run #{run_id} deleted.", icon=":material/delete:")


def add_to_comparison(run_id: int) -> None:
    chosen = [i for i in recall({"compare_ids": []})["compare_ids"] if i != run_id]
    st.session_state["compare_ids"] = (chosen + [run_id])[-4:]
    st.toast(f"Run #{run_id} added to the comparison ({len(st.session_state['compare_ids'])} of up to 4).")


def close_run() -> None:
    st.query_params.pop("run", None)


def run_detail(run_id: int) -> None:
    """One run in full: image, inputs, every setting, loss curves, facts, and what to do with it."""
    with db() as conn:
        run = gallery.get_run(conn, run_id)
        png = gallery.run_image(conn, run_id)
        all_tags = sorted({t for r in gallery.list_runs(conn, limit=1000) for t in r.tags} | set(run.tags))
    st.button("Back to the gallery", key="back", icon=":material/arrow_back:", on_click=close_run, type="tertiary")
    title_col, badge_col = st.columns([6, 1], vertical_alignment="center")
    title_col.title(("★ " if run.favorite else "") + (run.title or f"Run #{run.id}"), anchor=False)
    with badge_col:
        status_badge(run.status)
    image_col, side_col = st.columns([3, 2], gap="large")
    with image_col:
        if png is not None:
            st.image(png, width="stretch")
        elif run.status in gallery.ACTIVE_STATUSES:
            live_run(run.id)
        else:
            st.error(f"{run.status.capitalize()}: {run.error}", icon=":material/error:")
    with side_col:
        inputs = st.columns(1 + len(run.styles))
        with db() as conn:
            datas = [gallery.input_image(conn, info.sha256) for info in (run.content, *run.styles)]
        for column, info, data, role in zip(
            inputs, (run.content, *run.styles), datas, ["Content"] + ["Style"] * len(run.styles), strict=True
        ):
            blend = f" {info.blend:.0%}" if role == "Style" and len(run.styles) > 1 and info.blend is not None else ""
            column.image(
                cover(data),
                caption=f"{role}: {input_label(info)}{blend}",
                width="stretch",
            )
        st.caption(
            f"#{run.id} · created {run.created.astimezone():%Y-%m-%d %H:%M}"
            + (f" · {run_facts(run)}" if run_facts(run) else "")
            + (f" · group {run.group_id}" if run.group_id else "")
        )
        if run.final_losses:
            st.caption(
                "Final loss: " + " · ".join(f"{k} {v:.3g}" for k, v in run.final_losses.items() if k in LOSS_COMPONENTS)
            )
        st.session_state[f"title_{run.id}"] = run.title
        st.text_input("Title", key=f"title_{run.id}", on_change=_rename, args=(run.id,))
        st.session_state[f"tags_{run.id}"] = list(run.tags)
        st.multiselect(
            "Tags", all_tags, key=f"tags_{run.id}", accept_new_options=True, placeholder="Add a tag",
            on_change=_retag, args=(run.id,),
        )  # fmt: skip
        actions = st.container(horizontal=True)
        if png is not None:
            actions.download_button(
                "PNG", png, file_name=images.safe_filename(f"{run.title or f'run-{run.id}'}.png"), mime="image/png",
                key="detail_download", icon=":material/download:", on_click="ignore",
            )  # fmt: skip
        actions.button(
            "Unfavorite" if run.favorite else "Favorite", key="favorite", icon=":material/star:",
            on_click=_toggle_favorite, args=(run.id, not run.favorite),
        )  # fmt: skip
        if actions.button("Re-run", key="rerun", icon=":material/replay:"):
            request_rerun(run.id)
        actions.button(
            "Compare", key="add_compare", icon=":material/compare:", on_click=add_to_comparison, args=(run.id,)
        )
        with actions.popover("Delete", icon=":material/delete:"):
            if run.status in gallery.ACTIVE_STATUSES:
                st.caption("This run is still going; cancel it first.")
                st.button("Cancel the run", key="detail_cancel", on_click=_cancel, args=(run.id,))
            else:
                st.markdown(f"Delete **{run.title or f'run #{run.id}'}** and its image? This can't be undone.")
                st.button("Delete for good", key="confirm_delete", type="primary", on_click=_delete, args=(run.id,))
        if message := st.session_state.pop("delete_error", None):
            st.error(message, icon=":material/error:")
        if st.session_state.get("compare_ids"):
            st.page_link(
                COMPARE_PAGE, label=f"Compare {len(st.session_state['compare_ids'])} chosen runs",
                icon=":material/arrow_forward:",
            )  # fmt: skip
    settings_tab, losses_tab = st.tabs(["Settings", "Loss curves"])
    with settings_tab:
        settings_table(run.settings)
    with losses_tab:
        loss_chart(run.loss_history, key=f"detail_chart_{run.id}")


# ----- compare and weight sweeps ------------------------------------------------------------------


def compare_picker() -> list[int]:
    """Choose 2–4 finished runs, directly or as a group (e.g. a weight sweep)."""
    with db() as conn:
        done = gallery.list_runs(conn, status="done", limit=200)
        groups = list(dict.fromkeys(run.group_id for run in gallery.list_runs(conn, limit=1000) if run.group_id))
    by_id = {run.id: run for run in done}
    ss = st.session_state
    chosen_now = [i for i in recall({"compare_ids": []})["compare_ids"] if i in by_id]
    if "compare_ids" in ss and ss["compare_ids"] != chosen_now:  # some were deleted meanwhile
        ss["compare_ids"] = chosen_now
    pick_col, group_col = st.columns([3, 1], vertical_alignment="bottom")
    chosen = pick_col.multiselect(
        "Runs to compare", list(by_id), chosen_now, key="compare_ids", max_selections=4,
        placeholder="Choose 2 to 4 runs",
        format_func=lambda i: run_label(by_id[i]),
    )  # fmt: skip
    group_col.selectbox(
        "Or a group", groups, key="cmp_group", index=None, placeholder="Pick a group",
        on_change=_pick_group, args=(by_id,),
    )  # fmt: skip
    return chosen


def _pick_group(by_id: dict[int, Any]) -> None:
    group = st.session_state.get("cmp_group")
    if group:
        members = sorted((run for run in by_id.values() if run.group_id == group), key=lambda r: r.style_weight)
        st.session_state["compare_ids"] = [run.id for run in members][:4]


def _highlight(row: pd.Series, differing: set[str]) -> list[str]:
    style = "background-color: rgba(255, 196, 0, 0.25); font-weight: 600" if row.name in differing else ""
    return [style] * len(row)


def comparison(run_ids: Sequence[int]) -> None:
    """Runs side by side: images at the same width, a settings table with differences marked, losses overlaid."""
    with db() as conn:
        comp = gallery.compare_runs(conn, run_ids)
        pngs = {run.id: gallery.run_image(conn, run.id) for run in comp.runs}
    # At least three slots, so two runs don't fill the screen and push the table out of view.
    for column, run in zip(st.columns(max(3, len(comp.runs))), comp.runs, strict=False):
        with column:
            if pngs[run.id]:
                st.image(pngs[run.id], width="stretch")
            st.markdown(f"**{run_label(run)}**")
            st.caption(run_facts(run))
    labels = [run_label(run) for run in comp.runs]
    st.subheader("Settings", anchor=False)
    if comp.differing:
        st.markdown("Differs: " + ", ".join(f"`{name}`" for name in comp.differing))
    else:
        st.markdown("All settings are the same; only the inputs or the randomness differ.")
    now = recall({"cmp_only_diff": False, "cmp_loss": "total"})
    only = st.toggle("Only the differing settings", now["cmp_only_diff"], key="cmp_only_diff")
    names = [n for n in comp.settings if not only or n in comp.differing]
    table = pd.DataFrame({label: [_fmt_value(comp.settings[n][k]) for n in names] for k, label in enumerate(labels)})
    table.index = names
    st.dataframe(
        table.style.apply(_highlight, axis=1, differing=set(comp.differing)), width="stretch", height="content"
    )
    st.subheader("Loss curves", anchor=False)
    component = st.segmented_control("Loss", LOSS_COMPONENTS, default=now["cmp_loss"], key="cmp_loss", required=True)
    rows = [
        {"run": label, "step": entry["step"], "value": entry.get(component)}
        for label, run in zip(labels, comp.runs, strict=True)
        for entry in comp.loss_histories[run.id]
    ]
    frame = pd.DataFrame(rows)
    if frame.empty:
        st.caption("No loss history recorded.")
        return
    frame = frame[frame["value"] > 0]
    st.altair_chart(
        alt.Chart(frame)
        .mark_line()
        .encode(
            x=alt.X("step:Q", title="iteration"),
            y=alt.Y("value:Q", title=f"{component} loss", scale=alt.Scale(type="log")),
            color=alt.Color("run:N", title=None, legend=alt.Legend(orient="bottom")),
            tooltip=["run", "step", alt.Tooltip("value:Q", format=".4g")],
        )
        .properties(height=300),
        key="cmp_chart",
    )


def sweep_form(content: LoadedImage | None, styles: list[LoadedImage], blend: list[float] | None) -> None:
    """Settings of a weight sweep and the button that queues it as one group."""
    ss = st.session_state
    count_col, range_col, size_col, iter_col = st.columns([1, 2, 1, 1])
    now = recall(
        {"sw_count": 5, "sw_range": (1.0, 10000.0), "sw_size": 128 if device() == "cpu" else 384, "sw_iterations": 100}
    )
    count = count_col.slider("Values", 2, 7, now["sw_count"], key="sw_count")
    low, high = range_col.select_slider(
        "Style / content weight from … to", sweeps.SWEEP_RATIOS, tuple(now["sw_range"]), key="sw_range",
        format_func=lambda v: f"{v:g}",
    )  # fmt: skip
    size_px = size_col.select_slider("Size (px)", _SIZE_OPTIONS, now["sw_size"], key="sw_size")
    iterations = iter_col.number_input("Iterations", 1, 5000, now["sw_iterations"], step=10, key="sw_iterations")
    ratios = sweeps.sweep_ratios(low, high, count)
    st.caption("Ratios: " + " · ".join(f"{r:g}" for r in ratios))
    if st.button(
        "Start the sweep", key="sweep", type="primary", icon=":material/grid_view:", disabled=not (content and styles)
    ):
        with guard("starting the sweep"):
            base = PRESETS["Quick preview"].replace(size_px=int(size_px), iterations=int(iterations))
            ss["sweep_group"] = sweeps.start_sweep(runner(), base, content, styles, blend, ratios)


def sweep_groups() -> dict[str, str]:
    """Weight sweeps, newest first: group id → a label such as "chicago × Udnie · 5 runs · 26 Nov 18:41"."""
    with db() as conn:
        return sweeps.sweep_groups(conn)


def sweep_grid(group_id: str) -> None:
    """A sweep's runs in a row, ordered and labeled by their style/content weight ratio."""
    with db() as conn:
        runs = gallery.list_runs(conn, group_id=group_id, limit=50)
        thumbs = gallery.thumbnails(conn, [run.id for run in runs])
    runs.sort(key=sweeps.weight_ratio)
    if not runs:
        st.info("This group has no runs left.")
        return
    for column, run in zip(st.columns(len(runs)), runs, strict=True):
        with column:
            st.markdown(f"**style/content {sweeps.weight_ratio(run):g}**")
            if run.id in thumbs:
                st.image(cover(thumbs[run.id]), width="stretch")
            else:
                snap = follow.snapshot(runner(), run.id)
                st.image(placeholder(), width="stretch")
                if snap is not None:
                    status_badge(snap.status)
                    if snap.status == "running":
                        st.progress(snap.fraction)
            st.caption(f"#{run.id}")
    if st.button("Compare these", key="sweep_compare", icon=":material/compare:"):
        st.session_state["compare_ids"] = [run.id for run in runs if run.id in thumbs][:4]
        st.rerun()


@st.fragment(run_every=2 * POLL_S)
def _live_sweep_grid(group_id: str) -> None:
    with db() as conn:
        active = gallery.count_runs(conn, group_id=group_id, status=gallery.ACTIVE_STATUSES)
    if not active:
        st.rerun()
    sweep_grid(group_id)


def sweep_view(group_id: str) -> None:
    """The sweep's labeled row, refreshing itself while any of its runs is queued or running."""
    with db() as conn:
        active = gallery.count_runs(conn, group_id=group_id, status=gallery.ACTIVE_STATUSES)
    if active:
        _live_sweep_grid(group_id)
    else:
        sweep_grid(group_id)
