"""Guarded download of URLs that users type in.

A URL from a stranger can point anywhere: at the machine itself, at the cloud metadata service,
at an endless stream or at a server that trickles one byte a second. :func:`fetch_bytes` refuses
all of those. The address check comes from ``requests-hardened``: its transport adapter resolves
the host, refuses private, loopback, link-local, multicast and reserved addresses, and then
connects to the address it checked (so DNS can't change its answer in between); being in the
adapter, the check runs again for every redirect hop. What it lacks is added here: a scheme
check on every hop (we follow redirects ourselves so we never read a redirect's body), a byte
cap while streaming, and a total wall-time cap.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests_hardened import Config, HTTPSession
from requests_hardened.ip_filter import InvalidIPAddress

from jaxstyle import __version__, images
from jaxstyle.errors import FetchError

_CHUNK_BYTES = 64 * 1024
_USER_AGENT = f"jaxstyle/{__version__} (neural style transfer app; python-requests)"
_ALLOWED_SCHEMES = ("http", "https")


def _short(url: str) -> str:
    """The URL for a one-line message (data: URLs and the like can be megabytes long)."""
    url = url.replace("\n", " ").replace("\r", " ")
    return url if len(url) <= 200 else url[:197] + "..."


def _check_url(url: str, *, original: str) -> None:
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError as exc:
        raise FetchError(f"{_short(original)}: not a valid URL ({exc})") from None
    where = "" if url == original else f" (redirected to {_short(url)})"
    if parts.scheme.lower() not in _ALLOWED_SCHEMES:
        scheme = f"{parts.scheme}:" if parts.scheme else "no scheme"
        raise FetchError(f"{_short(original)}{where}: only http:// and https:// URLs can be fetched, not {scheme}")
    if not hostname:
        raise FetchError(f"{_short(original)}{where}: the URL has no host name")


def _session(*, allow_loopback: bool, connect_timeout_s: float, read_timeout_s: float) -> requests.Session:
    session = HTTPSession(
        Config(
            ip_filter_enable=True,
            ip_filter_allow_loopback_ips=allow_loopback,
            never_redirect=False,
            default_timeout=(connect_timeout_s, read_timeout_s),
            user_agent_override=_USER_AGENT,
        )
    )
    # No proxies, .netrc or CA overrides from the environment: a proxy would do the name
    # resolution itself and so bypass the address filter.
    session.trust_env = False
    return session


def fetch_bytes(
    url: str,
    *,
    max_bytes: int = images.MAX_INPUT_BYTES,
    connect_timeout_s: float = 5.0,
    read_timeout_s: float = 10.0,
    total_timeout_s: float = 30.0,
    max_redirects: int = 5,
    allow_private: bool = False,
    progress: Callable[[int, int | None], None] | None = None,
) -> bytes:
    """Download a URL's body, refusing anything that could hurt us or the network we are on.

    Args:
        url: an http:// or https:// URL from a user.
        max_bytes: refuse bodies larger than this (checked on Content-Length and while reading);
            by default the one input cap, :data:`jaxstyle.images.MAX_INPUT_BYTES`.
        connect_timeout_s: the longest wait for a connection.
        read_timeout_s: the longest wait for any single read.
        total_timeout_s: the longest the whole download may take, redirects included (against
            servers that trickle bytes; it can be overrun by at most one ``read_timeout_s``).
        max_redirects: how many redirects to follow.
        allow_private: tests only: also allow loopback addresses (127.0.0.0/8, ::1), where the
            test server runs. Every other private or reserved range stays refused. Never set
            this from user input.
        progress: called as ``progress(bytes_so_far, total_bytes_or_None)`` while reading.

    Returns:
        The body, at most ``max_bytes`` long. Its type is not checked: decode it with
        :func:`jaxstyle.images.open_image`, which names what it is if it is not an image.

    Raises:
        FetchError: with a one-line message naming the URL.
    """
    original = url = str(url).strip()
    deadline = time.monotonic() + total_timeout_s
    session = _session(allow_loopback=allow_private, connect_timeout_s=connect_timeout_s, read_timeout_s=read_timeout_s)
    with session:
        for _hop in range(max_redirects + 1):
            _check_url(url, original=original)
            response = _get(session, url, original=original, timeouts=(connect_timeout_s, read_timeout_s))
            with response:
                target = session.get_redirect_target(response)
                if target:
                    # The redirect's body is never read; the next hop is checked like the first.
                    url = urljoin(response.url, target)
                    _check_deadline(deadline, total_timeout_s, original)
                    continue
                if response.status_code >= 400:
                    reason = f" {response.reason}" if response.reason else ""
                    raise FetchError(f"{_short(original)}: the server answered HTTP {response.status_code}{reason}")
                return _read_body(
                    response,
                    original,
                    max_bytes=max_bytes,
                    deadline=deadline,
                    total_timeout_s=total_timeout_s,
                    read_timeout_s=read_timeout_s,
                    progress=progress,
                )
    raise FetchError(f"{_short(original)}: too many redirects (more than {max_redirects})")


def _get(session: requests.Session, url: str, *, original: str, timeouts: tuple[float, float]) -> requests.Response:
    where = "" if url == original else f" (redirected to {_short(url)})"
    try:
        return session.get(
            url,
            stream=True,
            allow_redirects=False,
            timeout=timeouts,
            # No compression: the byte cap then counts what crosses the wire, and a tiny gzip
            # body can't expand into a huge one (urllib3 still decodes if a server insists).
            headers={"Accept": "image/*,*/*;q=0.5", "Accept-Encoding": "identity"},
        )
    except InvalidIPAddress as exc:
        raise FetchError(
            f"{_short(original)}{where}: refused: the host resolves to a private, loopback, link-local "
            f"or reserved address ({exc})"
        ) from None
    except requests.exceptions.ConnectTimeout:
        raise FetchError(f"{_short(original)}{where}: the server did not answer within {timeouts[0]:g} s") from None
    except requests.exceptions.ReadTimeout:
        raise FetchError(f"{_short(original)}{where}: the server sent nothing for {timeouts[1]:g} s") from None
    except requests.exceptions.SSLError:
        raise FetchError(f"{_short(original)}{where}: the secure connection failed (TLS certificate problem)") from None
    except requests.exceptions.ConnectionError as exc:
        detail = "cannot resolve the host name" if "resolve" in str(exc) else "cannot connect"
        raise FetchError(f"{_short(original)}{where}: {detail}") from None
    except (requests.RequestException, urllib3.exceptions.HTTPError, ValueError, OSError) as exc:
        raise FetchError(f"{_short(original)}{where}: the request failed ({type(exc).__name__})") from None


def _check_deadline(deadline: float, total_timeout_s: float, original: str) -> None:
    if time.monotonic() > deadline:
        raise FetchError(f"{_short(original)}: the download took longer than {total_timeout_s:g} s")


def _read_body(
    response: requests.Response,
    original: str,
    *,
    max_bytes: int,
    deadline: float,
    total_timeout_s: float,
    read_timeout_s: float,
    progress: Callable[[int, int | None], None] | None,
) -> bytes:
    total_bytes: int | None = None
    length_header = response.headers.get("Content-Length")
    if length_header is not None and length_header.strip().isdigit():
        total_bytes = int(length_header)
        if total_bytes > max_bytes:
            raise FetchError(
                f"{_short(original)}: the file is {total_bytes:,} bytes (Content-Length); the limit is {max_bytes:,}"
            )
    chunks: list[bytes] = []
    received = 0
    try:
        while True:
            _check_deadline(deadline, total_timeout_s, original)
            # read1 returns as soon as any bytes arrive (read() would wait for a whole chunk),
            # so the deadline is checked between small reads even when a server trickles.
            chunk = response.raw.read1(_CHUNK_BYTES, decode_content=True)
            if not chunk:
                break
            received += len(chunk)
            if received > max_bytes:
                raise FetchError(f"{_short(original)}: the server sent more than the limit of {max_bytes:,} bytes")
            chunks.append(chunk)
            if progress is not None:
                progress(received, total_bytes)
    except FetchError:
        raise
    except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
        raise FetchError(f"{_short(original)}: the server sent nothing for {read_timeout_s:g} s") from None
    except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
        raise FetchError(f"{_short(original)}: the download broke off ({type(exc).__name__})") from None
    return b"".join(chunks)
