"""The machine's load, which every timing depends on: a comparison (jaxstyle beside a peer, or any
A-against-B timing) is started on a machine whose 1-minute load average is at most its core count,
or refused (:func:`wait_for_quiet`); the video bench starts each measurement once the machine is
quiet (:class:`Gate`); and the load each measurement started and ended at is kept in its report
(:func:`measurement_loads`), so a figure measured on a busy machine can be told apart."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from jaxstyle.bench import process

# How long a comparison waits for a busy machine to calm down before it is refused.
BUSY_WAIT_S = 60.0
POLL_S = 5.0


def one_minute_load() -> float:
    return process.load_average()[0]


def wait_for_quiet(
    *,
    wait_s: float | None = None,
    read_load: Callable[[], float] | None = None,
    sleep: Callable[[float], Any] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Wait up to ``wait_s`` (default :data:`BUSY_WAIT_S`) for the 1-minute load average
    (``read_load``, default :func:`one_minute_load`) to fall to the core count; the last load read,
    the cores, the seconds waited and whether the machine is still ``busy``."""
    wait_s = BUSY_WAIT_S if wait_s is None else wait_s
    read_load = read_load or one_minute_load
    sleep = sleep or time.sleep
    limit = process.cores()
    waited = 0.0
    load = read_load()
    if load > limit and wait_s > 0:
        log(f"the 1-minute load average is {load:.2f}, above the {limit} cores: waiting up to {wait_s:.0f} s…")
    while load > limit and waited < wait_s:
        pause = min(POLL_S, wait_s - waited)
        sleep(pause)
        waited += pause
        load = read_load()
    return {"load_average_1min": load, "cores": limit, "waited_s": waited, "busy": load > limit}


def busy_message(check: dict[str, Any]) -> str:
    """The one line a refused comparison ends with."""
    return (
        f"refused: the 1-minute load average is {check['load_average_1min']:.2f}, above this machine's "
        f"{check['cores']} cores, after {check['waited_s']:.0f} s of waiting; a comparison timed now would "
        "measure the other work too (wait for a quieter machine, or pass --allow-busy to measure anyway)"
    )


class Gate:
    """Each measurement in a fresh process, started once the 1-minute load average is below
    ``max_load`` (or after ``wait_s`` of waiting, at the quietest load seen), with the load average
    recorded before (:func:`process.spawn`) and after it."""

    def __init__(self, max_load: float, wait_s: float, log: Callable[[str], None]) -> None:
        self.max_load, self.wait_s, self.log = max_load, wait_s, log

    def wait(self) -> float:
        started = time.monotonic()
        quietest = one_minute_load()
        while True:
            load = one_minute_load()
            waited = time.monotonic() - started
            if load < self.max_load:
                return waited
            if waited >= self.wait_s:
                if load <= quietest + 0.05:
                    self.log(f"  the load average is still {load:.2f} ≥ {self.max_load:g} after {waited:.0f} s: "
                             "measuring now (its quietest)")  # fmt: skip
                    return waited
                if waited >= 2 * self.wait_s:
                    self.log(f"  the load average is {load:.2f}, quietest {quietest:.2f}: measuring now")
                    return waited
            quietest = min(quietest, load)
            time.sleep(min(5.0, max(self.wait_s - waited, 1.0)))

    def measure(self, spec: dict, timeout_s: float) -> dict:
        waited = self.wait()
        row = process.spawn(spec, timeout_s)
        row.update(load_average_after=process.load_average(), waited_for_load_s=round(waited, 1))
        return row


def measurement_loads(report: Any) -> list[tuple[float, float | None]]:
    """(1-minute load average before, after) of every measurement process in ``report``, in order
    (after: None where only the start was recorded)."""
    found: list[tuple[float, float | None]] = []
    if isinstance(report, dict):
        if "load_average_before" in report:
            after = report.get("load_average_after")
            found.append((report["load_average_before"][0], after[0] if after else None))
        for value in report.values():
            found += measurement_loads(value)
    elif isinstance(report, list):
        for value in report:
            found += measurement_loads(value)
    return found


def load_line(report: dict) -> str:
    """The report's load average at its start and end, and the range its measurements started and
    ended at."""
    machine, loads = report["machine"], measurement_loads(report)
    line = f"load average (1 min) {machine['load_average_start'][0]:.2f} → {machine['load_average_end'][0]:.2f}"
    afters = [after for _, after in loads if after is not None]
    if afters:
        befores = [before for before, _ in loads]
        line += (f"; before each measurement {min(befores):.2f}–{max(befores):.2f}, after it "
                 f"{min(afters):.2f}–{max(afters):.2f} ({len(loads)} measurements)")  # fmt: skip
    return line
