"""Hostile input and faults, tried for real: through the app (AppTest), the job runner and the gallery.

What test_fetch.py, test_images.py, test_gallery.py and test_jobs.py already prove is not repeated
here; this file adds what they leave open (docs/limits.md's "Hostile input" and "Faults" tables map every case):

- the app shows a clear message for hostile URLs, files and settings, and writes nothing to the gallery;
- host names that resolve to private or metadata addresses (before and after a redirect), and
  bodies that never end;
- memory stays bounded on a decompression bomb that is just under the pixel limit;
- queue place and a full queue, as the app shows them;
- a worker thread killed mid-run, a process killed mid-run, a full disk and a gallery made read-only
  mid-run, and a weights download killed halfway.

Every server is a real one on 127.0.0.1; host names are resolved by a stand-in DNS (the only way to
have a name resolve to 10.x or 169.254.169.254 on a test machine); the disk is made full by SQLite
itself (``PRAGMA max_page_count``), which raises its real SQLITE_FULL.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import http.server
import io
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from jaxstyle import fetch, gallery, images, inputs, jobs, weights
from jaxstyle.errors import FetchError, GalleryError, SettingsError
from jaxstyle.jobs import JobRunner
from jaxstyle.settings import TransferSettings
from tests.support import REPO, wait_until

APP = str(REPO / "dashboard.py")

pytestmark = pytest.mark.timeout(300)

TINY = TransferSettings(size_px=32, iterations=2)
LONG = TransferSettings(size_px=32, iterations=5000)  # runs until it is cancelled or killed

# The stand-in DNS: names that resolve to addresses the fetcher must never contact.
FAKE_DNS = {
    "metadata.test": "169.254.169.254",
    "intranet.test": "10.0.0.5",
    "router.test": "192.168.1.1",
    "docker.test": "172.17.0.1",
    "loopback.test": "127.0.0.1",
    "loopback6.test": "::1",
}


# ----- shared helpers ---------------------------------------------------------------------------


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def get_run(path: Path, run_id: int) -> gallery.Run:
    with gallery.connect(path) as db:
        return gallery.get_run(db, run_id)


def gallery_counts(path: Path) -> tuple[int, int]:
    """(runs, stored input images) in the gallery at ``path``."""
    with gallery.connect(path) as db:
        return gallery.count_runs(db), db.execute("SELECT COUNT(*) FROM images").fetchone()[0]


def integrity(path: Path) -> str:
    with gallery.connect(path) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_PROXY": "127.0.0.1,localhost", **extra}
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env.pop(proxy, None)
    return env


def without_file_permission_override(command: list[str]) -> list[str]:
    """Root writes anywhere: drop the capabilities that let it ignore file permissions."""
    if os.geteuid() == 0:
        return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--", *command]
    return command


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


class HostileHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    photo = b""

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def send_body(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):  # the name http.server calls
        routes = {
            "/photo.jpg": lambda: self.send_body(self.photo, "image/jpeg"),
            "/page.html": lambda: self.send_body(b"<!DOCTYPE html><html><body>Log in</body></html>", "image/jpeg"),
            "/api.json": lambda: self.send_body(b'{"image": "https://example.org/a.jpg"}', "application/json"),
            "/to-private": lambda: self.redirect("http://10.0.0.1/photo.jpg"),
            "/to-metadata-name": lambda: self.redirect("http://metadata.test/latest/meta-data/"),
            "/to-intranet-name": lambda: self.redirect("http://intranet.test/photo.jpg"),
            "/loop": lambda: self.redirect("/loop"),
            "/huge-announced": self.huge_announced,
            "/forever": self.forever,
            "/slow-weights": self.slow_weights,
            "/weights": lambda: self.send_body(WEIGHTS_BODY, "application/octet-stream"),
        }
        route = routes.get(self.path)
        if route is None:
            self.send_body(b"not here", "text/plain")
        else:
            route()

    def huge_announced(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(60 * 1024 * 1024))
        self.end_headers()
        self.wfile.flush()
        time.sleep(2)

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

    def slow_weights(self) -> None:
        # Announces the whole file, then sends it slowly: a download that a kill can interrupt.
        self.send_response(200)
        self.send_header("Content-Length", str(len(WEIGHTS_BODY)))
        self.end_headers()
        try:
            for start in range(0, len(WEIGHTS_BODY), 16384):
                self.wfile.write(WEIGHTS_BODY[start : start + 16384])
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass


WEIGHTS_BODY = bytes(range(256)) * 8192  # 2 MB standing in for the weight file
WEIGHTS_MD5 = hashlib.md5(WEIGHTS_BODY).hexdigest()


class QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients hanging up early is what these tests are about


@pytest.fixture(scope="module")
def server(shared_data: Path) -> Iterator[str]:
    HostileHandler.photo = (shared_data / "content" / "golden_gate.jpg").read_bytes()
    httpd = QuietServer(("127.0.0.1", 0), HostileHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


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


def seed_run(path: Path, shared_data: Path) -> int:
    """One finished run with real (small) images, stored through the gallery API."""
    with Image.open(shared_data / "content" / "chicago.jpg") as photo:
        content = encode(images.fit_long_side(photo.convert("RGB"), 48), "JPEG")
    with Image.open(shared_data / "styles" / "udnie.jpg") as painting:
        style = encode(images.fit_long_side(painting.convert("RGB"), 48), "JPEG")
    with gallery.connect(path) as db:
        content_sha = gallery.store_image(db, content, origin_kind="upload", origin="chicago.jpg")
        style_sha = gallery.store_image(db, style, origin_kind="catalog", origin="udnie")
        run_id = gallery.add_run(db, TINY.to_dict(), content_sha=content_sha, style_shas=[style_sha], title="seed")
        gallery.start_run(db, run_id, total_steps=2)
        gallery.finish_run(
            db, run_id, image_png=images.png_bytes(images.open_image(content)), initial_losses={"total": 2.0},
            final_losses={"total": 1.0}, loss_history=[{"step": 2, "total": 1.0}], compile_s=0.1, run_s=0.2,
            device="cpu", weights_source="random-fallback",
        )  # fmt: skip
    return run_id


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


# ----- faults: a worker dies ---------------------------------------------------------------------


def kill_thread(thread: threading.Thread, exception: type[BaseException] = SystemExit) -> None:
    """Raise ``exception`` inside another thread, as CPython does for a KeyboardInterrupt.

    It lands at the thread's next Python instruction: between two compiled steps, in the middle of
    whatever the run is doing. It is the nearest thing to killing a thread from outside.
    """
    hit = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(exception))
    assert hit == 1, "the thread was not found"


@pytest.fixture
def loaded(shared_data) -> tuple[inputs.LoadedImage, inputs.LoadedImage]:
    return (
        inputs.load_source(str(shared_data / "content" / "tubingen.jpg")),
        inputs.load_source(str(shared_data / "styles" / "starry_night.jpg")),
    )


def test_a_worker_killed_mid_run_fails_that_run_with_the_reason_and_the_queue_goes_on(
    gallery_path, fallback_weights, loaded
):
    workers_seen: list[threading.Thread] = []

    def load_weights():  # runs in the worker thread: tells the test which thread that is
        workers_seen.append(threading.current_thread())
        return fallback_weights

    content, style = loaded
    runner = JobRunner(gallery_path, weights_loader=load_weights, report_every=1)
    try:
        victim = runner.submit(LONG, content, [style])
        after = runner.submit(TINY, content, [style])
        wait_until(lambda: runner.progress(victim).step >= 2, what="the run to be under way")
        kill_thread(workers_seen[0])

        wait_until(lambda: runner.progress(victim).finished, what="the killed run to be marked")
        progress = runner.progress(victim)
        assert progress.status == "failed"
        assert progress.error.startswith("the worker running it stopped unexpectedly (SystemExit)")
        run = get_run(gallery_path, victim)
        assert (run.status, run.error) == ("failed", progress.error)
        assert run.step >= 1  # what it did is kept (progress is written at most once a second)

        wait_until(lambda: runner.progress(after).finished, what="the next run to end")
        assert get_run(gallery_path, after).status == "done"  # a new worker took over
        assert runner.worker_deaths == 1
        assert not workers_seen[0].is_alive()
    finally:
        runner.shutdown()


def test_a_base_exception_from_a_run_fails_it_and_a_new_worker_takes_over(gallery_path, fallback_weights, loaded):
    calls = []

    def load_weights():
        calls.append(threading.current_thread())
        if len(calls) == 1:
            raise KeyboardInterrupt  # not an Exception: escapes the run's own handling
        return fallback_weights

    content, style = loaded
    runner = JobRunner(gallery_path, weights_loader=load_weights)
    try:
        first = runner.submit(TINY, content, [style])
        second = runner.submit(TINY, content, [style])
        wait_until(lambda: runner.progress(second).finished, what="the second run to end")
        assert runner.progress(first).status == "failed"
        assert "KeyboardInterrupt" in get_run(gallery_path, first).error
        assert get_run(gallery_path, second).status == "done"
        assert calls[0] is not calls[1]  # the second ran on the replacement worker
        assert runner.worker_deaths == 1
    finally:
        runner.shutdown()


KILLED_PROCESS = """
import sys, time
from jaxstyle import inputs, weights
from jaxstyle.jobs import JobRunner
from jaxstyle.settings import TransferSettings

