"""The input images of a run, as widgets: the content photo, the style paintings (catalog, upload,
URL or earlier ones) with their blend weights, and the catalog browser.

Each source loads through :mod:`jaxstyle.inputs`, as the CLI does; a refusal is shown under its
widget, in the core's words.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from jaxstyle import catalog, gallery, images, inputs
from jaxstyle.errors import CatalogError, FetchError, JaxstyleError, SettingsError
from jaxstyle.inputs import LoadedImage, input_label
from jaxstyle.settings import blend_weights
from ui.access import own_inputs_owner
from ui.common import IMAGE_TYPES, chunks, cover, db, index_of, placeholder, recall

# ----- one source each ----------------------------------------------------------------------------


def _shown(load: Callable[[], LoadedImage], icon: str) -> LoadedImage | None:
    """The loaded image, or None with the reason shown where the input is."""
    try:
        return load()
    except JaxstyleError as error:
        st.error(str(error), icon=icon)
        return None


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
    return _shown(lambda: inputs.from_upload(file.getvalue(), file.name or "upload"), ":material/broken_image:")


def _from_gallery(info: gallery.ImageInfo) -> LoadedImage | None:
    def load() -> LoadedImage:
        with db() as conn:
            return inputs.from_gallery(conn, info)

    return _shown(load, ":material/error:")


def _catalog_image(style_id: str) -> LoadedImage | None:
    """A catalog painting if it is on this machine (no download here: that is a button)."""
    try:
        return inputs.from_catalog(style_id, download=False)
    except JaxstyleError:
        return None


def _recent_inputs(kind: str) -> dict[str, gallery.ImageInfo]:
    with db() as conn:
        return {info.sha256: info for info in gallery.list_inputs(conn, kind, owner=own_inputs_owner())}


def preview(image: LoadedImage, *, height_px: int = 200) -> None:
    width, height = image.image.size
    st.image(
        images.thumbnail_bytes(image.image, 512),
        caption=f"{input_label(image)} · {width}×{height}",
        width=int(min(520, height_px * width / height)),
    )


# ----- content --------------------------------------------------------------------------------------


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
                "Earlier photo", list(recent), index=index_of(list(recent), choice) or 0, key="content_recent",
                format_func=lambda s: input_label(recent[s]),
            )  # fmt: skip
            loaded = _from_gallery(recent[sha]) if sha in recent else None
    if loaded is not None:
        preview(loaded)
    return loaded


def choose_content(sha256: str) -> None:
    """The content picker set to an earlier photo of the gallery (before it renders: a handoff)."""
    ss = st.session_state
    ss["content_source"], ss["content_recent"] = "Recent", sha256


# ----- the style catalog ----------------------------------------------------------------------------


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


def _default_style() -> list[str]:
    available = [style.id for style in catalog.list_styles() if catalog.is_available_offline(style.id)]
    return available[:1]


# ----- style ----------------------------------------------------------------------------------------


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


def choose_catalog_paintings(style_ids: Sequence[str]) -> None:
    """The style picker set to catalog paintings (before it renders: a handoff)."""
    ss = st.session_state
    ss["style_source"], ss["style_ids"] = "Catalog", list(style_ids)


def choose_paintings(styles: Sequence[gallery.ImageInfo]) -> None:
    """The style picker set to a stored run's paintings, with their blend: from the catalog when they
    all are there, else the gallery's earlier styles (before it renders: a handoff)."""
    ss = st.session_state
    ids = [info.origin for info in styles if info.origin_kind == "catalog"]
    if len(ids) == len(styles) and all(catalog.is_available_offline(i) for i in ids):
        choose_catalog_paintings(ids)
    else:
        ss["style_source"], ss["style_recent"] = "Recent", [info.sha256 for info in styles]
    for info in styles:
        ss[_blend_key(info.sha256)] = slider_weight(info)


def _blend_key(sha256: str) -> str:
    return f"blend_{sha256[:12]}"


def _blend_input(styles: list[LoadedImage]) -> list[float] | None:
    """Thumbnails of the chosen styles; with several, a blend slider under each."""
    return blend_input([(_blend_key(s.sha256), input_label(s), images.thumbnail_bytes(s.image, 256)) for s in styles])


def slider_weight(info: gallery.ImageInfo) -> float:
    """A stored style's blend weight on the blend sliders' 0.05 steps (no weight: 1)."""
    return round((info.blend if info.blend is not None else 1.0) * 20) / 20


def blend_input(styles: Sequence[tuple[str, str, bytes]]) -> list[float] | None:
    """Each chosen style, given as (slider key, label, thumbnail), in a row of four; with several, a
    blend slider under each and the shares in a caption. The blend weights, or None for one style or
    when every weight is 0 (said under the sliders). One implementation for every style picker, so
    an optimization's, a trained model's and a built-in model's blends look and behave alike."""
    if not styles:
        return None
    blend = []
    for column, (key, label, thumb) in zip(st.columns(4), styles, strict=False):
        with column:
            st.image(thumb, caption=label, width="stretch")
            if len(styles) > 1:
                blend.append(st.slider("Weight", 0.0, 1.0, recall({key: 1.0})[key], step=0.05, key=key))
    if len(styles) == 1:
        return None
    try:
        shares = blend_weights(blend, len(styles))
    except SettingsError:  # the sliders can't go below 0: all of them are at 0
        st.error("At least one style needs a weight above 0.", icon=":material/error:")
        return None
    st.caption("Blend: " + " · ".join(f"{label} {w:.0%}" for (_, label, _), w in zip(styles, shares, strict=True)))
    return blend
