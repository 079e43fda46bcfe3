"""The servers the end-to-end tests start (the app, an OpenID Connect provider): a command in a
process group of its own, up once its health URL answers, stopped (group and all) when the block ends."""

from __future__ import annotations

import contextlib
import os
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
