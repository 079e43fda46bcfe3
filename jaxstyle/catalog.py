"""The built-in style catalog: public-domain paintings listed in ``styles/catalog.json``.

A style's image is looked for in three places, in order: the local folder ``JAXSTYLE_STYLES_DIR``
(``<id>.jpg``), the user cache (``<cache>/styles/<id>.jpg``), and finally its source URL, which is
downloaded once, checked, downscaled and cached.

Downloads go through :func:`jaxstyle.fetch.fetch_bytes` rather than pooch: pooch's downloader is
a plain ``requests.get`` with neither a byte cap, a total time limit nor a check of the address,
and it wants a known hash, while we store a re-encoded, downscaled copy (so there is no stable
hash of the original to pin). Pooch's one other gift, writing through a temporary file, is
:func:`jaxstyle.files.atomic_write`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Callable
from pathlib import Path

from jaxstyle import fetch, files, images, paths
from jaxstyle.errors import CatalogError, FetchError, ImageError

CATALOG_PATH = paths.PROJECT_ROOT / "styles" / "catalog.json"
CACHED_LONG_SIDE_PX = 1280  # catalog images are cached at most this big (VGG works at <= 1024)
DOWNLOAD_TOTAL_TIMEOUT_S = 120.0
_ID_PATTERN = re.compile(r"^[a-z0-9_]+$")
_FIELDS = ("id", "title", "artist", "year", "license", "url")


@dataclasses.dataclass(frozen=True)
class Style:
    """One painting of the catalog.

    Attributes:
        id: the short name used everywhere (file names, CLI, gallery), e.g. ``starry_night``.
        title: the painting's title.
        artist: who painted it.
        year: when, as written by art historians ("c. 1831", "1884–86").
        license: the copyright status, with a caveat where it depends on the country.
        url: where the image is downloaded from (a Wikimedia Commons file).
    """

    id: str
    title: str
    artist: str
    year: str
    license: str
    url: str

    @property
    def label(self) -> str:
        """``Title — Artist, year`` for menus and captions."""
        return f"{self.title} — {self.artist}, {self.year}"


@functools.lru_cache(maxsize=4)
def _load(catalog_path: Path) -> tuple[Style, ...]:
    try:
        entries = json.loads(catalog_path.read_text(encoding="utf-8"))["styles"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CatalogError(f"the style catalog {catalog_path} cannot be read ({exc})") from None
    styles = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or any(not isinstance(entry.get(key), str) for key in _FIELDS):
            raise CatalogError(f"{catalog_path}: entry {index} needs the text fields {', '.join(_FIELDS)}")
        if not _ID_PATTERN.match(entry["id"]):
            # Ids become file names, so only [a-z0-9_] is allowed.
            raise CatalogError(f"{catalog_path}: style id {entry['id']!r} must use only a-z, 0-9 and _")
        styles.append(Style(**{key: entry[key] for key in _FIELDS}))
    ids = [style.id for style in styles]
    if len(set(ids)) != len(ids):
        raise CatalogError(f"{catalog_path}: style ids are not unique")
    return tuple(styles)


def list_styles() -> list[Style]:
    """Every style of the catalog, in catalog order."""
    return list(_load(CATALOG_PATH))


def is_known_id(style_id: str) -> bool:
    """Whether ``style_id`` names a catalog style."""
    return any(style.id == style_id for style in _load(CATALOG_PATH))


def get_style(style_id: str) -> Style:
    """The catalog style called ``style_id``.

    Raises:
        CatalogError: no such id (the message lists a few that exist).
    """
    styles = _load(CATALOG_PATH)
    for style in styles:
        if style.id == style_id:
            return style
    examples = ", ".join(style.id for style in styles[:4])
    raise CatalogError(f"unknown style id {style_id!r}; known ids include {examples} ({len(styles)} in all)")


def _local_path(style_id: str) -> Path | None:
    folder = paths.styles_dir()
    if folder is None:
        return None
    path = folder / f"{style_id}.jpg"
    return path if path.is_file() else None


def _cache_path(style_id: str) -> Path:
    return paths.cache_dir() / "styles" / f"{style_id}.jpg"


def is_available_offline(style_id: str) -> bool:
    """Whether the style's image is on this machine (local folder or cache), so no download is needed.

    Raises:
        CatalogError: unknown id.
    """
    style = get_style(style_id)
    return _local_path(style.id) is not None or _cache_path(style.id).is_file()


def style_image_path(
    style_id: str,
    *,
    download: bool = True,
    progress: Callable[[int, int | None], None] | None = None,
) -> Path:
    """The path of a style's image: the local copy, else the cached one, else a fresh download.

    Args:
        style_id: a catalog id such as ``starry_night``.
        download: whether a missing image may be downloaded (and cached).
        progress: called as ``progress(bytes_so_far, total_bytes_or_None)`` while downloading.

    Returns:
        A JPEG file path.

    Raises:
        CatalogError: unknown id, or the image is neither local nor cached and can't be downloaded.
    """
    style = get_style(style_id)
    local = _local_path(style.id)
    if local is not None:
        return local
    cached = _cache_path(style.id)
    if cached.is_file():
        return cached
    if not download:
        raise CatalogError(f"style {style.id!r} is not on this machine and downloads are off; {_offline_hint(style)}")
    return download_style(style, progress=progress)


def _offline_hint(style: Style, *, with_source: bool = True) -> str:
    source = f" (source: {style.url})" if with_source else ""
    return (
        f"it can't be had offline. Save the painting as {style.id}.jpg in a folder and point "
        f"JAXSTYLE_STYLES_DIR at that folder{source}"
    )


def download_style(
    style: Style,
    *,
    progress: Callable[[int, int | None], None] | None = None,
    allow_private: bool = False,
) -> Path:
    """Download a style's image once into the cache: fetch, check it decodes, downscale, save.

    The file is written to a temporary name in the cache folder and renamed into place, so an
    interrupted download never leaves a half-written ``<id>.jpg`` that would later be trusted.

    Args:
        style: the style (its ``url`` is fetched).
        progress: called as ``progress(bytes_so_far, total_bytes_or_None)``.
        allow_private: tests only, passed on to :func:`jaxstyle.fetch.fetch_bytes`.

    Returns:
        The cached JPEG's path.

    Raises:
        CatalogError: the download failed or was not a usable image (the message names the id).
    """
    try:
        data = fetch.fetch_bytes(
            style.url,
            total_timeout_s=DOWNLOAD_TOTAL_TIMEOUT_S,
            allow_private=allow_private,
            progress=progress,
        )
        image = images.open_image(data, name=style.url)
    except (FetchError, ImageError) as exc:
        raise CatalogError(
            f"style {style.id!r}: the download failed ({exc}); {_offline_hint(style, with_source=False)}"
        ) from None
    if max(image.size) > CACHED_LONG_SIDE_PX:
        image = images.fit_long_side(image, CACHED_LONG_SIDE_PX)
    destination = _cache_path(style.id)
    try:
        files.atomic_write(destination, lambda file: image.save(file, format="JPEG", quality=92))
    except OSError as exc:
        raise CatalogError(f"style {style.id!r}: cannot write the cache file {destination} ({exc})") from None
    return destination
