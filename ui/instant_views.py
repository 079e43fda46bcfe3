"""Instant runs on Generate: the choice between an instant run and an optimization, the model
chooser (the built-in models first, then the gallery's trained ones), a trained model's form
(styles, blend, size; the built-in models' is :mod:`ui.builtin_views`), painting at once in the
page, the result with its loss beside the photo's, and *Refine*, which queues an ordinary
optimization that continues from the instant image.

Painting goes through :func:`jaxstyle.instant.run.run_instant` or :func:`~jaxstyle.instant.run.run_builtin`
(the CLI's paths): the run is scored and stored in the gallery, and the page shows it from there, so
session state holds only its id (and the timings the gallery does not keep). A trained model's
:class:`~jaxstyle.instant.paint.Painter` is kept per process, keyed by the model file and its
modification time: a second photo of a size paints without compiling, and a retrained model is
picked up.
"""

from __future__ import annotations

import contextlib

import streamlit as st

from jaxstyle import catalog, gallery, images, inputs, weights
from jaxstyle.errors import CatalogError
from jaxstyle.inputs import LoadedImage
from jaxstyle.instant import builtin, models
from jaxstyle.instant.paint import Painter
from jaxstyle.instant.run import run_builtin, run_instant
from jaxstyle.settings import PRESETS
from jaxstyle.site import check_run
from ui import pages
from ui.access import my_models, share, site, viewer
from ui.builtin_views import builtin_form, builtin_painter, choose_builtin_run
from ui.common import (
    db,
    failure_message,
    gallery_path,
    index_of,
    on_cpu,
    recall,
    runner,
)
from ui.inputs import blend_input, slider_weight
from ui.run_views import run_view
from ui.settings_form import SIZE_OPTIONS, default_preset

METHODS = ("Optimize", "Instant")


def _pretrained_vgg() -> bool:
    """Whether optimization runs would use the pretrained VGG19 (a look at the files, nothing loaded)."""
    return weights.weights_status().pretrained


def generate_method() -> str:
    """Optimize (a run of the optimizer, queued) or Instant (a network, at once). Without the
    pretrained VGG19, Instant is the default and a line says why: the optimization's stand-in VGG
    paints poorly, while the instant networks were trained on the real one."""
    pretrained = _pretrained_vgg()
    now = recall({"gen_method": "Optimize" if pretrained else "Instant"})["gen_method"]
    method = st.segmented_control(
        "Method", METHODS, default=now, key="gen_method", required=True,
        format_func={"Optimize": "Optimize (step by step)", "Instant": "Instant (one pass)"}.get,
        help="*Optimize* repaints the photo step by step towards any paintings (a queued run, tens of seconds "
        "or more); *Instant* paints it in one pass with a network: a built-in one (any painting, or 26 styles "
        "of its own) or one trained on the Models page.",
    )  # fmt: skip
    if not pretrained:
        st.caption(
            ":material/info: The pretrained VGG19 isn't here, so optimization runs on a stand-in that fills skies "
            "with coloured noise at 512 px; Instant paints with networks trained on the real one."
        )
    return method


def choose_method(method: str) -> None:
    """Generate's method set (before it renders: a handoff)."""
    st.session_state["gen_method"] = method


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
    return 256 if on_cpu() else 512


def model_label(name: str, records: dict[str, dict]) -> str:
    """A model as the chooser shows it: a built-in one by its title, a trained one with its styles."""
    if builtin.is_builtin(name):
        return f"{builtin.BUILTIN_MODELS[name].title} ({name})"
    count = len(records[name].get("styles", ()))
    return f"{name} · {count} style{'s' if count != 1 else ''}"


def instant_form(content: LoadedImage | None = None) -> dict | None:
    """The model (built-in ones first, then the gallery's trained ones), its styles (with blend
    weights for several) and settings; None while nothing paintable is chosen. ``content`` is the
    photo, if any: styles26 shows it in each of its styles."""
    # Records only (milliseconds): decoding every model for the chooser took 0.3 s a model at each rerun.
    records = {name: record for name, record in models.list_records(gallery_path()).items()}
    # A built-in name is the built-in's; a shared site's user sees their own models.
    trained = [name for name in my_models(records) if not builtin.is_builtin(name)]
    options = [*builtin.BUILTIN_MODELS, *trained]
    ss = st.session_state
    if "i_model" in ss and ss["i_model"] not in options:  # deleted meanwhile (e.g. in another tab)
        ss["i_model"] = options[0]
    now = recall({"i_model": options[0]})
    name = st.selectbox(
        "Model", options, index=index_of(options, now["i_model"]) or 0, key="i_model",
        format_func=lambda n: model_label(n, records),
    )  # fmt: skip
    if not trained:
        st.page_link(
            pages.MODELS.path, label="Or train a model on paintings of your own (Models page)",
            icon=":material/model_training:",
        )  # fmt: skip
    if builtin.is_builtin(name):
        return builtin_form(name, content)
    return _trained_form(painter(name).model)


