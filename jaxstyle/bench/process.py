"""What every benchmark shares: each measurement runs in a fresh process (:func:`spawn`), the machine
it runs on (load average and cores when a report starts and when it ends), its peak memory, the
classic recipe the PyTorch peer runs, the params file the peer reads, and the report's JSON file."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jaxstyle import paths
from jaxstyle.files import atomic_write

# The classic recipe, which the PyTorch peer runs: Adam on the pixels at a constant step of 0.02.
CLASSIC: dict[str, Any] = {"pyramid_levels": 1, "warmup_iterations": 0, "decay_power": 0.0, "learning_rate": 0.02}
# A worker's result is the last stdout line that starts with this.
RESULT_PREFIX = "BENCH-RESULT "


def cores() -> int:
    """The cores this process may run on (what XLA, torch and onnxruntime share)."""
    return len(os.sched_getaffinity(0))


def load_average() -> list[float]:
    """The 1-, 5- and 15-minute load averages."""
    return list(os.getloadavg())


def peak_memory_gib() -> tuple[float, str]:
    """Peak RSS of this process, or the device's peak memory on a GPU."""
    if "jax" in sys.modules:
        from jaxstyle import devices

        stats = devices.memory_stats()
        if stats and "peak_bytes_in_use" in stats:
            return stats["peak_bytes_in_use"] / 2**30, "device"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "rss"


def spawn(spec: dict, timeout_s: float) -> dict:
    """Run one worker (``spec["kind"]``, see :mod:`jaxstyle.bench.workers`) in a fresh process; its
    result is the last line it prints, with the load average just before it started added."""
    before = load_average()
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "jaxstyle.bench", "--worker", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=paths.PROJECT_ROOT,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark worker {spec['kind']} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    result = json.loads(lines[-1].removeprefix(RESULT_PREFIX))
    result["process_wall_s"] = time.perf_counter() - started
    result["load_average_before"] = before
    return result


def machine() -> dict:
    """The machine a report is measured on, with its load and cores as the report starts
    (:func:`finish` adds them as it ends)."""
    return {
        "platform": platform.platform(),
        "processor": cpu_model(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_start": load_average(),
        "cores_start": cores(),
    }


def finish(report: dict) -> None:
    """Record the load average and the cores as ``report`` ends, beside :func:`machine`'s start."""
    report["machine"].update(load_average_end=load_average(), cores_end=cores())


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def versions(packages: Iterable[str]) -> dict[str, str | None]:
    """The installed version of each package (None: not installed)."""
    found: dict[str, str | None] = {}
    for name in packages:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def write_report(path: Path, report: dict) -> None:
    """The report as JSON at ``path``, whole or not at all (a long run saves it as it goes)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(Path(path), json.dumps(report, indent=1).encode())


# The peer must not import JAX (that would add JAX's memory to the peer's), so the VGG params
# cross to it as one flat npz file in the run's folder.
_PARAMS_FILE = "params.npz"


def save_params(params: dict, folder: Path) -> None:
    """Write a Flax VGG params pytree ``{"params": {layer: {kernel, bias}}}`` for :func:`load_params`."""
    import numpy as np

    flat = {f"{name}/{what}": np.asarray(a) for name, layer in params["params"].items() for what, a in layer.items()}
    np.savez(Path(folder) / _PARAMS_FILE, **flat)


def load_params(folder: Path) -> dict:
    """The params that :func:`save_params` wrote, as numpy arrays."""
    import numpy as np

    flat = np.load(Path(folder) / _PARAMS_FILE)
    params: dict = {"params": {}}
    for key in flat.files:
        name, what = key.split("/")
        params["params"].setdefault(name, {})[what] = flat[key]
    return params
