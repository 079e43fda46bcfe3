"""What every area of the app shares: the process-wide resources (job runner, device, gallery
connections), the failure guard, widget recall, and small renderers (header, badges, tiles).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import streamlit as st
from PIL import Image, ImageDraw, ImageOps

from jaxstyle import devices, gallery, images, jobs, paths, runners, runs
from jaxstyle.errors import JaxstyleError
from jaxstyle.instant.background import Trainings
from jaxstyle.jobs import JobRunner

log = logging.getLogger("jaxstyle.app")

IMAGE_TYPES = [suffix.lstrip(".") for suffix in images.IMAGE_SUFFIXES]  # what the uploaders take
STATUS_BADGES = {  # status -> (label, color, icon)
    runs.QUEUED: ("Queued", "gray", ":material/schedule:"),
    runs.RUNNING: ("Running", "blue", ":material/autorenew:"),
    runs.DONE: ("Done", "green", ":material/check_circle:"),
    runs.FAILED: ("Failed", "red", ":material/error:"),
    runs.CANCELLED: ("Cancelled", "orange", ":material/cancel:"),
}
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
def _runner(path: str, ray_address: str) -> JobRunner:
    # Concurrent runs and queue length: JAXSTYLE_WORKERS (default 1) and JAXSTYLE_MAX_QUEUED (16);
    # where runs execute: JAXSTYLE_RAY_ADDRESS (unset: in this process).
    options = jobs.options_from_env()
    # On a cluster, JAXSTYLE_WORKERS (when set) is the number of Ray workers; else one per GPU or node.
    workers = options["workers"] if os.environ.get("JAXSTYLE_WORKERS", "").strip() else None
    backend = runners.backend_for(ray_address, workers=workers) if ray_address else None
    return JobRunner(path, backend=backend, **options)


def runner() -> JobRunner:
    """The job runner of this gallery (one per process, shared by every session). Its ``backend``
    is where runs, instant runs and trainings execute, with the same VGG19 weights."""
    return _runner(str(gallery_path()), os.environ.get(runners.RAY_ADDRESS_VARIABLE, "").strip())


@st.cache_resource(show_spinner=False)
def _trainings(path: str, ray_address: str) -> Trainings:
    return Trainings(path, backend=runner().backend)


def trainings() -> Trainings:
    """The trainings of this gallery's models (one registry per process, so a rerun or another
    tab finds a training that is still going), executed where the runs are."""
    return _trainings(str(gallery_path()), os.environ.get(runners.RAY_ADDRESS_VARIABLE, "").strip())


def db() -> gallery.GalleryDatabase:
    """A fresh gallery connection: use as ``with ui.db() as db:`` (one per operation)."""
    return gallery.connect(gallery_path())


@st.cache_resource(show_spinner=False)
def device() -> str:
    """The device runs go to, as runs record it (jaxstyle.devices)."""
    return devices.description()


@st.cache_resource(show_spinner=False)
def on_cpu() -> bool:
    """Whether runs go to the CPU (the pages then suggest smaller sizes)."""
    return devices.on_cpu()


# ----- failures and widget state ----------------------------------------------------------------


def failure_message(error: Exception, what: str) -> str:
    """A failure as one line: ours as written, anything else briefly (and in full in the log)."""
    if isinstance(error, JaxstyleError):
        return str(error)
    log.error("unexpected error in %s", what, exc_info=error)
    return f"Something went wrong with {what}: {type(error).__name__}: {error}. The server log has the details."


@contextlib.contextmanager
def guard(what: str = "this") -> Iterator[None]:
    """Show a failure as a message (see :func:`failure_message`), never as a traceback."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 — the app must never show a raw traceback
        st.error(failure_message(error, what), icon=":material/error:")


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


def index_of(options: Sequence[Any], value: Any) -> int | None:
    """``value``'s position in ``options`` for a widget's ``index``, or None (nothing chosen)."""
    return list(options).index(value) if value in options else None


# ----- small renderers --------------------------------------------------------------------------


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


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """``items`` in rows of ``size`` (the last one shorter), for grids of columns."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
