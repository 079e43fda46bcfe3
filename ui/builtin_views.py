"""The built-in instant models (:mod:`jaxstyle.instant.builtin`) in the app: their painters, kept per
process; their part of Generate's Instant form (``arbitrary``: the very style picker of *Optimize*
and a strength; ``styles26``: its 26 styles as thumbnails to tick; both: size, stroke scale and
colours); and the pictures of their styles that Generate and the Models page show.

Widget keys: ``i_strength``, ``ib_size``, ``ib_stroke``, ``ib_color``, ``i26_<n>`` (style n ticked)
and ``i26_blend_<n>``; ``arbitrary``'s paintings use the style picker's own keys (``style_ids``, …),
which *Optimize* shares on the same page: one picker, one choice of paintings.
"""

from __future__ import annotations

from typing import Any

import streamlit as st
from PIL import Image, ImageOps

from jaxstyle import gallery, images
from jaxstyle.inputs import LoadedImage
from jaxstyle.instant import builtin
from jaxstyle.settings import PRESERVE_COLORS
from ui.common import chunks, recall
from ui.inputs import blend_input, choose_paintings, slider_weight, style_input
from ui.settings_form import SIZE_OPTIONS

SIZES = [size for size in SIZE_OPTIONS if builtin.MIN_SIZE_PX <= size <= builtin.MAX_SIZE_PX]
STROKE_SIZES = (256, 384, 512, 768, 1024)  # "paint at this long side and upscale": offered below the size only
MAX_STYLES = 4  # styles26's styles blended at once, as many as the blend row's columns
THUMB_PX = 128  # a style's thumbnail on Generate and the Models page
GRID_COLUMNS = 5  # 26 styles in 6 rows, each about 70 px wide beside the output column
COLOR_LABELS = {"none": "The style's", "luminance": "The photo's (luminance)", "histogram": "Matched (histogram)"}


@st.cache_resource(show_spinner=False)
def builtin_painter(name: str) -> builtin.BuiltinPainter:
    """The painter of the built-in model ``name``, one per process: it keeps its compiled programs
    and the paintings' style vectors, so a second photo of a size paints without compiling."""
    return builtin.BUILTIN_MODELS[name].painter()


def _jpeg(image: Image.Image) -> bytes:
    return images.thumbnail_bytes(image, max(image.size))


@st.cache_data(show_spinner=False, max_entries=64)
def swatch(style: str, size_px: int = THUMB_PX) -> bytes:
    """``styles26``'s style ``style`` painted on the drawn card (see :func:`builtin.swatch_card`)."""
    painter = builtin_painter(builtin.STYLES26)
    assert isinstance(painter, builtin.Styles26Painter)
    return _jpeg(painter.swatch(style, size_px))


@st.cache_data(show_spinner="Painting your photo in the 26 styles…", max_entries=8)
def photo_in_styles(photo_sha: str, _photo: Image.Image) -> list[bytes]:
    """The photo's centre square painted in each of ``styles26``'s styles, shown at THUMB_PX.

    Painted at the network's smallest size, 256 px square: the swatches' own shape, so every photo
    reuses one compiled program (about 40 ms a style on a CPU after it), and the squares line up.
    """
    del photo_sha  # cache key only (the image itself is not hashed: see the leading underscore)
    square = ImageOps.fit(_photo.convert("RGB"), (builtin.MIN_SIZE_PX,) * 2, Image.Resampling.LANCZOS)
    painter = builtin_painter(builtin.STYLES26)
    thumbs = []
    for style in builtin.STYLES26_NAMES:
        painted = painter.paint(square, [style], size_px=builtin.MIN_SIZE_PX).image
        thumbs.append(_jpeg(painted.resize((THUMB_PX, THUMB_PX), Image.Resampling.LANCZOS)))
    return thumbs


def style_thumbnails(content: LoadedImage | None) -> list[bytes]:
    """``styles26``'s styles as thumbnails: the user's photo in each once there is one, else swatches."""
    if content is not None:
        return photo_in_styles(content.sha256, content.image)
    return [swatch(style) for style in builtin.STYLES26_NAMES]


def _default_size() -> int:
    # The network paints 512 px in about a tenth of a second on a CPU; the run's scoring (the VGG19
    # loss of the image and of the photo, seconds on a CPU) comes after the image is shown.
    return 512


# ----- the form -----------------------------------------------------------------------------------


