"""The Models page's parts: the built-in models as cards (what they paint, their styles, their credit),
each trained model of the gallery as a card (styles, training record, loss curve, a sample, export,
delete, resume), the import of a model file, the form that trains a new model in the background,
and the live view of the trainings going on.

Training runs on a thread of :class:`jaxstyle.instant.background.Trainings` (one registry per
gallery and process, :func:`ui.common.trainings`), so a rerun or another tab sees it; its live view
is a fragment that refreshes itself like a run's (:func:`ui.run_views.live_run`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from jaxstyle import catalog, gallery, images, inputs, runs
from jaxstyle.instant import background, builtin, models
from jaxstyle.instant.train import TrainSettings, gallery_photos, recorded_settings
from ui import handoff
from ui.access import check_my_model, check_training_allowed, my_models, own_inputs_owner, record_model_owner
from ui.builtin_views import swatch
from ui.common import (
    IMAGE_TYPES,
    POLL_S,
    chunks,
    cover,
    db,
    failure_message,
    gallery_path,
    on_cpu,
    recall,
    trainings,
)
from ui.instant_views import painter_at, style_label

SAMPLE_PX = 256
TRAIN_SIZES = [32, 48, 64, 96, 128, 192, 256, 320, 384, 512]

# ----- one model ----------------------------------------------------------------------------------

CHART_POINTS = 500  # a long training's curve is drawn as at most this many bins of steps


def binned_losses(steps: Sequence[int], losses: Sequence[float], points: int = CHART_POINTS) -> pd.DataFrame:
    """The training curve in at most ``points`` bins of consecutive steps: each bin's last step, and
    the mean, lowest and highest loss of its steps (positive losses only: the chart is logarithmic).

    Why bins: one step's loss is one batch's, noisy, and a record holds one per step (8,900 for the
    demo): the bin's mean is the trend, its range the noise, and the page sends 500 rows, not 8,900.
    """
    frame = pd.DataFrame({"step": list(steps), "loss": list(losses)})
    frame = frame[frame["loss"] > 0].reset_index(drop=True)
    size = max(1, -(-len(frame) // points))
    bins = frame.groupby(frame.index // size)
    loss = bins["loss"]
    return pd.DataFrame({"step": bins["step"].last(), "mean": loss.mean(), "low": loss.min(), "high": loss.max()})


def training_loss_chart(steps: Sequence[int], losses: Sequence[float], *, height: int) -> None:
    """The training loss over the steps on a log scale (the first steps are decades above the rest,
    which a linear axis squeezes the whole training under): the trend line over the noise band."""
    frame = binned_losses(steps, losses)
    if frame.empty:
        st.caption("No loss recorded yet.")
        return
    base = alt.Chart(frame).encode(x=alt.X("step:Q", title="step"))
    band = base.mark_area(opacity=0.25).encode(
        y=alt.Y("low:Q", title="training loss", scale=alt.Scale(type="log")), y2="high:Q"
    )
    trend = base.mark_line().encode(y="mean:Q", tooltip=["step", alt.Tooltip("mean:Q", title="loss", format=".4g")])
    st.altair_chart((band + trend).properties(height=height))


def _first_photo() -> tuple[str, str] | None:
    """The (sha256, label) of a photo of the gallery to paint samples of, or None."""
    with db() as conn:
        photos = gallery.list_inputs(conn, "content", owner=own_inputs_owner())
    return (photos[0].sha256, inputs.input_label(photos[0])) if photos else None


@st.cache_data(show_spinner=False, max_entries=32)
def _sample(path: str, mtime_ns: int, photo_sha: str, style: str, gallery_file: str) -> bytes:
    """A photo of the gallery painted by the model in ``path`` in ``style`` at SAMPLE_PX (PNG)."""
    with gallery.connect(gallery_file) as conn:
        photo = images.open_image(gallery.input_image(conn, photo_sha))
    result = painter_at(path, mtime_ns).paint(photo, [style], size_px=SAMPLE_PX)
    return images.png_bytes(result.image)


def _delete(name: str) -> None:
    try:
        check_my_model(name)
    except Exception as error:  # noqa: BLE001 — a callback's failure would otherwise be a traceback
        st.session_state["m_outcome"] = ("error", failure_message(error, f"deleting {name}"))
        return
    if trainings().running(name):
        st.session_state["m_outcome"] = ("error", f"{name} is still training: cancel it first.")
        return
    try:
        background.delete_model(name, gallery_path())
    except Exception as error:  # noqa: BLE001 — a callback's failure would otherwise be a traceback
        st.session_state["m_outcome"] = ("error", failure_message(error, f"deleting {name}"))
        return
    trainings().forget(name)
    st.session_state["m_outcome"] = ("success", f"Model {name} deleted.")


def _paint_with(name: str) -> None:
    handoff.open_generate(method="Instant", model=name)


def _resume(name: str) -> None:
    try:
        check_my_model(name)
        check_training_allowed()
        trainings().resume(name)
    except Exception as error:  # noqa: BLE001 — a callback's failure would otherwise be a traceback
        st.session_state["m_outcome"] = ("error", failure_message(error, f"resuming {name}"))


SWATCH_COLUMNS = 13  # styles26's 26 swatches in two rows across the page


def builtin_card(model: builtin.BuiltinModel) -> None:
    """A built-in model: what it paints, its styles (styles26's as numbered swatches), its credit.
    Nothing to export or delete: every install has it."""
    with st.container(border=True):
        st.subheader(f"{model.title} ({model.name})", anchor=False)
        st.badge("Built in: no training needed", icon=":material/verified:", color="green")
        st.caption(model.summary)
        if model.any_painting:
            st.markdown(
                "Styles: **any painting**: a catalog painting, an upload or a URL, several blended; *Strength* "
                "moves between the painting's style and the photo's own."
            )
        else:
            st.markdown(f"Styles: **{len(model.style_names)} of its own**, numbered, blendable:")
            for row in chunks(list(model.style_names), SWATCH_COLUMNS):
                for column, style in zip(st.columns(SWATCH_COLUMNS, gap="small"), row, strict=False):
                    column.image(swatch(style), caption=style, width="stretch")
        st.caption(builtin.CREDIT)
        st.button(
            "Paint with it", key=f"use_model_{model.name}", icon=":material/bolt:", type="primary",
            on_click=_paint_with, args=(model.name,),
        )  # fmt: skip


def model_card(model: models.Model) -> None:
    """One model: styles, how it was trained, its loss curve, a sample, and what to do with it."""
    meta, record = model.meta, model.meta.get("train", {})
    settings = record.get("settings", {})
    step, steps = int(meta.get("step", 0)), int(meta.get("steps", 0))
    training = trainings().running(model.name)
    with st.container(border=True):
        st.subheader(model.name, anchor=False)
        facts = [
            f"{len(model.styles)} style{'s' if len(model.styles) != 1 else ''}",
            f"{step} of {steps} steps" if step < steps else f"{steps} steps",
            f"{float(meta.get('train_s', 0.0)):.0f} s of training",
            f"{record.get('photo_count', '?')} photos",
            f"{settings.get('size_px', '?')} px scale",
            f"{recorded_settings(settings)['crop_px'] or '?'} px crops, batch {settings.get('batch', '?')}",
            f"{record.get('weights_source', 'unknown')} VGG19",
        ]
        if settings.get("decay_fraction"):
            facts.insert(-1, f"Adam's step cooled over the last {float(settings['decay_fraction']):.0%}")
        if settings.get("ema_decay"):
            facts.insert(-1, f"params averaged over the steps (EMA {float(settings['ema_decay']):g})")
        if started := record.get("started_from"):
            facts.insert(2, f"started from {started.get('model')} ({started.get('step', '?')} steps)")
        st.caption(" · ".join(facts))
        if training:
            st.caption(":material/autorenew: Training now: its progress is under *Train a new model*.")
        elif step < steps and models.checkpoint_path(model.name, gallery_path()).is_file():
            stopped, resume = st.columns([4, 1], vertical_alignment="center")
            stopped.warning(f"Training stopped at step {step} of {steps}.", icon=":material/pause_circle:")
            resume.button(
                "Resume", key=f"resume_{model.name}", icon=":material/play_arrow:", on_click=_resume,
                args=(model.name,), width="stretch",
            )  # fmt: skip
        for row in chunks(list(model.styles), 6):
            for column, style in zip(st.columns(6), row, strict=False):
                with column:
                    thumb = images.thumbnail_bytes(model.style_image(style), 256)
                    st.image(cover(thumb), caption=style_label(style), width="stretch")
        chart_col, sample_col = st.columns(2, gap="medium")
        with chart_col:
            history = meta.get("loss_history", [])
            if history:
                training_loss_chart(range(1, len(history) + 1), history, height=220)
            else:
                st.caption("No loss recorded yet.")
        with sample_col:
            photo = _first_photo()
            if photo is None:
                st.caption("A sample appears here once the gallery has a photo (after your first run).")
            else:
                path = models.model_path(model.name, gallery_path())
                try:
                    png = _sample(str(path), path.stat().st_mtime_ns, photo[0], model.styles[0], str(gallery_path()))
                except Exception as error:  # noqa: BLE001 — the card stays; only its sample is missing
                    st.caption(f"No sample: {failure_message(error, 'the sample')}")
                else:
                    st.image(png, caption=f"Sample: {photo[1]} in {style_label(model.styles[0])}, {SAMPLE_PX} px")
        actions = st.container(horizontal=True)
        actions.button(
            "Paint with it", key=f"use_model_{model.name}", icon=":material/bolt:", type="primary",
            on_click=_paint_with, args=(model.name,),
        )  # fmt: skip
        path = models.model_path(model.name, gallery_path())
        actions.download_button(
            "Export", path.read_bytes, file_name=f"{model.name}{models.MODEL_SUFFIX}",
            mime="application/octet-stream", key=f"export_{model.name}", icon=":material/download:",
            on_click="ignore",
        )  # fmt: skip
        with actions.popover("Delete", icon=":material/delete:"):
            st.markdown(f"Delete the model **{model.name}** and its checkpoint? Its runs stay in the gallery.")
            st.button(
                "Delete for good", key=f"confirm_delete_model_{model.name}", type="primary", on_click=_delete,
                args=(model.name,), disabled=training,
            )  # fmt: skip


def model_outcome() -> None:
    """The last delete, import or resume's outcome, shown once."""
    found = st.session_state.pop("m_outcome", None)
    if found is not None:
        kind, message = found
        (st.success if kind == "success" else st.error)(message, icon=_ICONS[kind])


_ICONS = {"success": ":material/check:", "error": ":material/error:"}


def model_list() -> None:
    """The built-in models, then every readable trained model of the gallery, and a line for each file
    that could not be read or that a built-in model's name hides."""
    for model in builtin.BUILTIN_MODELS.values():
        builtin_card(model)
    found, problems = models.scan_models(gallery_path())
    for problem in problems:
        st.warning(problem, icon=":material/broken_image:")
    for model in found:
        if builtin.is_builtin(model.name):  # a file from before the names were reserved
            st.warning(
                f"The model file {model.name}{models.MODEL_SUFFIX} is hidden by the built-in model of that name: "
                "rename the file to use it.",
                icon=":material/visibility_off:",
            )
    mine = set(my_models(model.name for model in found))
    found = [model for model in found if not builtin.is_builtin(model.name) and model.name in mine]
    if not found:
        st.info("No trained models yet: train one below, or import a model file.", icon=":material/model_training:")
    for model in found:
        model_card(model)


# ----- import -------------------------------------------------------------------------------------


def _import_upload() -> None:
    """Import the model file just uploaded (once: the uploader's on_change) and keep the outcome."""
    upload = st.session_state.get("m_import")
    if upload is None:
        return
    name = images.safe_filename(upload.name or "model.jaxstyle-model")
    wanted = (st.session_state.get("m_import_name") or "").strip() or None
    with tempfile.TemporaryDirectory(prefix="jaxstyle-model-") as folder:
        path = Path(folder) / name
        try:
            path.write_bytes(upload.getvalue())
            model = models.import_model(path, gallery_path(), name=wanted)
            record_model_owner(model.name)
        except Exception as error:  # noqa: BLE001 — a callback's failure would otherwise be a traceback
            # The messages name the file they read: the upload's name, not the temporary copy.
            st.session_state["m_outcome"] = ("error", failure_message(error, "the import").replace(str(path), name))
            return
    styles = ", ".join(style_label(s) for s in model.styles)
    st.session_state["m_outcome"] = ("success", f"Imported model {model.name} ({styles}).")


def model_import() -> None:
    with st.expander("Import a model file", icon=":material/upload:"):
        st.text_input("Import as", key="m_import_name", placeholder="its own name")
        st.file_uploader(
            "A .jaxstyle-model file", type=["jaxstyle-model"], key="m_import", on_change=_import_upload,
            help="A file exported here or by `python -m jaxstyle models export`.",
        )  # fmt: skip


# ----- training -----------------------------------------------------------------------------------


def train_form() -> dict[str, Any]:
    """The new model's name, styles, photos and settings, as the widgets hold them."""
    offline = [style.id for style in catalog.list_styles() if catalog.is_available_offline(style.id)]
    now = recall(
        {
            "t_name": "",
            "t_styles": offline[:1],
            "t_photos": "Gallery",
            "t_size": 256,
            "t_steps": 200 if on_cpu() else 4000,
            "t_batch": 2 if on_cpu() else 4,
            "t_crop": "half",
            "t_lr": TrainSettings.learning_rate,
            "t_decay": 0,
        }
    )
    name = st.text_input("Name", now["t_name"], key="t_name", placeholder="e.g. impressionists", max_chars=64)
    records = models.list_records(gallery_path())  # names and styles: no model is decoded for the chooser
    trained = {name: records[name] for name in my_models(records)}
    start_from = st.selectbox(
        "Start from", [None, *trained], key="t_from", format_func=lambda n: "A new network" if n is None else n,
        help="Start from a trained model's params: it goes on learning its own paintings, with these settings.",
    )  # fmt: skip
    styles, uploads = [], []
    if start_from is not None:
        labels = ", ".join(style_label(style) for style in trained[start_from]["styles"])
        st.caption(
            f"Learns {start_from}'s paintings: {labels}. To finish it on crops of the whole size, as the demo "
            "model was: *More settings*, crops of the whole size, 300 steps, learning rate 3e-4, step falling "
            "over 100%."
        )
    else:
        styles = st.multiselect(
            "Paintings to learn", offline, [s for s in now["t_styles"] if s in offline], key="t_styles",
            format_func=style_label, placeholder="Choose paintings from the catalog",
            help="Paintings not on this machine yet can be downloaded on the Styles page.",
        )  # fmt: skip
        uploads = st.file_uploader(
            "Or paintings of your own", type=IMAGE_TYPES, key="t_style_upload", accept_multiple_files=True
        )
    source = st.segmented_control(
        "Photos to learn from", ["Gallery", "Upload"], default=now["t_photos"], key="t_photos", required=True,
        format_func={"Gallery": "The gallery's photos", "Upload": "Upload photos"}.get,
    )  # fmt: skip
    photo_uploads = []
    if source == "Upload":
        photo_uploads = st.file_uploader("Photos", type=IMAGE_TYPES, key="t_photo_upload", accept_multiple_files=True)
    else:
        with db() as conn:
            count = len(gallery.list_inputs(conn, "content", owner=own_inputs_owner()))
        st.caption(f"{count} photo{'s' if count != 1 else ''} from the gallery's runs.")
    size_col, steps_col, batch_col = st.columns(3)
    size_px = size_col.select_slider(
        "Size (px)",
        TRAIN_SIZES,
        now["t_size"],
        key="t_size",
        help=(
            "The scale the model learns the paintings at (their long side). "
            "Each step paints crops of half this side (at least 32 px), or of all of it (*More settings*)."
        ),
    )
    steps = steps_col.number_input("Steps", 1, 1_000_000, now["t_steps"], step=100, key="t_steps")
    batch = batch_col.number_input("Batch", 1, 64, now["t_batch"], key="t_batch")
    with st.expander("More settings"):
        crop = st.segmented_control(
            "Crops", ["half", "whole"], default=now["t_crop"], key="t_crop", required=True,
            format_func={"half": "Half the size", "whole": "The whole size"}.get,
            help=(
                "Half: a quarter of the pixels, 4× cheaper a step: most of a training. The whole size: the "
                "network sees photos as whole as it paints them. As the finish of a long training (*Start "
                "from*) it took the demo from 1.56× to 1.37× the optimization's loss in 300 steps; it does "
                "little for a short one."
            ),
        )  # fmt: skip
        lr_col, decay_col = st.columns(2)
        learning_rate = lr_col.number_input(
            "Learning rate", 1e-5, 1e-2, float(now["t_lr"]), step=1e-4, format="%.1e", key="t_lr",
            help="Adam's step size.",
        )  # fmt: skip
        decay = decay_col.slider(
            "Step falls to 0 over the last", 0, 100, int(now["t_decay"]), step=5, format="%d%%", key="t_decay",
            help="The share of the steps over which the learning rate falls linearly to 0 (0: constant).",
        )  # fmt: skip
    st.caption(
        "Each step paints a batch of crops of the photos in one painting and lowers the optimization's loss. "
        "A useful model takes thousands of steps (best on a GPU); checkpoints are kept, so a stopped training resumes."
    )
    return {
        "name": name.strip(),
        "start_from": start_from,
        "styles": styles,
        "style_uploads": list(uploads or []),
        "photos": source,
        "photo_uploads": list(photo_uploads or []),
        "settings": {
            "size_px": int(size_px),
            "crop_px": int(size_px) if crop == "whole" else None,
            "steps": int(steps),
            "batch": int(batch),
            "learning_rate": float(learning_rate),
            "decay_fraction": decay / 100,
        },
    }


def _unique(name: str, taken: set[str]) -> str:
    base, k = name, 2
    while name in taken:
        name, k = f"{base}-{k}", k + 1
    return name


def start_training(form: dict[str, Any]) -> None:
    """Start the training the form describes, in the background (errors are raised, one line each)."""
    # Refused here, at once: the background training refuses a built-in model's name too, but only
    # once started (after its photos are kept), as a failed training.
    check_training_allowed()
    models.check_new_name(form["name"])
    if form["start_from"] is not None:
        check_my_model(form["start_from"])
        # The model's own paintings, as it keeps them (a style of its own may not be in the catalog).
        start_from = models.load_model(form["start_from"], gallery_path())
        styles = start_from.paintings()
    else:
        start_from = None
        styles = [(style_id, inputs.from_catalog(style_id, download=False).image) for style_id in form["styles"]]
        taken = {name for name, _ in styles}
        for upload in form["style_uploads"]:
            loaded = inputs.from_upload(upload.getvalue(), upload.name or "painting")
            name = _unique(Path(loaded.origin).stem or "painting", taken)
            taken.add(name)
            styles.append((name, loaded.image))
    settings = TrainSettings(**form["settings"])
    if form["photos"] == "Upload":
        photos = [(upload.name or "photo", upload.getvalue()) for upload in form["photo_uploads"]]
        keep = True
    else:
        photos, keep = gallery_photos(gallery_path(), owner=own_inputs_owner()), False
    trainings().start(form["name"], styles, photos, settings, keep_photos=keep, start_from=start_from)
    record_model_owner(form["name"])


def _cancel(name: str) -> None:
    job = trainings().get(name)
    if job is not None:
        job.cancel()


@st.fragment(run_every=POLL_S)
def _live_training(name: str) -> None:
    """A training going on, refreshed every second; reruns the page once it has ended."""
    job = trainings().get(name)
    snap = job.snapshot() if job is not None else None
    if snap is None or snap.finished:
        st.rerun()
    top = st.columns([4, 1], vertical_alignment="center")
    with top[0]:
        if snap.step == snap.start_step:
            st.progress(
                snap.fraction, text=f"**{name}** · preparing: loading the photos, the paintings' targets, compiling…"
            )
        else:
            rate = f"{snap.its_per_s * job.settings.batch:.1f} img/s · " if snap.its_per_s else ""
            st.progress(
                snap.fraction,
                text=f"**{name}** · step {snap.step} / {snap.total_steps} · {rate}loss {snap.losses['total']:.4g} · "
                f"{snap.elapsed_s:.0f} s",
            )
    with top[1]:
        st.button(
            "Cancel", key=f"cancel_train_{name}", icon=":material/stop_circle:", on_click=_cancel, args=(name,),
            width="stretch", help="Stops after writing a checkpoint: Resume continues from there.",
        )  # fmt: skip
    if snap.history:
        steps, losses = zip(*((point["step"], point["total"]) for point in snap.history), strict=True)
        training_loss_chart(steps, losses, height=160)


def training_view() -> None:
    """Every training of this gallery this process knows: live while going, then how it ended."""
    for name in my_models(trainings().names()):
        job = trainings().get(name)
        if job is None:
            continue
        snap = job.snapshot()
        with st.container(border=True):
            if not snap.finished:
                _live_training(name)
                continue
            line, dismiss = st.columns([5, 1], vertical_alignment="center")
            with line:
                if snap.status == runs.DONE:
                    st.success(
                        f"Trained **{name}**: {snap.total_steps} steps in {snap.elapsed_s:.0f} s.",
                        icon=":material/check:",
                    )
                elif snap.status == runs.CANCELLED:
                    st.info(f"**{name}**: {snap.error}.", icon=":material/pause_circle:")
                else:
                    st.error(f"Training {name} failed: {snap.error}", icon=":material/error:")
            dismiss.button("Dismiss", key=f"dismiss_{name}", on_click=trainings().forget, args=(name,), width="stretch")
