"""``python -m jaxstyle.bench``: the benchmarks (see :mod:`jaxstyle.bench.speed` for the speed table)."""

from jaxstyle.bench.speed import main

__all__ = ["main"]
