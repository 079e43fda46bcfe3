"""Helpers the tests share (conftest.py holds the fixtures only): where the repo, the app and the
test photos are, waiting and ports, a local HTTP server, child processes (their environment, the
command line), encoded images, and for the gallery's and the runner's tests settings and finished
runs.

The servers and the browser the end-to-end tests start (the app, a sign-in provider, Chromium) are
in servers.py.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxstyle.settings import TransferSettings

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "dashboard.py")  # what AppTest runs: the app as `streamlit run` starts it
SHARED_DATA = REPO.parent / "shared" / "data"
CONTENT_DIR = SHARED_DATA / "content"
STYLES_DIR = SHARED_DATA / "styles"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition, *, timeout_s: float = 180.0, what: str = "the condition") -> None:
    """Poll ``condition`` until it holds; fail the test, naming ``what``, after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.05)


class RoutedHandler(http.server.BaseHTTPRequestHandler):
    """A quiet HTTP/1.1 handler that answers a GET from ``routes()`` (path: what to send), 404 elsewhere."""

    protocol_version = "HTTP/1.1"

    def routes(self) -> dict[str, Callable[[], None]]:
        return {}

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        route = self.routes().get(self.path)
        if route is None:
            self.send_body(b"not here", "text/plain", status=404)
        else:
            route()

    def send_body(self, body: bytes, content_type: str, *, status: int = 200, length: bool = True) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length:
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Connection", "close")  # the body ends when the connection does
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def announce_only(self, length: int) -> None:
        """Announce a JPEG of ``length`` bytes and send nothing: only a client that trusts the header
        returns quickly."""
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.flush()
        time.sleep(3)

    def log_message(self, format, *args) -> None:  # keep test output quiet
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # a client hanging up early (a cancelled or capped download) is what many tests do


@contextlib.contextmanager
def local_http_server(handler) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1, in a thread, answering with ``handler``; yields its base URL."""
    httpd = _QuietServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a child Python process that imports jaxstyle from this checkout and
    reaches servers on 127.0.0.1 directly (never through a proxy), with ``extra`` set."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_PROXY": "127.0.0.1,localhost", **extra}
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env.pop(proxy, None)
    return env


def jaxstyle(*args: str) -> subprocess.CompletedProcess:
    """``python -m jaxstyle *args`` in a child process, run in the repo; its output as text."""
    return subprocess.run(
        [sys.executable, "-m", "jaxstyle", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=subprocess_env(),
        timeout=300,
    )


# --- images


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    """``image`` as a file in format ``fmt`` (PIL's name: "PNG", "JPEG"), written with ``params``."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def png_of(image: Image.Image) -> bytes:
    return encode(image, "PNG")


def solid_png(color: str, size: tuple[int, int] = (48, 32)) -> bytes:
    return png_of(Image.new("RGB", size, color))


def photo(path: Path, size: tuple[int, int]) -> np.ndarray:
    """The photo at ``path`` resized to ``size`` as the network takes it: (1, height, width, 3) in [0, 1]."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB").resize(size, Image.Resampling.BICUBIC), np.float32)[None] / 255.0


# --- the gallery's tests (the ``photos`` fixture they use is in conftest.py)

SETTINGS = TransferSettings(
    size_px=64,
    iterations=12,
    content_weight=2.0,
    style_weight=300.0,
    tv_weight=0.5,
    content_layers=("conv4_2", "conv5_2"),
    style_layers=("conv1_1", "conv2_1", "conv3_1"),
    style_layer_weights=(4.0, 2.0, 1.0),
    style_loss="w2",
    optimizer="lbfgs",
    learning_rate=0.05,
    ema_decay=0.9,
    scale_min_px=32,
    scale_iterations=7,
    init="noise",
    seed=1234,
    pooling="average",
    style_scale=1.5,
    style_blend=(3.0, 1.0),
    preserve_color="luminance",
)


def add_done_run(
    db, photos, *, content="tubingen", styles=("starry_night",), title="", tags=(), owner=None, origin=None,
    result="navy", **changes,
) -> int:  # fmt: skip
    """Store inputs and a finished run (of ``owner``, who names the photo ``origin``, its result a
    solid ``result`` colour); returns its id."""
    from jaxstyle import gallery  # here, not above: conftest imports this module, and most tests need no gallery

    settings = TransferSettings(size_px=64, iterations=10, **changes).to_dict()
    origin = origin or f"{content}.jpg"
    content_sha = gallery.store_image(db, photos[content], origin_kind="file", origin=origin, owner=owner)
    style_shas = [gallery.store_image(db, photos[s], origin_kind="catalog", origin=s, owner=owner) for s in styles]
    run_id = gallery.add_run(
        db, settings, content_sha=content_sha, style_shas=style_shas, title=title, tags=tags, owner=owner
    )
    gallery.start_run(db, run_id, total_steps=10)
    gallery.finish_run(
        db,
        run_id,
        image_png=solid_png(result),
        initial_losses={"total": 9.0},
        final_losses={"total": 1.0 + run_id / 100},
        loss_history=[{"step": 10, "size_px": 64, "total": 1.0, "content": 0.5, "style": 0.4, "tv": 0.1}],
        compile_s=0.5,
        run_s=1.5,
        device="cpu",
        weights_source="random fallback",
    )
    return run_id


# --- the runner's tests and the app's (AppTest)


def cards(at, prefix: str) -> list[int]:
    """Run ids of the cards an AppTest page shows (their Open buttons have keys ``<prefix>_<id>``)."""
    return [int(b.key.rsplit("_", 1)[1]) for b in at.button if b.key and b.key.startswith(f"{prefix}_")]


TINY = TransferSettings(size_px=32, iterations=2)
LONG = TransferSettings(size_px=32, iterations=5000)  # runs until it is cancelled or killed


def get_run(path: Path, run_id: int):
    """Run ``run_id`` as the gallery at ``path`` holds it (a ``gallery.Run``)."""
    from jaxstyle import gallery

    with gallery.connect(path) as db:
        return gallery.get_run(db, run_id)


def seed_run(path: Path, shared_data: Path) -> int:
    """One finished run with real (small) images, stored through the gallery API."""
    from jaxstyle import gallery, images

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
