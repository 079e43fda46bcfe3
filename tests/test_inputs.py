"""inputs.py: every source of an input image (file, URL, catalog, upload, gallery) loads into the same
record, the CLI's ``load_source`` picks the source from what was typed, and runs get a default title."""

from __future__ import annotations

import functools
import http.server
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from jaxstyle import fetch, gallery, images, inputs
from jaxstyle.errors import CatalogError, FetchError, GalleryError, ImageError, SettingsError
from tests.support import local_http_server

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def photo(shared_data: Path) -> Image.Image:
    """A real photo, 96 px on the long side."""
    with Image.open(shared_data / "content" / "tubingen.jpg") as image:
        return images.fit_long_side(image.convert("RGB"), 96)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class QuietFolderHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep test output quiet
        pass


@pytest.fixture(scope="module")
def web_folder(tmp_path_factory, shared_data: Path) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 serving a folder: a photo and a web page."""
    folder = tmp_path_factory.mktemp("web")
    (folder / "photo.jpg").write_bytes((shared_data / "content" / "chicago.jpg").read_bytes())
    (folder / "page.html").write_bytes(b"<!DOCTYPE html><html><body>Please log in</body></html>")
    with local_http_server(functools.partial(QuietFolderHandler, directory=str(folder))) as url:
        yield url


@pytest.fixture
def loopback_allowed(monkeypatch):
    """Downloads with loopback allowed (the test server lives there), through fetch's test-only switch."""
    monkeypatch.setattr(fetch, "fetch_bytes", functools.partial(fetch.fetch_bytes, allow_private=True))


# --- each source


def test_from_upload_keeps_bytes_and_a_safe_name(photo):
    data = png(photo)
    loaded = inputs.from_upload(data, "../../evil/../name.png")
    assert loaded.origin_kind == "upload"
    assert loaded.origin == "name.png"
    assert loaded.data == data
    assert loaded.sha256 == images.sha256_hex(data)
    assert loaded.image.size == photo.size


def test_from_upload_refuses_a_non_image_naming_the_file():
    with pytest.raises(ImageError, match=r"notes\.png.*text, not an image"):
        inputs.from_upload(b"these are my notes", "notes.png")


def test_from_path_reads_a_file_and_names_a_missing_one(content_path: Path, tmp_path: Path):
    loaded = inputs.from_path(content_path)
    assert (loaded.origin_kind, loaded.origin) == ("file", str(content_path))
    assert loaded.data == content_path.read_bytes()
    with pytest.raises(ImageError, match=r"nope\.jpg: file not found"):
        inputs.from_path(tmp_path / "nope.jpg")


def test_from_url_downloads_and_keeps_the_url(web_folder, loopback_allowed, shared_data: Path):
    loaded = inputs.from_url(f"  {web_folder}/photo.jpg \n")
    assert (loaded.origin_kind, loaded.origin) == ("url", f"{web_folder}/photo.jpg")
    assert loaded.data == (shared_data / "content" / "chicago.jpg").read_bytes()
    assert loaded.image.mode == "RGB"


def test_from_url_names_a_web_page_that_is_not_an_image(web_folder, loopback_allowed):
    with pytest.raises(ImageError, match=r"page\.html.*web page \(HTML\)"):
        inputs.from_url(f"{web_folder}/page.html")


def test_from_url_never_opens_loopback_by_itself(web_folder):
    with pytest.raises(FetchError, match=r"refused.*loopback"):
        inputs.from_url(f"{web_folder}/photo.jpg")


def test_from_catalog_reads_a_local_painting_and_says_how_to_get_a_missing_one():
    loaded = inputs.from_catalog("udnie", download=False)
    assert (loaded.origin_kind, loaded.origin) == ("catalog", "udnie")
    with pytest.raises(CatalogError, match=r"'the_kiss'.*can't be had offline"):
        inputs.from_catalog("the_kiss", download=False)


def test_from_gallery_loads_a_stored_input_with_its_origin(gallery_path: Path, photo):
    data = png(photo)
    with gallery.connect(gallery_path) as db:
        sha = gallery.store_image(db, data, origin_kind="url", origin="https://example.org/photo.png")
        info = gallery.ImageInfo(sha, "url", "https://example.org/photo.png", *photo.size)
        loaded = inputs.from_gallery(db, info)
        assert (loaded.origin_kind, loaded.origin, loaded.data) == ("url", "https://example.org/photo.png", data)
        gone = gallery.ImageInfo("0" * 64, "upload", "gone.png", 1, 1)
        with pytest.raises(GalleryError, match="no input image"):
            inputs.from_gallery(db, gone)


# --- load_source: what the CLI's --content and --style take


def test_load_source_reads_a_file(content_path: Path):
    loaded = inputs.load_source(str(content_path))
    assert (loaded.origin_kind, loaded.origin) == ("file", str(content_path))
    assert loaded.data == content_path.read_bytes()


def test_load_source_reads_a_catalog_id():
    loaded = inputs.load_source("starry_night")
    assert (loaded.origin_kind, loaded.origin) == ("catalog", "starry_night")
    assert loaded.image.mode == "RGB"


def test_load_source_reads_a_url_as_the_app_does(web_folder, loopback_allowed):
    loaded = inputs.load_source(f"{web_folder}/photo.jpg")
    assert loaded == inputs.from_url(f"{web_folder}/photo.jpg")
    with pytest.raises(ImageError, match=r"page\.html.*web page \(HTML\)"):
        inputs.load_source(f"{web_folder}/page.html")


@pytest.mark.parametrize("spec", ["ftp://example.com/a.jpg", "file:///etc/passwd", "javascript:alert(1)", "data:,x"])
def test_load_source_refuses_other_schemes(spec):
    with pytest.raises(ImageError, match="only http:// and https://"):
        inputs.load_source(spec)


@pytest.mark.parametrize("spec", ["no_such_style_or_file", "", "   "])
def test_load_source_names_the_three_accepted_kinds(spec):
    with pytest.raises(ImageError, match="URL.*catalog style id.*file"):
        inputs.load_source(spec)


# --- names and titles


@pytest.mark.parametrize(
    ("kind", "origin", "label"),
    [
        ("catalog", "udnie", "Udnie (Young American Girl, The Dance)"),
        ("catalog", "not_in_the_catalog", "not_in_the_catalog"),
        ("url", "https://example.org/art/the-wave.jpg?size=large", "the-wave"),
        ("url", "https://example.org/", "example"),
        ("file", "/home/me/photos/chicago.jpg", "chicago"),
        ("upload", "holiday.png", "holiday"),
    ],
)
def test_an_input_is_named_by_its_title_file_or_url(kind, origin, label):
    assert inputs.input_label(gallery.ImageInfo("0" * 64, kind, origin, 1, 1)) == label


def test_the_default_title_is_the_photo_and_its_paintings(content_path: Path):
    content = inputs.from_path(content_path)
    styles = [inputs.from_catalog("starry_night"), inputs.from_catalog("udnie")]
    title = inputs.default_title(content, styles)
    assert title == "tubingen × The Starry Night + Udnie (Young American Girl, The Dance)"


# --- numbers typed as text


def test_parse_floats_takes_commas_or_semicolons_and_empty_means_none():
    assert inputs.parse_floats(" 1, 0.5; 0.25,, ", what="weights") == (1.0, 0.5, 0.25)
    assert inputs.parse_floats("   ", what="weights") is None
    with pytest.raises(SettingsError, match=r"style layer weights must be numbers separated by commas, got '1, x'"):
        inputs.parse_floats("1, x", what="style layer weights")
