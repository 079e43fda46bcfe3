"""The device JAX runs on, decided in one place: its platform, the description every run records,
and its memory counters.

Everything that asks "CPU or GPU?" (whether the step's convolutions run as Winograd's, the app's
default sizes, a benchmark's memory figure) asks here, so the answer and its spelling never drift
apart. JAX is imported inside the functions, so importing this module does not load it.
"""

from __future__ import annotations

from typing import Any

CPU = "cpu"


def _device() -> Any:
    """The device runs go to: JAX's first device of its default backend."""
    import jax

    return jax.devices()[0]


def platform() -> str:
    """The platform runs go to: ``cpu``, ``gpu`` or ``tpu``."""
    return _device().platform


def on_cpu() -> bool:
    """Whether runs go to the CPU."""
    return platform() == CPU


def description() -> str:
    """The device runs go to, as runs record it: ``cpu``, or the platform and the device's kind,
    e.g. ``gpu:NVIDIA H200``."""
    device = _device()
    return device.platform if device.platform == CPU else f"{device.platform}:{device.device_kind}"


def memory_stats() -> dict[str, Any] | None:
    """The device's memory counters (e.g. ``peak_bytes_in_use``); None on the CPU, which keeps none
    (the process's RSS is its memory there)."""
    device = _device()
    return device.memory_stats() if device.platform != CPU else None
