"""Hostile input, tried for real: URLs, files and settings through the core, the CLI and the app
(AppTest), and the app's queue as many users see it. The faults (a worker or a process dying, a full
disk, a read-only gallery, a download killed halfway) are test_faults.py.

What test_fetch.py, test_images.py, test_gallery.py and test_jobs.py already prove is not repeated
here; this file adds what they leave open (docs/limits.md's "Hostile input" table maps every case):

- the app shows a clear message for hostile URLs, files and settings, and writes nothing to the gallery;
- host names that resolve to private or metadata addresses (before and after a redirect), and
  bodies that never end;
- memory stays bounded on a decompression bomb that is just under the pixel limit;
- queue place and a full queue, as the app shows them.

Every server is a real one on 127.0.0.1; host names are resolved by a stand-in DNS (the only way to
have a name resolve to 10.x or 169.254.169.254 on a test machine).
"""

from __future__ import annotations

import functools
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from jaxstyle import fetch, gallery, images, inputs, jobs
from jaxstyle.errors import FetchError, GalleryError, SettingsError
from tests.support import (
    APP,
    LONG,
    REPO,
    TINY,
    RoutedHandler,
    encode,
    get_run,
    local_http_server,
    seed_run,
    subprocess_env,
    wait_until,
)

pytestmark = pytest.mark.timeout(300)

# The stand-in DNS: names that resolve to addresses the fetcher must never contact.
FAKE_DNS = {
    "metadata.test": "169.254.169.254",
    "intranet.test": "10.0.0.5",
    "router.test": "192.168.1.1",
    "docker.test": "172.17.0.1",
    "loopback.test": "127.0.0.1",
    "loopback6.test": "::1",
}


# ----- helpers ----------------------------------------------------------------------------------


def gallery_counts(path: Path) -> tuple[int, int]:
    """(runs, stored input images) in the gallery at ``path``."""
    with gallery.connect(path) as db:
        return gallery.count_runs(db), db.execute("SELECT COUNT(*) FROM images").fetchone()[0]


@pytest.fixture
def fake_dns(monkeypatch):
    """Resolve the FAKE_DNS names (and only those) to their addresses; everything else as usual."""
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        address = FAKE_DNS.get(str(host).lower().rstrip("."))
        if address is None:
            return real_getaddrinfo(host, port, family, type, proto, flags)
        if ":" in address:
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port or 0, 0, 0))]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 0))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def png_with_flat_pixels(width: int, height: int, *, color_type: int = 6) -> bytes:
    """A valid PNG of ``width x height`` flat pixels, written row by row (a few hundred KB at 80 MP).

    color_type 6 is RGBA, 2 RGB, 0 gray; the same bytes a real encoder writes, minus the filters.
    """
    channels = {0: 1, 2: 3, 6: 4}[color_type]

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    compressor = zlib.compressobj(9)
    row = b"\0" + bytes([200, 30, 30, 255][:channels]) * width
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# ----- a hostile web server on 127.0.0.1 --------------------------------------------------------


class HostileHandler(RoutedHandler):
    photo = b""

    def routes(self):
        return {
            "/photo.jpg": lambda: self.send_body(self.photo, "image/jpeg"),
            "/page.html": lambda: self.send_body(b"<!DOCTYPE html><html><body>Log in</body></html>", "image/jpeg"),
            "/api.json": lambda: self.send_body(b'{"image": "https://example.org/a.jpg"}', "application/json"),
            "/to-private": lambda: self.redirect("http://10.0.0.1/photo.jpg"),
            "/to-metadata-name": lambda: self.redirect("http://metadata.test/latest/meta-data/"),
            "/to-intranet-name": lambda: self.redirect("http://intranet.test/photo.jpg"),
            "/loop": lambda: self.redirect("/loop"),
            "/huge-announced": lambda: self.announce_only(60 * 1024 * 1024),
            "/forever": self.forever,
        }

    def forever(self) -> None:
        # An endless body with no length: only the byte cap or the time cap ends it.
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            chunk = b"\xff" * 16384
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                self.wfile.write(chunk)
                time.sleep(0.001)
        except OSError:
            pass  # the client hung up, as it should


@pytest.fixture(scope="module")
def server(shared_data: Path) -> Iterator[str]:
    HostileHandler.photo = (shared_data / "content" / "golden_gate.jpg").read_bytes()
    with local_http_server(HostileHandler) as url:
        yield url


# ----- URLs: what test_fetch.py leaves open ------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FAKE_DNS))
def test_a_host_name_that_resolves_to_a_private_address_is_refused(fake_dns, name):
    with pytest.raises(FetchError, match=rf"{name}.*refused.*private, loopback"):
        fetch.fetch_bytes(f"http://{name}/photo.jpg", connect_timeout_s=1)