def builtin_form(name: str, content: LoadedImage | None) -> dict[str, Any] | None:
    """The built-in model ``name``'s styles (with their blend) and settings; None while no style is
    chosen or a blend is invalid (the reason is shown where it is)."""
    if name == builtin.ARBITRARY:
        styles, blend = style_input()
        strength = st.slider(
            "Strength", 0.0, 1.0, recall({"i_strength": 1.0})["i_strength"], step=0.05, key="i_strength",
            help="1 paints the painting's style; lower moves towards the photo's own style: the network's "
            "*less style*, not a fade between two images.",
        )  # fmt: skip
    else:
        styles, blend = _styles26_input(content)
        strength = 1.0  # styles26 has no strength: its styles are blended instead
    size_px, stroke_px, preserve_color = _paint_settings()
    if not styles:
        st.caption("Choose at least one style." if name == builtin.STYLES26 else "Choose at least one painting.")
        return None
    if len(styles) > 1 and blend is None:
        return None
    return {
        "model": name, "styles": styles, "blend": blend, "size_px": size_px, "strength": float(strength),
        "stroke_px": stroke_px, "preserve_color": preserve_color,
    }  # fmt: skip


def _styles26_input(content: LoadedImage | None) -> tuple[list[str], list[float] | None]:
    """The 26 styles as a grid of thumbnails to tick (at most MAX_STYLES), then the blend of those ticked."""
    names = builtin.STYLES26_NAMES
    thumbs = style_thumbnails(content)
    now = recall({f"i26_{style}": style == names[0] for style in names})
    ticked = [style for style in names if now[f"i26_{style}"]]
    st.caption(
        "Your photo in each style: tick one, or several to blend them."
        if content is not None
        else "Each style on a small drawn landscape (choose a photo to see it in them): tick one, or several to blend."
    )
    for row in chunks(names, GRID_COLUMNS):
        for column, style in zip(st.columns(GRID_COLUMNS, gap="small"), row, strict=False):
            with column:
                st.image(thumbs[int(style)], width="stretch")
                st.checkbox(
                    style, value=now[f"i26_{style}"], key=f"i26_{style}",
                    disabled=style not in ticked and len(ticked) >= MAX_STYLES,
                )  # fmt: skip
    chosen = [style for style in names if st.session_state.get(f"i26_{style}")]
    if len(chosen) >= MAX_STYLES:
        st.caption(f"At most {MAX_STYLES} styles at once: untick one to choose another.")
    if len(chosen) < 2:  # one style: the ticked thumbnail above is all there is to show
        return chosen, None
    return chosen, blend_input([(f"i26_blend_{s}", f"Style {s}", thumbs[int(s)]) for s in chosen])


def _paint_settings() -> tuple[int, int, str]:
    """The size, the stroke scale (0: paint at the size) and the colours."""
    ss = st.session_state
    now = recall({"ib_size": _default_size(), "ib_stroke": 0, "ib_color": "none"})
    sizes = sorted({*SIZES, now["ib_size"]})
    size_px = st.select_slider(
        "Size (long side, px)", sizes, now["ib_size"], key="ib_size",
        help="The network paints at this size (no upscaling, unless a stroke scale is chosen).",
    )  # fmt: skip
    strokes = [0, *(stroke for stroke in STROKE_SIZES if stroke < size_px)]
    if now["ib_stroke"] not in strokes:  # a smaller size leaves the stroke scale above it: back to the size
        ss.pop("ib_stroke", None)
        ss["_kept"]["ib_stroke"] = now["ib_stroke"] = 0
    stroke_col, color_col = st.columns(2)
    stroke_px = stroke_col.selectbox(
        "Stroke scale", strokes, index=strokes.index(now["ib_stroke"]), key="ib_stroke",
        format_func=lambda px: "At the size" if px == 0 else f"Paint at {px} px, upscale",
        help="Painting smaller and upscaling gives bigger strokes and a softer look.",
    )  # fmt: skip
    preserve_color = color_col.selectbox(
        "Colours", PRESERVE_COLORS, index=PRESERVE_COLORS.index(now["ib_color"]), key="ib_color",
        format_func=COLOR_LABELS.get,
        help="*The photo's (luminance)* keeps the photo's colours and takes the painting's light and dark; "
        "*Matched* moves the style's colours to the photo's.",
    )  # fmt: skip
    return int(size_px), int(stroke_px), str(preserve_color)


def choose_builtin_run(run: gallery.Run) -> None:
    """The form set to a built-in model's stored run: its styles (``arbitrary``: the paintings, in the
    style picker; ``styles26``: the ticks) with their blend, strength, size, stroke scale and colours
    (before it renders: a handoff)."""
    ss = st.session_state
    if run.model == builtin.ARBITRARY:
        choose_paintings(run.styles)
        ss["i_strength"] = float(run.settings.get("strength", 1.0))
    else:  # styles26: its styles are stored as "styles26/<n>"
        chosen = {info.origin.rsplit("/", 1)[-1]: info for info in run.styles}
        for style in builtin.STYLES26_NAMES:
            ss[f"i26_{style}"] = style in chosen
        for style, info in chosen.items():
            ss[f"i26_blend_{style}"] = slider_weight(info)
    ss["ib_size"] = run.settings.get("size_px", 512)
    ss["ib_stroke"] = run.settings.get("stroke_px", 0)
    ss["ib_color"] = run.settings.get("preserve_color", "none")
