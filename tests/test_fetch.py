"""fetch.py: downloads from a real HTTP server on 127.0.0.1, and every way a URL is refused.

Only the loopback test server is ever contacted: private and metadata addresses are refused by
the address filter before any connection is made.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jaxstyle import fetch, images
from jaxstyle.errors import FetchError, ImageError
from tests.support import RoutedHandler, local_http_server

pytestmark = pytest.mark.timeout(30)

CAP_BYTES = 10_000  # a small byte cap for the over-the-cap routes


class Handler(RoutedHandler):
    jpeg: bytes = b""

    def routes(self):
        return {
            "/photo.jpg": lambda: self.send_body(self.jpeg, "image/jpeg"),
            "/photo-as-text": lambda: self.send_body(self.jpeg, "text/plain"),
            "/page.html": lambda: self.send_body(b"<!DOCTYPE html><html><body>Hello</body></html>", "text/html"),
            "/api.json": lambda: self.send_body(b'{"url": "https://example.org/a.jpg"}', "application/json"),
            "/lying.jpg": lambda: self.send_body(b"<html><body>Access denied</body></html>", "image/jpeg"),
            "/big-with-length": lambda: self.send_body(b"x" * (CAP_BYTES + 1), "image/jpeg"),
            "/big-without-length": lambda: self.send_body(b"x" * (CAP_BYTES * 5), "image/jpeg", length=False),
            "/huge-announced": lambda: self.announce_only(10 * 1024**3),
            "/over-the-input-cap": lambda: self.announce_only(images.MAX_INPUT_BYTES + 1),
            "/loop": lambda: self.redirect("/loop"),
            "/to-photo": lambda: self.redirect("/photo.jpg"),
            "/to-private": lambda: self.redirect("http://10.0.0.1/photo.jpg"),
            "/to-metadata": lambda: self.redirect("http://169.254.169.254/latest/meta-data/"),
            "/to-file": lambda: self.redirect("file:///etc/passwd"),
            "/trickle": self.trickle,
        }

    def trickle(self) -> None:
        # One byte every 50 ms: never idle long enough for a read timeout.
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", "1000")
        self.end_headers()
        try:
            for _ in range(200):  # stops by itself after ~10 s
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass  # the client hung up, as it should


@pytest.fixture(scope="module")
def server(shared_data: Path) -> Iterator[str]:
    Handler.jpeg = (shared_data / "content" / "golden_gate.jpg").read_bytes()
    with local_http_server(Handler) as url:  # it ignores clients hanging up early, what many tests are about
        yield url


def get(url: str, **kwargs) -> bytes:
    """fetch_bytes with loopback allowed (the test server lives there) and short timeouts."""
    kwargs.setdefault("connect_timeout_s", 2)
    kwargs.setdefault("read_timeout_s", 2)
    kwargs.setdefault("total_timeout_s", 10)
    return fetch.fetch_bytes(url, allow_private=True, **kwargs)


# --- good downloads


def test_downloads_a_jpeg_with_progress(server, shared_data: Path):
    calls = []
    data = get(f"{server}/photo.jpg", progress=lambda done, total: calls.append((done, total)))
    assert data == (shared_data / "content" / "golden_gate.jpg").read_bytes()
    assert calls[-1] == (len(data), len(data))
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert images.open_image(data, name="photo.jpg").size == (979, 734)


def test_follows_a_redirect(server, shared_data: Path):
    assert get(f"{server}/to-photo") == (shared_data / "content" / "golden_gate.jpg").read_bytes()


def test_content_type_does_not_matter_only_the_bytes(server):
    data = get(f"{server}/photo-as-text")
    assert images.open_image(data, name="photo-as-text").mode == "RGB"


# --- what comes back is not an image: the download succeeds, decoding says what it is


@pytest.mark.parametrize(("path", "kind"), [("/page.html", "HTML"), ("/api.json", "JSON"), ("/lying.jpg", "HTML")])
def test_non_images_fail_to_decode_with_a_hint(server, path, kind):
    url = f"{server}{path}"
    data = get(url)
    with pytest.raises(ImageError, match=f"{path}.*{kind}"):
        images.open_image(data, name=url)


# --- size, time and redirect limits


def test_refuses_a_body_announced_over_the_cap(server):
    with pytest.raises(FetchError, match=r"big-with-length.*Content-Length.*limit is 10,000"):
        get(f"{server}/big-with-length", max_bytes=CAP_BYTES)


def test_refuses_a_huge_announced_body_without_reading_it(server):
    # The server announces 10 GB, then sends nothing; reading would end in a read timeout instead.
    with pytest.raises(FetchError, match=r"huge-announced.*Content-Length"):
        get(f"{server}/huge-announced", read_timeout_s=2)


def test_stops_reading_past_the_cap_without_content_length(server):
    with pytest.raises(FetchError, match=r"big-without-length.*more than the limit of 10,000 bytes"):
        get(f"{server}/big-without-length", max_bytes=CAP_BYTES)


def test_gives_up_on_a_trickling_server(server):
    with pytest.raises(FetchError, match=r"trickle.*took longer than 0.5 s"):
        get(f"{server}/trickle", read_timeout_s=2, total_timeout_s=0.5)


def test_refuses_an_endless_redirect_loop(server):
    with pytest.raises(FetchError, match=r"loop.*too many redirects \(more than 3\)"):
        get(f"{server}/loop", max_redirects=3)


def test_reports_the_http_status(server):
    with pytest.raises(FetchError, match=r"/missing.jpg.*HTTP 404"):
        get(f"{server}/missing.jpg")


def test_reports_a_refused_connection(server):
    # A port nobody listens on: bind one, note it, close it.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(FetchError, match=rf"127.0.0.1:{port}.*cannot connect"):
        get(f"http://127.0.0.1:{port}/photo.jpg")


# --- addresses and schemes that are refused outright


@pytest.mark.parametrize(("path", "address"), [("/to-private", "10.0.0.1"), ("/to-metadata", "169.254.169.254")])
def test_refuses_a_redirect_to_a_private_address(server, path, address):
    # Loopback is allowed for the test server, but no other private range is.
    with pytest.raises(FetchError, match=rf"{path}.*redirected to http://{address}.*private"):
        get(f"{server}{path}")


def test_refuses_a_redirect_to_another_scheme(server):
    with pytest.raises(FetchError, match=r"to-file.*redirected to file:///etc/passwd.*only http:// and https://"):
        get(f"{server}/to-file")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "127.1.2.3", "[::ffff:127.0.0.1]", "0.0.0.0"])
def test_refuses_loopback_without_the_test_flag(server, host):
    port = server.rsplit(":", 1)[1]
    url = f"http://{host}:{port}/photo.jpg"
    with pytest.raises(FetchError, match=r"refused.*private, loopback"):
        fetch.fetch_bytes(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3/a.jpg",
        "http://192.168.0.1/a.jpg",
        "http://172.16.0.1/a.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/a.jpg",
        "http://[fc00::1]/a.jpg",
        "http://224.0.0.1/a.jpg",
        "http://240.0.0.1/a.jpg",
    ],
)
def test_refuses_private_and_reserved_addresses(url):
    with pytest.raises(FetchError, match=r"refused"):
        fetch.fetch_bytes(url)
    # The test flag only opens loopback.
    with pytest.raises(FetchError, match=r"refused"):
        fetch.fetch_bytes(url, allow_private=True)


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/a.jpg",
        "data:image/png;base64,iVBORw0KGgo=",
        "javascript:alert(1)",
        "gopher://example.com/",
        "example.com/a.jpg",
    ],
)
def test_refuses_other_schemes(url):
    with pytest.raises(FetchError, match=r"only http:// and https://"):
        fetch.fetch_bytes(url)


def test_refuses_a_url_without_a_host():
    with pytest.raises(FetchError, match="no host"):
        fetch.fetch_bytes("http:///a.jpg")


def test_the_default_cap_is_the_one_input_cap(server):
    # One byte over images.MAX_INPUT_BYTES, announced: refused on the header, naming that cap.
    cap = f"{images.MAX_INPUT_BYTES:,}"
    with pytest.raises(FetchError, match=rf"over-the-input-cap.*Content-Length.*the limit is {cap}$"):
        get(f"{server}/over-the-input-cap", read_timeout_s=2)