@pytest.mark.parametrize(("path", "name"), [("/to-metadata-name", "metadata.test"), ("/to-intranet-name", "intranet")])
def test_a_redirect_to_a_name_that_resolves_to_a_private_address_is_refused(server, fake_dns, path, name):
    # Loopback is opened for the test server only; the redirect target's address is checked anew.
    with pytest.raises(FetchError, match=rf"{path}.*redirected to http://{name}.*refused.*private"):
        fetch.fetch_bytes(f"{server}{path}", allow_private=True, connect_timeout_s=1)


def test_a_body_that_never_ends_is_cut_at_the_byte_cap_and_at_the_time_cap(server):
    with pytest.raises(FetchError, match=r"forever.*more than the limit of 1,000,000 bytes"):
        fetch.fetch_bytes(f"{server}/forever", allow_private=True, max_bytes=1_000_000)
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"forever.*took longer than 1 s"):
        fetch.fetch_bytes(f"{server}/forever", allow_private=True, max_bytes=10**12, total_timeout_s=1)
    print(f"endless body stopped after {time.monotonic() - started:.1f} s")


# ----- files: what test_images.py leaves open ----------------------------------------------------


def test_grayscale_with_alpha_is_composited_on_white():
    gray = Image.new("LA", (40, 20), (60, 255))
    gray.paste((60, 0), (20, 0, 40, 20))  # right half fully transparent
    image = images.open_image(encode(gray, "PNG"), name="gray-alpha.png")
    assert image.mode == "RGB"
    assert image.getpixel((5, 5)) == (60, 60, 60)
    assert image.getpixel((30, 5)) == (255, 255, 255)


def test_a_huge_exif_rotated_image_is_downscaled_and_turned_upright():
    # 4800 x 2400 with a red block top left; EXIF orientation 6 means "turn 90° clockwise".
    wide = Image.new("RGB", (4800, 2400), (20, 20, 200))
    wide.paste((255, 0, 0), (0, 0, 600, 600))
    exif = Image.Exif()
    exif[0x0112] = 6
    for fmt in ("PNG", "JPEG"):  # PNG is shrunk after decoding, JPEG already while decoding
        image = images.open_image(encode(wide, fmt, exif=exif.tobytes()), name=f"rotated.{fmt.lower()}")
        assert image.size == (1024, images.MAX_SIZE_PX)
        red, green, blue = image.getpixel((image.width - 20, 20))  # the block is now top right
        assert red > 200 and green < 60 and blue < 60, fmt


MEMORY_PROBE = """
import resource, sys
from jaxstyle import images
from jaxstyle.errors import ImageError
data = open(sys.argv[1], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    result = "%dx%d" % images.open_image(data, name="bomb.png").size
except ImageError as error:
    result = "ImageError: %s" % error
grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(result, "|", round(grown_mb))
"""


@pytest.mark.parametrize(
    ("side_px", "outcome", "most_mb"),
    [
        (8900, "2048x2048", 512),  # 79 MP RGBA, just under the limit: decoded, shrunk (was 1.5 GB)
        (9000, "ImageError: bomb.png: the image is 9000x9000 px (81 megapixels)", 16),  # refused unread
        (60000, "ImageError: bomb.png: the image has too many pixels", 16),  # refused by PIL's header check
    ],
)
def test_memory_stays_bounded_on_a_small_file_with_a_huge_pixel_count(tmp_path, side_px, outcome, most_mb):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_with_flat_pixels(side_px, side_px) if side_px < 20000 else _png_header(side_px))
    assert bomb.stat().st_size < 400_000
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(bomb)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result, grown_mb = done.stdout.strip().rsplit(" | ", 1)
    print(f"{side_px}x{side_px} PNG of {bomb.stat().st_size:,} bytes: {result}; peak memory +{grown_mb} MB")
    assert result.startswith(outcome)
    assert int(grown_mb) < most_mb


