"""The benchmarks, ``python -m jaxstyle.bench`` (:mod:`jaxstyle.bench.cli`).

One module per benchmark: the speed table (:mod:`~jaxstyle.bench.speed`), the evaluation set
(:mod:`~jaxstyle.bench.evaluation`), trained instant models (:mod:`~jaxstyle.bench.instant`), the
built-in ones (:mod:`~jaxstyle.bench.builtin`, its workers, peer and report beside it), moving
pictures (:mod:`~jaxstyle.bench.video`) and the temporal filter (:mod:`~jaxstyle.bench.flicker`),
the runners (:mod:`~jaxstyle.bench.runners`). What they share: processes and the machine
(:mod:`~jaxstyle.bench.process`), its load (:mod:`~jaxstyle.bench.load`), the PyTorch peer
(:mod:`~jaxstyle.bench.pytorch_peer`, run by :mod:`~jaxstyle.bench.peer_runs`), contact sheets
(:mod:`~jaxstyle.bench.sheets`), table text (:mod:`~jaxstyle.bench.tables`) and the workers' table
(:mod:`~jaxstyle.bench.workers`).
"""

from jaxstyle.bench.cli import main

__all__ = ["main"]
