"""Where an input image comes from, in one place: a file path, an http(s) URL, a catalog id, an
upload or an image already in the gallery, each loaded into the same :class:`LoadedImage`.

The CLI (:func:`load_source`) and the app (one function per source) both load through here, so both
refuse bad input with the same one-line messages. Every source ends in
:func:`jaxstyle.images.open_image`, the one guard on what a stranger's bytes may be. Also here: the
short name of an input and the default title of a run made from inputs.

A new input source is one function here returning a :class:`LoadedImage` (and, if it is a new
kind of origin, an entry in :data:`jaxstyle.runs.OriginKind`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image

from jaxstyle import catalog, fetch, gallery, images
from jaxstyle.errors import CatalogError, ImageError, SettingsError
from jaxstyle.instant.models import Model
from jaxstyle.runs import OriginKind

ProgressCallback = Callable[[int, int | None], None]  # (bytes_so_far, total_bytes_or_None)


@dataclasses.dataclass(frozen=True)
class LoadedImage:
    """A decoded input image with its original bytes and where it came from.

    Attributes:
        image: the decoded RGB image (see :func:`jaxstyle.images.open_image`).
        data: the bytes as received (hashed for the gallery, stored for re-runs).
        origin_kind: "upload", "file", "url", "catalog" or "model".
        origin: the upload's file name, the path, the URL, the catalog id or "<model>/<style>".
        sha256: hex SHA-256 of ``data``.
    """

    image: Image.Image = dataclasses.field(repr=False, compare=False)
    data: bytes = dataclasses.field(repr=False, compare=False)
    origin_kind: OriginKind
    origin: str
    sha256: str = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", images.sha256_hex(self.data))


def _decoded(data: bytes, origin_kind: OriginKind, origin: str, *, name: str) -> LoadedImage:
    return LoadedImage(images.open_image(data, name=name), data, origin_kind, origin)


# --- One function per source


def from_path(path: str | os.PathLike) -> LoadedImage:
    """An image file on this machine.

    Raises:
        ImageError: the file is missing, a folder, too big or not a usable image (the message names it).
    """
    path = Path(path).expanduser()
    return _decoded(images.read_file(path, str(path)), "file", str(path), name=str(path))


def from_url(url: str, *, progress: ProgressCallback | None = None) -> LoadedImage:
    """An image downloaded from an http(s) URL through the guarded fetch (no private addresses,
    at most :data:`jaxstyle.images.MAX_INPUT_BYTES`).

    Raises:
        FetchError: the URL was refused or could not be downloaded.
        ImageError: what came back is not a usable image (the message says what it looks like).
    """
    url = str(url).strip()
    return _decoded(fetch.fetch_bytes(url, progress=progress), "url", url, name=url)


def from_catalog(style_id: str, *, download: bool = True, progress: ProgressCallback | None = None) -> LoadedImage:
    """A catalog painting: its local or cached image, else (if ``download``) a fresh download.

    Raises:
        CatalogError: unknown id, or the image is not on this machine and can't (or may not) be downloaded.
        ImageError: the file on disk is not a usable image.
    """
    path = catalog.style_image_path(style_id, download=download, progress=progress)
    label = f"catalog style {style_id!r} ({path})"
    return _decoded(images.read_file(path, label), "catalog", style_id, name=label)


def from_upload(data: bytes, name: str) -> LoadedImage:
    """An uploaded file (e.g. from ``st.file_uploader``); the name is made safe first.

    Raises:
        ImageError: not a usable image (the message names the file).
    """
    name = images.safe_filename(name)
    return _decoded(bytes(data), "upload", name, name=name)


def from_gallery(db: gallery.GalleryDatabase, info: gallery.ImageInfo) -> LoadedImage:
    """An input image an earlier run stored in the gallery, with the origin it was stored with.

    Raises:
        GalleryError: the image is no longer in the gallery.
        ImageError: the stored bytes are not a usable image.
    """
    data = gallery.input_image(db, info.sha256)
    return _decoded(data, info.origin_kind, info.origin, name=info.origin)


def load_source(spec: str, *, progress: ProgressCallback | None = None) -> LoadedImage:
    """Load an image named by an http(s) URL, a catalog style id or a file path (in that order):
    what the CLI's ``--content`` and ``--style`` accept.

    Args:
        spec: ``https://...``, a catalog id such as ``starry_night``, or a path to an image file.
        progress: called as ``progress(bytes_so_far, total_bytes_or_None)`` during downloads.

    Returns:
        The decoded image with its bytes and origin.

    Raises:
        ImageError: ``spec`` is none of the three kinds, or not a usable image.
        FetchError: the URL was refused or could not be downloaded.
        CatalogError: the catalog image cannot be had (offline and not cached).
    """
    spec = str(spec).strip()
    if not spec:
        raise ImageError("no image given: expected an http(s) URL, a catalog style id or an image file path")
    if re.match(r"^https?://", spec, flags=re.IGNORECASE):
        return from_url(spec, progress=progress)
    if catalog.is_known_id(spec):
        return from_catalog(spec, progress=progress)
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", spec) and not Path(spec).expanduser().exists():
        # ftp:, file:, data:, javascript: ... (checked after the path, so C:\ paths still work)
        raise ImageError(
            f"{spec[:200]!r}: only http:// and https:// URLs can be fetched; "
            "otherwise give a catalog style id or an image file path"
        )
    if Path(spec).expanduser().is_file():
        return from_path(spec)
    examples = ", ".join(style.id for style in catalog.list_styles()[:3])
    raise ImageError(
        f"{spec[:200]!r} is not an http(s) URL, a catalog style id (e.g. {examples}) or an existing image file"
    )


def from_model(model: Model, style: str) -> LoadedImage:
    """The painting a trained instant model (jaxstyle.instant.models.Model) learned ``style`` from."""
    data = model.style_images[style]
    return _decoded(data, "model", f"{model.name}/{style}", name=f"model {model.name}'s style {style}")


def from_builtin_style(model: str, style: str, swatch: Image.Image) -> LoadedImage:
    """A style of a built-in model that holds no paintings (styles26): its swatch stands for it."""
    return _decoded(images.png_bytes(swatch), "model", f"{model}/{style}", name=f"model {model}'s style {style}")


# --- Names of inputs and runs


def input_label(info: gallery.ImageInfo | LoadedImage) -> str:
    """A short human name of an input image: the painting's title, a file name, a URL's last part."""
    if info.origin_kind == "model":  # "<model>/<style>": the style's name, a catalog title if it is one
        model, _, style = info.origin.rpartition("/")
        with contextlib.suppress(CatalogError):
            return catalog.get_style(style).title
        return f"{model} style {style}" if style.isdigit() else style
    if info.origin_kind == "catalog":
        with contextlib.suppress(CatalogError):
            return catalog.get_style(info.origin).title
    name = info.origin.rstrip("/").rsplit("/", 1)[-1].split("?")[0] if info.origin_kind == "url" else info.origin
    return Path(name).stem or info.origin or "image"


def default_title(content: gallery.ImageInfo | LoadedImage, styles: Sequence[gallery.ImageInfo | LoadedImage]) -> str:
    """The title a run gets when none is given: "tubingen × The Starry Night + Udnie"."""
    return f"{input_label(content)} × {' + '.join(input_label(s) for s in styles)}"


# --- Numbers typed as text


def parse_floats(text: str, *, what: str) -> tuple[float, ...] | None:
    """Numbers typed as "1, 0.5; 0.25" (commas or semicolons), or None for an empty field.

    Raises:
        SettingsError: a part is not a number (the message names ``what``).
    """
    text = text.strip()
    if not text:
        return None
    try:
        return tuple(float(part) for part in text.replace(";", ",").split(",") if part.strip())
    except ValueError:
        raise SettingsError(f"{what} must be numbers separated by commas, got {text!r}") from None
