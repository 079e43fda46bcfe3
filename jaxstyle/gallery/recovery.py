"""Crash recovery: each unfinished run records its owner process and a heartbeat, so that a run
left queued or running by a process that died is marked failed (with the reason) the next time
any process opens the gallery.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlite_utils

from jaxstyle.gallery.database import guarded, placeholders
from jaxstyle.gallery.values import now_iso
from jaxstyle.runs import ACTIVE_STATUSES, FAILED, QUEUED

STALE_AFTER_S = 600.0  # a running run with no heartbeat for this long is considered dead


def owner() -> dict[str, Any]:
    """The owner columns of a run this process adds, starts or reports on: pid, host and a fresh heartbeat."""
    return {"owner_pid": os.getpid(), "owner_host": socket.gethostname(), "heartbeat": time.time()}


def _pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (not Linux): trust kill()
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _stale_reason(row: Mapping[str, Any], now: float, stale_after_s: float, host: str) -> str | None:
    pid, owner_host, heartbeat = row["owner_pid"], row["owner_host"], row["heartbeat"]
    if pid is None or owner_host is None:
        return f"interrupted: it was left {row['status']} by a process that is gone"
    if owner_host == host and not _pid_alive(pid):
        return f"interrupted: the process that ran it (pid {pid} on {owner_host}) ended before it finished"
    idle_s = now - (heartbeat or 0.0)
    # A queued run of a live local process is just waiting its turn; anything else must keep beating.
    waiting = row["status"] == QUEUED and owner_host == host
    if idle_s > stale_after_s and not waiting:
        return (
            f"interrupted: no sign of life from pid {pid} on {owner_host} for {idle_s / 60:.0f} min "
            "(it was stopped or hung)"
        )
    return None


@guarded
def recover_stale_runs(db: sqlite_utils.Database, *, stale_after_s: float = STALE_AFTER_S) -> list[int]:
    """Mark failed the queued/running runs whose owner process is gone or silent too long.

    A run's owner is the process that added or started it. On this host a run fails when that
    pid no longer exists; on any host it fails when its heartbeat (updated by
    :func:`~jaxstyle.gallery.record_progress`) is older than ``stale_after_s`` (queued runs of a
    live local process excepted: they are waiting their turn). Runs of live owners are left
    alone, so any number of processes can open the same file. Called by
    :func:`~jaxstyle.gallery.connect`.

    Returns:
        The ids of the runs marked failed.
    """
    rows = list(
        db["runs"].rows_where(
            f"status IN ({placeholders(ACTIVE_STATUSES)})",
            list(ACTIVE_STATUSES),
            select="id, status, owner_pid, owner_host, heartbeat",
        )
    )
    now, host = time.time(), socket.gethostname()
    failed = []
    for row in rows:
        reason = _stale_reason(row, now, stale_after_s, host)
        if reason is None:
            continue
        # Only if nothing changed meanwhile: the owner may have just reported or finished.
        cursor = db.execute(
            "UPDATE runs SET status = ?, error = ?, finished = ? "
            "WHERE id = ? AND status = ? AND heartbeat IS ? AND owner_pid IS ?",
            [FAILED, reason, now_iso(), row["id"], row["status"], row["heartbeat"], row["owner_pid"]],
        )
        if cursor.rowcount:
            failed.append(row["id"])
    return failed
