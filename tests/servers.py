"""What the end-to-end tests start: servers (the app, an OpenID Connect provider), each a command in
a process group of its own, up once its health URL answers, stopped (group and all) when the block
ends; and Debian's Chromium driven by Playwright, with the page helpers the browser tests share.

Without Chromium (or Playwright) a browser test skips, saying how to install it, unless
JAXSTYLE_REQUIRE_BROWSER=1 (set by .ci/run) makes that a failure. The fixtures (``browser``,
``app_url``) are in conftest.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
import requests

from tests.support import REPO


def streamlit_command(port: int, *extra: str) -> list[str]:
    """``streamlit run dashboard.py`` on 127.0.0.1:``port``, headless, no usage stats, no file watcher."""
    return [
        sys.executable, "-m", "streamlit", "run", "dashboard.py", "--server.address=127.0.0.1",
        f"--server.port={port}", "--server.headless=true", "--browser.gatherUsageStats=false",
        "--server.fileWatcherType=none", *extra,
    ]  # fmt: skip


def app_health(response: requests.Response) -> bool:
    """Streamlit's ``/_stcore/health`` says "ok" once the app serves."""
    return response.text == "ok"


@contextlib.contextmanager
def serve(
    command: list[str], health: str, log_path: Path, env: Mapping[str, str],
    ok: Callable[[requests.Response], bool] = lambda response: response.ok,
) -> Iterator[subprocess.Popen]:  # fmt: skip
    """Run ``command`` (in the repo, output to ``log_path``) until the block ends, once ``health``
    answers as ``ok`` says; a server that exits or does not answer within 90 s fails the test with
    the end of its log."""
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, cwd=REPO, env=dict(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                pytest.fail(f"{command[2]} exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(requests.RequestException):
                if ok(requests.get(health, timeout=2)):
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"{health} did not answer within 90 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        yield server
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


# ----- Chromium -------------------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def missing_browser() -> str | None:
    """What is missing to drive Chromium (and how to install it), or None."""
    if not (Path(CHROMIUM).is_file() or shutil.which("chromium")):
        return f"no Chromium at {CHROMIUM}: install it with `apt-get install chromium` (never `playwright install`)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is missing: `pip install -r requirements-dev.txt`"
    return None


def skip_or_fail(problem: str | None) -> None:
    """Skip the test for ``problem`` (something a browser test needs is missing), or fail it where
    JAXSTYLE_REQUIRE_BROWSER=1 asks for every browser test to run; nothing when ``problem`` is None."""
    if problem:
        if os.environ.get("JAXSTYLE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"JAXSTYLE_REQUIRE_BROWSER=1 but {problem}")
        pytest.skip(problem)


@contextlib.contextmanager
def chromium(*extra_args: str) -> Iterator:
    """Headless Chromium (CHROMIUM_ARGS and ``extra_args``) through Playwright, closed when the block ends."""
    skip_or_fail(missing_browser())
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args])
        yield launched
        launched.close()


def settle(page) -> None:
    """Wait for the rerun an interaction started: acting during one can race with it."""
    from playwright.sync_api import expect

    page.wait_for_timeout(300)
    expect(page.get_by_test_id("stStatusWidget")).to_be_hidden(timeout=60_000)


def open_expander(page, label: str) -> None:
    """Open an expander. The first click after choosing in a multiselect can be taken by the
    multiselect (closing its menu), so click until it is open."""
    expander = page.get_by_test_id("stExpander").filter(has_text=label)
    for _ in range(3):
        expander.get_by_text(label).click()
        settle(page)
        if expander.locator("details[open]").count():
            return
    pytest.fail(f"the expander {label!r} did not open")


@contextlib.contextmanager
def new_page(browser, tmp_path: Path, *, shots: tuple[str, ...]):
    """A browser page that leaves failure.png behind when the flow fails, and then checks that
    every screenshot in ``shots`` was taken."""
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    try:
        yield page
    except Exception:
        page.screenshot(path=tmp_path / "failure.png")
        raise
    finally:
        page.close()
    for name in shots:
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000