path, content, style = sys.argv[1:4]
runner = JobRunner(path, weights=weights.load_weights(), report_every=1)
content, style = inputs.load_source(content), inputs.load_source(style)
finished = runner.submit(TransferSettings(size_px=32, iterations=2), content, [style])
while not runner.progress(finished).finished:
    time.sleep(0.05)
running = runner.submit(TransferSettings(size_px=32, iterations=5000), content, [style])
waiting = runner.submit(TransferSettings(size_px=32, iterations=2), content, [style])
while runner.progress(running).step < 2:
    time.sleep(0.05)
print(finished, running, waiting, flush=True)
time.sleep(300)
"""


def test_a_process_killed_mid_run_leaves_its_runs_failed_naming_it_and_earlier_runs_intact(
    gallery_path, warm_cache_dir, fallback_weights, content_path, style_path
):
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_PROCESS, str(gallery_path), str(content_path), str(style_path)],
        env=subprocess_env(JAXSTYLE_CACHE_DIR=str(warm_cache_dir)), stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        finished, running, waiting = (int(word) for word in process.stdout.readline().split())
        assert get_run(gallery_path, running).status == "running"  # its process lives: left alone
        image_before = _image(gallery_path, finished)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        process.stdout.close()
    killed = f"the process that ran it (pid {process.pid} on {socket.gethostname()}) ended before it finished"
    run = get_run(gallery_path, running)
    assert (run.status, run.error) == ("failed", f"interrupted: {killed}")
    assert run.step >= 1  # what it did is kept
    assert get_run(gallery_path, waiting).status == "failed"  # queued there: it will never run
    assert get_run(gallery_path, finished).status == "done"
    assert _image(gallery_path, finished) == image_before
    assert integrity(gallery_path) == "ok"


def _image(path: Path, run_id: int) -> bytes:
    with gallery.connect(path) as db:
        data = gallery.run_image(db, run_id)
    Image.open(io.BytesIO(data)).load()  # decodes in full
    return data


# ----- faults: the disk is full, the gallery is read-only ----------------------------------------


def fill_the_disk(db) -> None:
    """Let this connection's file grow no more: SQLite then fails writes with its real SQLITE_FULL."""
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")


