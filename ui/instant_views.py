"""Instant runs on Generate: the choice between an instant run and an optimization, a trained model's
form (model, styles, blend, size), painting at once in the page, the result with its loss beside the
photo's, and *Refine*, which queues an ordinary optimization that continues from the instant image.

Painting goes through :func:`jaxstyle.instant.run.run_instant` (the CLI's path): the run is scored
and stored in the gallery, and the page shows it from there, so session state holds only its id.
A model's :class:`~jaxstyle.instant.paint.Painter` is kept per process, keyed by the model file and
its modification time: a second photo of a size paints without compiling, and a retrained model is
picked up.
"""

from __future__ import annotations

import contextlib

import streamlit as st

from jaxstyle import catalog, gallery, images, inputs
from jaxstyle.errors import CatalogError, SettingsError
from jaxstyle.inputs import LoadedImage
from jaxstyle.instant import models
from jaxstyle.instant.paint import Painter
from jaxstyle.instant.run import run_instant
from jaxstyle.settings import PRESETS, blend_weights
from ui.common import (
    GALLERY_PAGE,
    MODELS_PAGE,
    db,
    device,
    failure_message,
    gallery_path,
    index_of,
    recall,
    runner,
    vgg_weights,
)
from ui.run_views import run_view
from ui.settings_form import SIZE_OPTIONS, default_preset

METHODS = ("Optimize", "Instant")


def generate_method() -> str:
    """Optimize (a run of the optimizer, queued) or Instant (a trained model, at once)."""
    now = recall({"gen_method": "Optimize"})["gen_method"]
    return st.segmented_control(
        "Method", METHODS, default=now, key="gen_method", required=True,
        format_func={"Optimize": "Optimize (any painting)", "Instant": "Instant (a trained model)"}.get,
        help="*Optimize* repaints the photo step by step for any painting; *Instant* paints in one pass "
        "with a model trained on the Models page.",
    )  # fmt: skip


# ----- models and painters ------------------------------------------------------------------------


def style_label(style: str) -> str:
    """A model's style by its painting's title when it is a catalog id, else its own name."""
    with contextlib.suppress(CatalogError):
        return catalog.get_style(style).title
    return style


@st.cache_resource(show_spinner=False, max_entries=4)
def painter_at(path: str, mtime_ns: int) -> Painter:
    """The painter of the model file at ``path`` as of ``mtime_ns``, kept between reruns and sessions."""
    del mtime_ns  # cache key only: a retrained or re-imported model gets a new painter
    return Painter(models.read_model(path, name=models.name_of(path)))


def painter(name: str) -> Painter:
    """The painter of the gallery's model ``name``, kept between reruns and sessions."""
    path = models.model_path(name, gallery_path())
    if not path.is_file():
        models.load_model(name, gallery_path())  # raises the ModelError that names the models there are
    return painter_at(str(path), path.stat().st_mtime_ns)


def _size_default() -> int:
    return 256 if device() == "cpu" else 512


def instant_form() -> dict | None:
    """The model, its styles (with blend weights for several) and the size; None (with a way to
    train one) when the gallery has no model yet or nothing is chosen."""
    found = {model.name: model for model in models.list_models(gallery_path())}
    if not found:
        st.info(
            "No trained model yet. A model learns one or more paintings once (minutes to hours) and then "
            "paints any photo in a fraction of a second.",
            icon=":material/model_training:",
        )
        st.page_link(MODELS_PAGE, label="Train a model on the Models page", icon=":material/arrow_forward:")
        return None
    ss = st.session_state
    if "i_model" in ss and ss["i_model"] not in found:  # deleted meanwhile (e.g. in another tab)
        ss["i_model"] = next(iter(found))
    now = recall({"i_model": next(iter(found)), "i_size": _size_default()})
    name = st.selectbox(
        "Model", list(found), index=index_of(list(found), now["i_model"]) or 0, key="i_model",
        format_func=lambda n: f"{n} · {len(found[n].styles)} style{'s' if len(found[n].styles) != 1 else ''}",
    )  # fmt: skip
    model = found[name]
    styles_key = f"i_styles_{name}"
    if styles_key in ss and not set(ss[styles_key]) <= set(model.styles):  # re-imported with other styles
        ss[styles_key] = [s for s in ss[styles_key] if s in model.styles]
    chosen_now = [s for s in recall({styles_key: list(model.styles[:1])})[styles_key] if s in model.styles]
    chosen = st.multiselect(
        "Styles", list(model.styles), default=chosen_now, key=styles_key, format_func=style_label,
        placeholder="Choose one or more of the model's styles",
    )  # fmt: skip
    blend = _blend_input(model, chosen)
    size_options = sorted({*SIZE_OPTIONS, now["i_size"]})
    size_px = st.select_slider("Size (long side, px)", size_options, now["i_size"], key="i_size")
    if not chosen:
        st.caption("Choose at least one style.")
        return None
    if len(chosen) > 1 and blend is None:
        return None
    return {"model": name, "styles": chosen, "blend": blend, "size_px": int(size_px)}


