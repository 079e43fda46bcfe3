"""What the benchmarks share: each measurement runs in a fresh process (spawn), the machine it runs
on, its peak memory, and the classic recipe the PyTorch peer runs."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from jaxstyle import paths

# The classic recipe, which the PyTorch peer runs: Adam on the pixels at a constant step of 0.02.
CLASSIC: dict[str, Any] = {"pyramid_levels": 1, "warmup_iterations": 0, "decay_power": 0.0, "learning_rate": 0.02}
# A worker's result is the last stdout line that starts with this.
RESULT_PREFIX = "BENCH-RESULT "


def peak_memory_gib() -> tuple[float, str]:
    """Peak RSS of this process, or the device's peak memory on a GPU."""
    if "jax" in sys.modules:
        import jax

        device = jax.devices()[0]
        stats = device.memory_stats() if device.platform != "cpu" else None
        if stats and "peak_bytes_in_use" in stats:
            return stats["peak_bytes_in_use"] / 2**30, "device"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "rss"


def spawn(spec: dict, timeout_s: float) -> dict:
    """Run one worker in a fresh process; its result is the last line it prints."""
    t0 = time.perf_counter()
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
    result["process_wall_s"] = time.perf_counter() - t0
    return result


def machine() -> dict:
    return {
        "platform": platform.platform(),
        "processor": cpu_model(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_start": list(os.getloadavg()),
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


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