def test_a_full_disk_is_named_and_earlier_runs_stay_intact(gallery_path, shared_data):
    earlier = seed_run(gallery_path, shared_data)
    image_before = _image(gallery_path, earlier)
    big_png = encode(Image.effect_noise((128, 128), 64).convert("RGB"), "PNG")  # incompressible: new pages
    with gallery.connect(gallery_path) as db:
        sha = gallery.store_image(db, images.png_bytes(Image.new("RGB", (8, 8))), origin_kind="upload", origin="a")
        run_id = gallery.add_run(db, TINY.to_dict(), content_sha=sha, style_shas=[sha])
        gallery.start_run(db, run_id, total_steps=2)
        fill_the_disk(db)
        with pytest.raises(GalleryError) as raised:
            gallery.finish_run(
                db, run_id, image_png=big_png, initial_losses={}, final_losses={}, loss_history=[],
                compile_s=0, run_s=0, device="cpu", weights_source="random-fallback",
            )  # fmt: skip
        assert str(raised.value) == f"cannot write {gallery_path}: the disk is full"
        with pytest.raises(GalleryError, match="the disk is full"):
            gallery.store_image(db, big_png, origin_kind="upload", origin="b.png")
    run = get_run(gallery_path, run_id)
    assert (run.status, run.has_image) == ("running", False)  # no half-finished run
    assert _image(gallery_path, earlier) == image_before
    assert integrity(gallery_path) == "ok"