def choose_model(name: str) -> None:
    """The Instant form's model chosen (before it renders: a handoff)."""
    st.session_state["i_model"] = name


def choose_instant_run(run: gallery.Run) -> None:
    """The Instant form set to a stored instant run's model, styles and settings, its result put
    away (before the form renders: a handoff)."""
    ss = st.session_state
    choose_method("Instant")
    choose_model(run.model or "")
    if builtin.is_builtin(run.model or ""):
        choose_builtin_run(run)
    else:
        styles = [info.origin.rsplit("/", 1)[-1] for info in run.styles]
        ss[f"i_styles_{run.model}"] = styles
        ss["i_size"] = run.settings.get("size_px", 512)
        for info, style in zip(run.styles, styles, strict=True):
            ss[f"i_blend_{run.model}_{style}"] = slider_weight(info)
    ss.pop("instant_run", None)
    ss.pop("refine_run", None)


def _trained_form(model: models.Model) -> dict | None:
    """A trained model's styles, their blend and the size."""
    ss = st.session_state
    name = model.name
    now = recall({"i_size": _size_default()})
    styles_key = f"i_styles_{name}"
    if styles_key in ss and not set(ss[styles_key]) <= set(model.styles):  # re-imported with other styles
        ss[styles_key] = [s for s in ss[styles_key] if s in model.styles]
    chosen_now = [s for s in recall({styles_key: list(model.styles[:1])})[styles_key] if s in model.styles]
    chosen = st.multiselect(
        "Styles", list(model.styles), default=chosen_now, key=styles_key, format_func=style_label,
        placeholder="Choose one or more of the model's styles",
    )  # fmt: skip
    blend = blend_input(
        [
            (f"i_blend_{name}_{style}", style_label(style), images.thumbnail_bytes(model.style_image(style), 256))
            for style in chosen
        ]
    )
    size_options = sorted({*SIZE_OPTIONS, now["i_size"]})
    size_px = st.select_slider("Size (long side, px)", size_options, now["i_size"], key="i_size")
    if not chosen:
        st.caption("Choose at least one style.")
        return None
    if len(chosen) > 1 and blend is None:
        return None
    return {"model": name, "styles": chosen, "blend": blend, "size_px": int(size_px)}


def paint(content: LoadedImage, request: dict) -> int | None:
    """Paint ``content`` as ``request`` asks (see :func:`instant_form`), store it in the gallery, and
    remember its id for the output column."""
    check_run(site().limits, viewer(), size_px=request["size_px"], iterations=0)  # a shared site's share
    with st.spinner("Painting… (the first photo of a size compiles the network once)"):
        if builtin.is_builtin(request["model"]):
            run = run_builtin(
                builtin_painter(request["model"]), content, request["styles"], request["blend"], runner().backend,
                size_px=request["size_px"], strength=request["strength"], stroke_px=request["stroke_px"],
                preserve_color=request["preserve_color"], gallery_path=gallery_path(), score=False,
                owner=viewer().subject,
            )  # fmt: skip
        else:
            run = run_instant(
                painter(request["model"]),
                content,
                request["styles"],
                request["blend"],
                request["size_px"],
                runner().backend,
                gallery_path=gallery_path(),
                score=False,
                owner=viewer().subject,
            )
    st.session_state["instant_run"] = run.run_id
    # Scoring (VGG19 on the image and the photo: 2–12 s on a CPU) runs after the image is shown.
    st.session_state["instant_scoring"] = (run.run_id, run.score_later)
    # The gallery keeps the network's pass and compile; the style vectors' time is this session's to show.
    st.session_state["instant_style_s"] = (run.run_id, run.result.style_s)
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


def _facts(run: gallery.Run) -> str:
    """One line: the network's pass and compile, the style vectors' time (known for this session's
    latest painting), the model, size and the settings a built-in model's run changed from the defaults."""
    parts = [f"{_duration(run.run_s or 0)} on {run.device} (+{run.compile_s or 0:.1f} s compile)"]
    style_run, style_s = st.session_state.get("instant_style_s", (None, 0.0))
    if style_run == run.id and run.model == builtin.ARBITRARY:
        parts.append(f"style {_duration(style_s)}")
    parts += [f"model {run.model}", f"{run.settings.get('size_px')} px"]
    if (strength := run.settings.get("strength", 1.0)) != 1.0:
        parts.append(f"strength {strength:g}")
    if stroke_px := run.settings.get("stroke_px", 0):
        parts.append(f"strokes painted at {stroke_px} px")
    if (colors := run.settings.get("preserve_color", "none")) != "none":
        parts.append(f"colours: {colors}")
    parts.append(f"{run.weights_source} weights for the loss")
    return " · ".join(parts)


