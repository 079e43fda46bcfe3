"""Joining a Ray cluster: its address, a quick check that something answers there, token
authentication, and a local head for tests and benchmarks (:func:`start_local_head`).

A cluster that can't be reached is one :class:`~jaxstyle.errors.ClusterError`, found before a run
is stored (a quick TCP check first, so a wrong address never hangs).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import ray

import jaxstyle
from jaxstyle.errors import ClusterError, SettingsError

log = logging.getLogger(__name__)

NAMESPACE = "jaxstyle"
CONNECT_CHECK_S = 3.0  # a TCP connect to the head that takes longer means nothing is there
TOKEN_FILE = Path.home() / ".ray" / "auth_token"


def ray_endpoint(address: str) -> tuple[str, int] | None:
    """The head's (host, port) of a Ray address, or None for ``auto`` (found from this machine).

    Raises:
        SettingsError: an address that is not ``auto``, ``HOST:PORT`` or ``ray://HOST[:PORT]``.
    """
    if address == "auto":
        return None
    rest = address.removeprefix("ray://")
    host, _, port = rest.rpartition(":")
    if address.startswith("ray://") and not port.isdigit():
        host, port = rest, "10001"
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in host:
        raise SettingsError(
            f"a Ray address is 'auto', HOST:PORT (e.g. 10.0.0.5:6379) or ray://HOST:10001, got {address!r}"
        )
    return host, int(port)


def check_reachable(address: str) -> None:
    """Refuse an address where no head answers at once (ClusterError), before Ray is asked."""
    endpoint = ray_endpoint(address)
    if endpoint is None:
        return
    try:
        socket.create_connection(endpoint, timeout=CONNECT_CHECK_S).close()
    except OSError as error:
        raise ClusterError(
            f"no Ray cluster answers at {address} ({error.strerror or error}): start one with "
            "`ray start --head` on that host, or fix JAXSTYLE_RAY_ADDRESS / --ray-address"
        ) from None


def use_token_if_there() -> None:
    """``ray start --head`` turns on token authentication when its machine has a token (Ray 2.60:
    ``~/.ray/auth_token``, which a first local ``ray.init()`` creates, or ``RAY_AUTH_TOKEN_PATH``),
    and a driver that names the address must then say so (``RAY_AUTH_MODE=token``): do it for the
    user when this machine has a token.

    Ray reads the variable when it is imported, so it is told to read its settings again.
    """
    token_path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    has_token = os.environ.get("RAY_AUTH_TOKEN") or Path(token_path or TOKEN_FILE).is_file()
    if "RAY_AUTH_MODE" in os.environ or not has_token:
        return
    os.environ["RAY_AUTH_MODE"] = "token"
    try:
        from ray._raylet import AuthenticationTokenLoader, Config

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()
    except Exception:  # noqa: BLE001 — a private API; without it a named address asks for the variable
        log.debug("could not make Ray read RAY_AUTH_MODE again", exc_info=True)


def join(address: str) -> bool:
    """Join the cluster at ``address`` as this process's Ray driver, jaxstyle's code going with
    it; True if this call joined it, False if this process had already.

    Raises:
        ClusterError: nothing answers there, or the cluster refuses this process (one clear line).
    """
    check_reachable(address)
    if ray.is_initialized():
        return False
    use_token_if_there()
    try:
        ray.init(
            address=address,
            namespace=NAMESPACE,
            # jaxstyle's code goes to the cluster with this job (Ray only uploads at this level)
            runtime_env={"py_modules": [str(Path(jaxstyle.__file__).parent)]},
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
    except Exception as error:  # noqa: BLE001 — ConnectionError, RuntimeError, …: one clear line
        if ray.is_initialized():
            ray.shutdown()
        hint = (
            "it may ask for a token: copy ~/.ray/auth_token from the head to this machine "
            "(or set RAY_AUTH_TOKEN) and set RAY_AUTH_MODE=token"
            if "auth" in str(error).lower() or ray_endpoint(address) is not None
            else "is `ray start --head` running on this machine?"
        )
        reason = str(error).strip().rstrip(".")
        raise ClusterError(f"could not join the Ray cluster at {address}: {reason}; {hint}") from None
    return True


def _ray_command() -> list[str]:
    beside_python = Path(sys.executable).with_name("ray")
    return [str(beside_python) if beside_python.exists() else shutil.which("ray") or "ray"]


def start_local_head(*, num_cpus: int, temp_dir: str, env: dict[str, str] | None = None) -> str:
    """Start a Ray head on 127.0.0.1 (for tests and benchmarks: nothing leaves this machine) and
    return its address, ``127.0.0.1:PORT``. ``temp_dir`` must be short (Ray's socket paths)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        *_ray_command(),
        "start",
        "--head",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        f"--num-cpus={num_cpus}",
        "--num-gpus=0",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--object-store-memory={100 * 2**20}",
        f"--temp-dir={temp_dir}",
    ]
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=180)
    return f"127.0.0.1:{port}"


def stop_local_heads() -> None:
    """Stop the Ray processes of this machine (``ray stop --force``), after leaving the cluster."""
    if ray.is_initialized():
        ray.shutdown()
    subprocess.run([*_ray_command(), "stop", "--force"], capture_output=True, timeout=120)