@pytest.fixture
def small_disk(monkeypatch) -> threading.Event:
    """While the returned event is set, every gallery connection the app opens finds the disk full."""
    full = threading.Event()
    real_connect = gallery.connect

    def connect(path=None, **kwargs):
        db = real_connect(path, **kwargs)
        if full.is_set():
            fill_the_disk(db)
        return db

    monkeypatch.setattr(gallery, "connect", connect)
    return full


def test_a_full_disk_fails_the_run_with_the_cause_and_the_runner_goes_on(
    gallery_path, fallback_weights, loaded, small_disk, shared_data
):
    content, style = loaded
    runner = JobRunner(gallery_path, weights=fallback_weights, report_every=1, preview_every=1)
    try:
        earlier = runner.submit(TINY, content, [style])
        wait_until(lambda: runner.progress(earlier).finished, what="the first run")
        image_before = _image(gallery_path, earlier)

        doomed = runner.submit(TINY.replace(size_px=96), content, [style])  # its result needs new pages
        small_disk.set()
        wait_until(lambda: runner.progress(doomed).finished, what="the run on a full disk to end")
        progress = runner.progress(doomed)
        assert progress.status == "failed"
        assert progress.error == f"could not store the result: cannot write {gallery_path}: the disk is full"

        # New inputs can't be stored either: the submit says why and queues nothing.
        other = inputs.load_source(str(shared_data / "content" / "chicago.jpg"))
        with pytest.raises(GalleryError, match="the disk is full"):
            runner.submit(TINY, other, [style])
        assert runner.queued_ids() == []

        small_disk.clear()  # space again: the failure is in the gallery, and the next run works
        wait_until(lambda: get_run(gallery_path, doomed).status == "failed", what="the failure to be recorded")
        assert get_run(gallery_path, doomed).error == progress.error
        after = runner.submit(TINY, other, [style])
        wait_until(lambda: runner.progress(after).finished, what="the run after the full disk")
        assert get_run(gallery_path, after).status == "done"
    finally:
        runner.shutdown()
    assert _image(gallery_path, earlier) == image_before
    assert integrity(gallery_path) == "ok"


