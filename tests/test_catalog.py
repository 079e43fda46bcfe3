"""catalog.py: the 14 built-in paintings, where their images are found, and the one-time download.

Downloads come from a real HTTP server on 127.0.0.1; nothing else is contacted.
"""

from __future__ import annotations

import dataclasses
import http.server
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from jaxstyle import catalog, images, paths
from jaxstyle.errors import CatalogError
from tests.support import local_http_server

pytestmark = pytest.mark.timeout(30)

LIFE_PLUS_70_ARTISTS = {"Henri Matisse", "Francis Picabia"}


# --- the catalog file


def test_catalog_has_fourteen_complete_entries_with_unique_ids():
    raw = json.loads(catalog.CATALOG_PATH.read_text(encoding="utf-8"))["styles"]
    assert len(raw) == 14
    for entry in raw:
        assert set(entry) == {"id", "title", "artist", "year", "license", "url"}
        assert all(isinstance(value, str) and value.strip() for value in entry.values()), entry
        assert entry["url"].startswith("https://upload.wikimedia.org/wikipedia/commons/")
    ids = [entry["id"] for entry in raw]
    assert len(set(ids)) == len(ids)
    assert [style.id for style in catalog.list_styles()] == ids


def test_license_notes_flag_the_life_plus_70_painters():
    for style in catalog.list_styles():
        if style.artist in LIFE_PLUS_70_ARTISTS:
            assert "check your country" in style.license
        else:
            assert style.license == "public domain"
    assert {s.artist for s in catalog.list_styles() if "check" in s.license} == LIFE_PLUS_70_ARTISTS


def test_get_style_and_label():
    style = catalog.get_style("great_wave")
    assert (style.title, style.artist, style.year) == ("The Great Wave off Kanagawa", "Katsushika Hokusai", "c. 1831")
    assert style.label == "The Great Wave off Kanagawa — Katsushika Hokusai, c. 1831"
    assert catalog.is_known_id("great_wave")
    assert not catalog.is_known_id("../great_wave")


def test_unknown_id_names_it_and_lists_known_ones():
    with pytest.raises(CatalogError, match=r"'mona_lisa'.*starry_night.*14 in all"):
        catalog.get_style("mona_lisa")
    with pytest.raises(CatalogError, match="mona_lisa"):
        catalog.style_image_path("mona_lisa")


def test_a_broken_catalog_file_is_reported(tmp_path, monkeypatch):
    broken = tmp_path / "catalog.json"
    broken.write_text('{"styles": [{"id": "x", "title": "no other fields"}]}', encoding="utf-8")
    monkeypatch.setattr(catalog, "CATALOG_PATH", broken)
    with pytest.raises(CatalogError, match="entry 0 needs the text fields"):
        catalog.list_styles()


# --- where images are found


def test_local_images_resolve_to_the_styles_dir(shared_data: Path):
    local_ids = {path.stem for path in (shared_data / "styles").glob("*.jpg")}
    found = [style.id for style in catalog.list_styles() if style.id in local_ids]
    assert len(found) >= 5
    for style_id in found:
        assert catalog.style_image_path(style_id, download=False) == shared_data / "styles" / f"{style_id}.jpg"
        assert catalog.is_available_offline(style_id)


def test_the_cache_is_used_when_there_is_no_local_copy(shared_data: Path):
    cached = paths.cache_dir() / "styles" / "composition_vii.jpg"
    assert not catalog.is_available_offline("composition_vii")
    cached.parent.mkdir(parents=True)
    cached.write_bytes((shared_data / "styles" / "udnie.jpg").read_bytes())
    assert catalog.is_available_offline("composition_vii")
    assert catalog.style_image_path("composition_vii", download=False) == cached


def test_missing_without_download_says_how_to_provide_it():
    with pytest.raises(CatalogError, match=r"'the_kiss'.*can't be had offline.*the_kiss.jpg.*JAXSTYLE_STYLES_DIR"):
        catalog.style_image_path("the_kiss", download=False)


# --- downloads (from a local server)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    bodies: dict[str, bytes] = {}

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def do_GET(self):  # the name http.server calls
        body = self.bodies.get(self.path)
        if self.path == "/over-the-cap.jpg":  # one byte over the input cap, announced; nothing is sent
            self.send_response(200)
            self.send_header("Content-Length", str(images.MAX_INPUT_BYTES + 1))
            self.end_headers()
            return
        self.send_response(404 if body is None else 200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")


@pytest.fixture(scope="module")
def server(shared_data: Path) -> Iterator[str]:
    with Image.open(shared_data / "content" / "tubingen.jpg") as photo:
        buffer = io.BytesIO()
        photo.resize((1600, 1200)).save(buffer, format="JPEG", quality=80)
    big = buffer.getvalue()
    Handler.bodies = {
        "/big.jpg": big,
        "/cut.jpg": big[: len(big) // 2],
        "/page.html": b"<!DOCTYPE html><html><body>Please log in</body></html>",
    }
    with local_http_server(Handler) as url:
        yield url


def files_in_cache() -> list[str]:
    folder = paths.cache_dir() / "styles"
    return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []


def test_download_is_downscaled_cached_and_then_used(server):
    style = dataclasses.replace(catalog.get_style("the_kiss"), url=f"{server}/big.jpg")
    calls = []
    path = catalog.download_style(style, allow_private=True, progress=lambda done, total: calls.append((done, total)))
    assert path == paths.cache_dir() / "styles" / "the_kiss.jpg"
    assert files_in_cache() == ["the_kiss.jpg"]  # no temporary file left behind
    with Image.open(path) as image:
        assert image.format == "JPEG"
        assert image.size == (1280, 960)
    assert calls[-1][0] == calls[-1][1] > 0
    # From now on the catalog finds it offline.
    assert catalog.is_available_offline("the_kiss")
    assert catalog.style_image_path("the_kiss", download=False) == path


@pytest.mark.parametrize(("route", "reason"), [("/cut.jpg", "truncated"), ("/page.html", "HTML"), ("/gone.jpg", "404")])
def test_a_bad_download_leaves_no_file(server, route, reason):
    style = dataclasses.replace(catalog.get_style("the_kiss"), url=f"{server}{route}")
    with pytest.raises(CatalogError, match=rf"'the_kiss'.*{reason}.*JAXSTYLE_STYLES_DIR"):
        catalog.download_style(style, allow_private=True)
    assert files_in_cache() == []
    assert not catalog.is_available_offline("the_kiss")


def test_a_download_over_the_one_input_cap_is_refused(server):
    style = dataclasses.replace(catalog.get_style("the_kiss"), url=f"{server}/over-the-cap.jpg")
    with pytest.raises(CatalogError, match=rf"'the_kiss'.*the limit is {images.MAX_INPUT_BYTES:,}"):
        catalog.download_style(style, allow_private=True)
    assert files_in_cache() == []


def test_a_failed_download_of_a_catalog_style_names_the_id(server, tmp_path, monkeypatch):
    # A catalog whose source URL is the local server. The catalog never relaxes the address
    # filter, so the download is refused just as an unreachable host would fail offline.
    entries = [dataclasses.asdict(style) for style in catalog.list_styles()]
    for entry in entries:
        entry["url"] = f"{server}/big.jpg"
    local_catalog = tmp_path / "catalog.json"
    local_catalog.write_text(json.dumps({"styles": entries}), encoding="utf-8")
    monkeypatch.setattr(catalog, "CATALOG_PATH", local_catalog)
    with pytest.raises(CatalogError, match=r"'sudden_shower'.*download failed.*refused.*can't be had offline"):
        catalog.style_image_path("sudden_shower")
    assert files_in_cache() == []