def _png_header(side_px: int) -> bytes:
    """A tiny PNG whose header claims side_px x side_px pixels, with almost no pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", side_px, side_px, 8, 6, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# ----- settings: what test_settings.py and test_cli.py leave open --------------------------------


def test_an_imported_gallery_file_with_out_of_range_settings_is_refused_with_the_range(tmp_path, shared_data):
    import json
    import zipfile

    source = tmp_path / "source.db"
    seed_run(source, shared_data)
    with gallery.connect(source) as db:
        gallery.export_gallery(db, tmp_path / "good.zip")
    for field, value, message in [
        ("size_px", 100_000, "size_px must be between 16 and 2048, got 100000"),
        ("iterations", 0, "iterations must be between 1 and 5000, got 0"),
        ("style_weight", -1.0, "style_weight must be between 0 and 1e+06, got -1"),
    ]:
        bad = tmp_path / f"bad-{field}.zip"
        with zipfile.ZipFile(tmp_path / "good.zip") as good, zipfile.ZipFile(bad, "w") as out:
            for item in good.infolist():
                data = good.read(item)
                if item.filename == "manifest.json":
                    manifest = json.loads(data)
                    manifest["runs"][0]["settings"][field] = value
                    data = json.dumps(manifest).encode()
                out.writestr(item, data)
        with gallery.connect(tmp_path / "target.db") as target:
            with pytest.raises(GalleryError, match="invalid settings") as raised:
                gallery.import_gallery(target, bad)
            assert message in str(raised.value)
            assert gallery.count_runs(target) == 0


def test_the_cli_names_the_allowed_range(tmp_path, content_path):
    done = subprocess.run(
        [sys.executable, "-m", "jaxstyle", "generate", "--content", str(content_path), "--style", "starry_night",
         "--size-px", "5000", "--out", str(tmp_path / "x.png"), "--no-gallery"],
        capture_output=True, text=True, cwd=REPO, env=subprocess_env(), timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == "error: size_px must be between 16 and 2048, got 5000"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"JAXSTYLE_WORKERS": "0"}, "JAXSTYLE_WORKERS must be a whole number between 1 and 16, got '0'"),
        ({"JAXSTYLE_MAX_QUEUED": "lots"}, "JAXSTYLE_MAX_QUEUED must be a whole number between 1 and 1000"),
    ],
)
def test_queue_settings_from_the_environment_are_checked(environ, message):
    assert jobs.options_from_env({}) == {"workers": 1, "max_queued": 16}
    assert jobs.options_from_env({"JAXSTYLE_WORKERS": "2", "JAXSTYLE_MAX_QUEUED": "4"}) == {
        "workers": 2,
        "max_queued": 4,
    }
    with pytest.raises(SettingsError) as raised:
        jobs.options_from_env(environ)
    assert message in str(raised.value)


# ----- the app: a clear message, nothing in the gallery ------------------------------------------


@pytest.fixture(scope="session")
def app_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("app-cache")


@pytest.fixture
def app_gallery(monkeypatch, tmp_path, app_cache, shared_data) -> Path:
    """A temp gallery holding one finished run, and clean Streamlit caches."""
    path = tmp_path / "app-gallery.db"
    monkeypatch.setenv("JAXSTYLE_GALLERY", str(path))
    monkeypatch.setenv("JAXSTYLE_CACHE_DIR", str(app_cache))
    seed_run(path, shared_data)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield path
    st.cache_data.clear()
    st.cache_resource.clear()


def open_generate() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("app_pages/generate.py").run()
    at.button_group(key="gen_method").set_value("Optimize").run()  # Instant is the default without the pretrained VGG
    assert not at.exception
    return at


def assert_refused(at: AppTest, gallery_path: Path, pattern: str) -> None:
    """One clear message matching ``pattern``, no traceback, Generate off, the gallery untouched."""
    import re

    assert not at.exception
    messages = [element.value for element in at.error]
    assert len(messages) == 1 and re.search(pattern, messages[0]), messages
    assert "Traceback" not in messages[0]
    assert at.button(key="generate").disabled
    assert gallery_counts(gallery_path) == (1, 2)  # the seeded run and its two images, nothing more


@pytest.fixture
def loopback_opened_for_the_test_server(monkeypatch):
    """The app's fetches with loopback allowed (the test server lives there), through the documented
    test-only switch; every other private, link-local or metadata address stays refused."""
    monkeypatch.setattr(fetch, "fetch_bytes", functools.partial(fetch.fetch_bytes, allow_private=True))


@pytest.mark.parametrize(
    ("path", "pattern"),
    [
        ("/to-private", r"to-private.*redirected to http://10\.0\.0\.1.*refused.*private"),
        ("/to-metadata-name", r"redirected to http://metadata\.test.*refused.*private"),
        ("/loop", r"loop.*too many redirects"),
        ("/huge-announced", r"huge-announced.*Content-Length.*limit is 52,428,800"),
        ("/page.html", r"page\.html.*web page \(HTML\)"),  # served as image/jpeg: the bytes decide
        ("/api.json", r"api\.json.*JSON"),
    ],
)
def test_the_app_refuses_a_hostile_url_with_a_message_and_stores_nothing(
    app_gallery, server, fake_dns, loopback_opened_for_the_test_server, path, pattern
):
    at = open_generate()
    at.button_group(key="content_source").set_value("URL").run()
    at.text_input(key="content_url").input(f"{server}{path}").run()
    assert_refused(at, app_gallery, pattern)


@pytest.mark.parametrize(
    ("url", "pattern"),
    [
        ("SERVER/photo.jpg", r"refused.*loopback"),  # the app never opens loopback
        ("http://metadata.test/latest/meta-data/", r"metadata\.test.*refused"),
        ("file:///etc/passwd", r"only http:// and https://"),
    ],
)
def test_the_app_refuses_loopback_metadata_and_other_schemes(app_gallery, server, fake_dns, url, pattern):
    at = open_generate()
    at.button_group(key="content_source").set_value("URL").run()
    at.text_input(key="content_url").input(url.replace("SERVER", server)).run()
    assert_refused(at, app_gallery, pattern)


def _truncated_jpeg(shared_data: Path) -> bytes:
    data = (shared_data / "content" / "tubingen.jpg").read_bytes()
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("name", "make", "pattern"),
    [
        ("cut.jpg", _truncated_jpeg, r"cut\.jpg.*truncated or corrupt"),
        ("bomb.png", lambda _: _png_header(60000), r"bomb\.png.*too many pixels"),
        ("empty.png", lambda _: b"", r"empty\.png.*empty"),
        ("photo.jpg", lambda _: b"<!DOCTYPE html><html><body>Not found</body></html>", r"photo\.jpg.*HTML"),
    ],
)
def test_the_app_refuses_a_hostile_upload_with_a_message_and_stores_nothing(
    app_gallery, shared_data, name, make, pattern
):
    at = open_generate()
    at.file_uploader(key="content_upload").upload(name, make(shared_data), "image/png").run()
    assert_refused(at, app_gallery, pattern)


def test_an_upload_name_with_folders_and_control_characters_is_made_safe(app_gallery, shared_data):
    at = open_generate()
    data = (shared_data / "content" / "tubingen.jpg").read_bytes()
    at.file_uploader(key="content_upload").upload("../../etc/\x1bpass\nwd.jpg", data, "image/jpeg").run()
    assert not at.exception and not at.error
    captions = [caption for image in at.image for caption in image.captions]
    assert "passwd · 1024×768" in captions
    assert gallery_counts(app_gallery) == (1, 2)


def test_the_app_refuses_bad_style_layer_weights_with_the_reason(app_gallery):
    at = open_generate()
    at.text_input(key="s_style_layer_weights").input("1, -2, 1, 1, 1").run()
    assert_refused(at, app_gallery, r"style_layer_weights must be non-negative numbers")
    at.text_input(key="s_style_layer_weights").input("1, 2").run()
    assert_refused(at, app_gallery, r"style_layer_weights needs one weight per style layer \(5\), got 2")


def test_the_app_shows_a_bad_queue_setting_instead_of_failing(app_gallery, monkeypatch):
    monkeypatch.setenv("JAXSTYLE_MAX_QUEUED", "0")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert any("JAXSTYLE_MAX_QUEUED must be a whole number between 1 and 1000" in e.value for e in at.error)


# ----- many users: the queue as the app shows it -------------------------------------------------


def test_the_app_shows_the_place_in_the_queue_and_a_full_queue(
    app_gallery, monkeypatch, fallback_weights, warm_cache_dir, shared_data
):
    import ui

    monkeypatch.setenv("JAXSTYLE_MAX_QUEUED", "2")
    monkeypatch.setenv("JAXSTYLE_CACHE_DIR", str(warm_cache_dir))  # where the fallback weights are made
    runner = ui.runner()  # the process-wide runner the app's sessions share
    assert (runner.max_queued, len(runner.active_ids())) == (2, 0)
    other = inputs.load_source(str(shared_data / "content" / "chicago.jpg"))
    style = inputs.load_source("udnie")
    try:
        busy = runner.submit(LONG, other, [style], title="another session's long run")
        wait_until(lambda: runner.position(busy) == 0, what="the other session's run to start")
        waiting = runner.submit(TINY, other, [style], title="another session's waiting run")

        at = open_generate()
        content = (shared_data / "content" / "tubingen.jpg").read_bytes()
        at.file_uploader(key="content_upload").upload("tubingen.jpg", content, "image/jpeg").run()
        at.select_slider(key="s_size_px").set_value(32)
        at.number_input(key="s_iterations").set_value(2).run()
        at.button(key="generate").click().run()
        assert not at.exception and not at.error
        mine = at.session_state["run_id"]
        assert runner.position(mine) == 2
        texts = [element.proto.text for element in at.get("progress")]
        assert "Waiting for the worker: 1 run(s) ahead" in texts

        at.button(key="generate").click().run()  # the queue now holds two: a third is refused
        assert not at.exception
        assert [e.value for e in at.error] == [
            "2 runs are already waiting (the limit is 2); wait for some to finish or cancel one"
        ]
        assert at.session_state["run_id"] == mine
        assert runner.queued_ids() == [waiting, mine]
        assert gallery_counts(app_gallery)[0] == 1 + 3
    finally:
        runner.shutdown()
    assert {get_run(app_gallery, run_id).status for run_id in (busy, waiting, mine)} == {"cancelled"}