def refine(run_id: int) -> int:
    """Queue an optimization that continues from an instant run: its image is the run's content (an
    optimization starts from its content) and the run's stored styles, blended alike, are the styles:
    a trained model's paintings, ``arbitrary``'s paintings, or ``styles26``'s swatches (that network
    holds no paintings). Its colour preservation carries over."""
    with db() as conn:
        run = gallery.visible_run(conn, run_id, viewer())
        png = gallery.run_image(conn, run_id)
        styles = [inputs.from_gallery(conn, info) for info in run.styles]
    if png is None:
        raise models.ModelError(f"run #{run_id} has no image to refine")
    content = inputs.from_upload(png, f"instant-run-{run_id}.png")
    blend = [info.blend if info.blend is not None else 1.0 for info in run.styles] if len(styles) > 1 else None
    settings = PRESETS[default_preset()].replace(
        size_px=int(run.settings.get("size_px", 512)), preserve_color=run.settings.get("preserve_color", "none")
    )
    title = f"{run.title or f'Run #{run_id}'} · refined"
    return runner().submit(settings, content, styles, style_blend=blend, title=title, tags=("refined",), **share())


def instant_output() -> None:
    """The latest instant run of this session, with download, gallery link and Refine; the
    refinement's run below it once started."""
    run_id = st.session_state.get("instant_run")
    if run_id is None:
        with st.container(border=True):
            st.markdown("**Your image appears here**")
            st.caption(
                "A network paints the photo in one pass: *Any painting* takes any painting as its style, "
                "*26 styles* its own, and a model trained on the Models page its paintings. Pick the styles "
                "and a size, then *Paint*; *Refine* then polishes the result with an optimization run."
            )
        return
    try:
        with db() as conn:
            run = gallery.visible_run(conn, run_id, viewer())
            png = gallery.run_image(conn, run_id)
    except gallery.RunNotFound:
        st.info(f"Run #{run_id} is no longer in the gallery.", icon=":material/info:")
        return
    st.markdown(f"**#{run.id} · {run.title}**")
    if png is None:
        st.error(f"Run #{run.id} {run.status}: {run.error}", icon=":material/error:")
        return
    st.image(png, width="stretch")
    scores = st.empty()
    with scores.container():
        _losses_line(run)
    st.caption(_facts(run))
    actions = st.container(horizontal=True)
    actions.download_button(
        "Download PNG", png, file_name=images.safe_filename(f"{run.title or f'run-{run.id}'}.png"), mime="image/png",
        key="instant_download", icon=":material/download:", on_click="ignore", type="primary",
    )  # fmt: skip
    refine_clicked = actions.button("Refine", key="refine", icon=":material/auto_fix_high:")
    actions.page_link(
        pages.GALLERY.path, label="Open in the gallery", icon=":material/photo_library:", query_params={"run": run.id}
    )
    styles = {
        builtin.ARBITRARY: "the paintings",
        builtin.STYLES26: "the styles' swatches (the network holds no paintings: each style painted on a small "
        "drawn landscape stands in for one)",
    }.get(run.model or "", "the model's paintings")
    st.caption(
        "*Refine* queues an optimization run that starts from this image: the instant image is that run's "
        f"content photo, {styles} its styles, with the *{default_preset()}* preset."
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
    _score_pending(run, scores)


def _score_pending(run: gallery.Run, placeholder) -> None:
    """Score this session's latest instant run if it was painted without its losses, once the page
    shows its image (so Paint shows the picture in a fraction of a second and the loss after)."""
    pending_id, score_later = st.session_state.get("instant_scoring", (None, None))
    if run.final_losses or pending_id != run.id or score_later is None:
        if not run.final_losses and run.status == "done" and pending_id != run.id:
            placeholder.caption("This run's loss was not scored.")
        return
    st.session_state.pop("instant_scoring", None)
    with placeholder.container(), st.spinner("Scoring the image with the optimization's loss…"):
        try:
            score_later()
        except Exception as error:  # noqa: BLE001 — the image is stored; only its loss is missing
            st.warning(failure_message(error, "scoring the image"), icon=":material/warning:")
            return
    st.rerun()