def _blend_input(model: models.Model, chosen: list[str]) -> list[float] | None:
    """Each chosen style's painting; with several, a blend slider under each."""
    if not chosen:
        return None
    blend = []
    for column, style in zip(st.columns(4), chosen, strict=False):
        with column:
            thumb = images.thumbnail_bytes(model.style_image(style), 256)
            st.image(thumb, caption=style_label(style), width="stretch")
            if len(chosen) > 1:
                key = f"i_blend_{model.name}_{style}"
                blend.append(st.slider("Weight", 0.0, 1.0, recall({key: 1.0})[key], step=0.05, key=key))
    if len(chosen) == 1:
        return None
    try:
        shares = blend_weights(blend, len(chosen))
    except SettingsError:  # the sliders can't go below 0: all of them are at 0
        st.error("At least one style needs a weight above 0.", icon=":material/error:")
        return None
    st.caption("Blend: " + " · ".join(f"{style_label(s)} {w:.0%}" for s, w in zip(chosen, shares, strict=True)))
    return blend


def paint(content: LoadedImage, request: dict) -> int | None:
    """Paint ``content`` as ``request`` asks (see :func:`instant_form`), store it in the gallery, and
    remember its id for the output column."""
    with st.spinner("Painting… (the first photo of a size compiles the network once)"):
        run = run_instant(
            painter(request["model"]),
            content,
            request["styles"],
            request["blend"],
            request["size_px"],
            vgg_weights(),
            gallery_path=gallery_path(),
        )
    st.session_state["instant_run"] = run.run_id
    st.session_state.pop("refine_run", None)
    return run.run_id


# ----- the result, and Refine ---------------------------------------------------------------------


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _losses_line(run: gallery.Run) -> None:
    """The instant image's loss (as an optimization scores it) beside the photo's, and its time."""
    total, photo = run.final_losses.get("total"), run.initial_losses.get("total")
    loss_col, photo_col, time_col = st.columns(3)
    if total is not None:
        loss_col.metric(
            "Loss", f"{total:.4g}", delta=f"{total / photo - 1:+.0%}" if photo else None, delta_color="inverse",
            border=True, help="The optimization's loss of this image; the change is against the photo's own loss.",
        )  # fmt: skip
    if photo is not None:
        photo_col.metric("The photo's loss", f"{photo:.4g}", border=True)
    if run.run_s is not None:
        time_col.metric("Painted in", _duration(run.run_s), border=True)


def refine(run_id: int) -> int:
    """Queue an optimization that continues from an instant run: its image is the run's content (an
    optimization starts from its content) and the model's paintings, blended alike, are the styles."""
    with db() as conn:
        run = gallery.get_run(conn, run_id)
        png = gallery.run_image(conn, run_id)
        styles = [inputs.from_gallery(conn, info) for info in run.styles]
    if png is None:
        raise models.ModelError(f"run #{run_id} has no image to refine")
    content = inputs.from_upload(png, f"instant-run-{run_id}.png")
    blend = [info.blend if info.blend is not None else 1.0 for info in run.styles] if len(styles) > 1 else None
    settings = PRESETS[default_preset()].replace(size_px=int(run.settings.get("size_px", 512)))
    title = f"{run.title or f'Run #{run_id}'} · refined"
    return runner().submit(settings, content, styles, style_blend=blend, title=title, tags=("refined",))


def instant_output() -> None:
    """The latest instant run of this session, with download, gallery link and Refine; the
    refinement's run below it once started."""
    run_id = st.session_state.get("instant_run")
    if run_id is None:
        with st.container(border=True):
            st.markdown("**Your image appears here**")
            st.caption(
                "A trained model paints in one pass: pick its styles and a size, then *Paint*. "
                "*Refine* then polishes the result with an ordinary optimization run."
            )
        return
    try:
        with db() as conn:
            run = gallery.get_run(conn, run_id)
            png = gallery.run_image(conn, run_id)
    except gallery.RunNotFound:
        st.info(f"Run #{run_id} is no longer in the gallery.", icon=":material/info:")
        return
    st.markdown(f"**#{run.id} · {run.title}**")
    if png is None:
        st.error(f"Run #{run.id} {run.status}: {run.error}", icon=":material/error:")
        return
    st.image(png, width="stretch")
    _losses_line(run)
    st.caption(
        f"{_duration(run.run_s or 0)} on {run.device} (+{run.compile_s or 0:.1f} s compile) · "
        f"model {run.model} · {run.settings.get('size_px')} px · {run.weights_source} weights for the loss"
    )
    actions = st.container(horizontal=True)
    actions.download_button(
        "Download PNG", png, file_name=images.safe_filename(f"{run.title or f'run-{run.id}'}.png"), mime="image/png",
        key="instant_download", icon=":material/download:", on_click="ignore", type="primary",
    )  # fmt: skip
    refine_clicked = actions.button("Refine", key="refine", icon=":material/auto_fix_high:")
    actions.page_link(
        GALLERY_PAGE, label="Open in the gallery", icon=":material/photo_library:", query_params={"run": run.id}
    )
    st.caption(
        "*Refine* queues an optimization run that starts from this image: the instant image is that run's "
        f"content photo, the model's paintings its styles, with the *{default_preset()}* preset."
    )
    if refine_clicked:
        try:
            st.session_state["refine_run"] = refine(run.id)
        except Exception as error:  # noqa: BLE001 — shown as one line, as ui.guard does
            st.error(failure_message(error, "the refinement"), icon=":material/error:")
    refine_id = st.session_state.get("refine_run")
    if refine_id is not None:
        st.divider()
        run_view(refine_id)