READ_ONLY_MID_RUN = """
import sys, time
from jaxstyle import gallery, inputs, weights
from jaxstyle.jobs import JobRunner
from jaxstyle.settings import TransferSettings

path, content, style = sys.argv[1:4]
runner = JobRunner(path, weights=weights.load_weights(), report_every=1)
content, style = inputs.load_source(content), inputs.load_source(style)
finished = runner.submit(TransferSettings(size_px=32, iterations=2), content, [style])
while not runner.progress(finished).finished:
    time.sleep(0.05)
run = runner.submit(TransferSettings(size_px=32, iterations=300), content, [style])
while runner.progress(run).step < 1:
    time.sleep(0.05)
print(finished, run, flush=True)
sys.stdin.readline()  # meanwhile the test makes the gallery file read-only
while not runner.progress(run).finished:
    time.sleep(0.05)
print(runner.progress(run).status, "|", runner.progress(run).error, flush=True)
sys.stdin.readline()  # meanwhile the test makes it writable again
while True:  # the runner writes the refused outcome again, every few seconds
    with gallery.connect(path) as db:
        if gallery.get_run(db, run).status != "running":
            break
    time.sleep(0.2)
runner.shutdown()
"""


def test_a_gallery_made_read_only_mid_run_fails_the_run_naming_the_cause(
    gallery_path, warm_cache_dir, fallback_weights, content_path, style_path
):
    command = [sys.executable, "-c", READ_ONLY_MID_RUN, str(gallery_path), str(content_path), str(style_path)]
    log_path = gallery_path.with_name("runner.log")  # its warnings (progress it could not record) go here
    with log_path.open("w") as log:
        process = subprocess.Popen(
            without_file_permission_override(command), env=subprocess_env(JAXSTYLE_CACHE_DIR=str(warm_cache_dir)),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, cwd=REPO,
        )  # fmt: skip
    try:
        finished, run_id = (int(word) for word in process.stdout.readline().split())
        image_before = _image(gallery_path, finished)
        gallery_path.chmod(0o444)
        process.stdin.write("\n")
        process.stdin.flush()
        status, error = process.stdout.readline().strip().split(" | ", 1)
        assert status == "failed"
        assert error == (
            f"could not store the result: {gallery_path} is read-only; "
            "choose a writable gallery file with --gallery or JAXSTYLE_GALLERY"
        )
        assert get_run(gallery_path, run_id).status == "running"  # the gallery couldn't take it yet
        gallery_path.chmod(0o644)
        process.stdin.write("\n")
        process.stdin.flush()
        assert process.wait(timeout=60) == 0, log_path.read_text()[-3000:]
    finally:
        gallery_path.chmod(0o644)
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdin.close()
        process.stdout.close()
    run = get_run(gallery_path, run_id)
    assert (run.status, run.error) == ("failed", error)
    assert _image(gallery_path, finished) == image_before
    assert integrity(gallery_path) == "ok"


# ----- faults: a download killed halfway ---------------------------------------------------------


KILLED_DOWNLOAD = """
import sys
from jaxstyle import weights

url, md5, folder = sys.argv[1:4]
started = []

def progress(done, total):
    if not started and done > 200_000:
        started.append(done)
        print("downloading", done, total, flush=True)

weights.download_weights(progress=progress, urls=[url], md5=md5, dest_dir=folder)
print("finished", flush=True)
"""


def test_a_weights_download_killed_halfway_leaves_nothing_that_is_trusted(server, tmp_path, monkeypatch):
    monkeypatch.setenv("JAXSTYLE_CACHE_DIR", str(tmp_path / "cache"))
    folder = weights.weights_dir()
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_DOWNLOAD, f"{server}/slow-weights", WEIGHTS_MD5, str(folder)],
        env=subprocess_env(), stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        line = process.stdout.readline().split()
        assert line[0] == "downloading" and int(line[1]) < int(line[2]) == len(WEIGHTS_BODY)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        process.stdout.close()
    final = folder / weights.KERAS_FILE_NAME
    leftovers = list(folder.iterdir())
    assert not final.exists()
    assert leftovers and all(path.name != final.name for path in leftovers)  # a killed process can't clean up
    assert sum(path.stat().st_size for path in leftovers) < len(WEIGHTS_BODY)
    assert not weights.weights_status().pretrained  # the half file is never taken for the weights

    path = weights.download_weights(urls=[f"{server}/weights"], md5=WEIGHTS_MD5, dest_dir=folder)
    assert path == final and weights.md5_of(final) == WEIGHTS_MD5
