"""What the CLI's commands share: where a run executes (``--ray-address``) and with which
VGG19 weights (``--weights``, ``--download-weights``).

Its own module so that ``cli`` (``generate``) and ``cli_instant`` (``train``) both import it
without importing each other.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from jaxstyle.errors import JaxstyleError

EXIT_BAD_INPUT = 2  # every command's exit status for input it refuses (one line on stderr)

if TYPE_CHECKING:
    from jaxstyle.runners import Backend
    from jaxstyle.weights import Weights


def ray_cluster(args: argparse.Namespace) -> Backend | None:
    """The Ray backend of ``--ray-address``, joined (an unreachable cluster is one line here), or
    None without the flag. ``--weights`` and ``--download-weights`` are refused beside it."""
    if not args.ray_address:
        return None
    from jaxstyle import runners

    if args.weights or args.download_weights:
        raise JaxstyleError("--weights and --download-weights are for this machine: Ray workers load their own")
    backend = runners.backend_for(args.ray_address)
    backend.connect()
    return backend


def local_weights(args: argparse.Namespace) -> Weights:
    """The VGG19 weights of ``--weights`` / ``--download-weights``, saying so when they are the fallback."""
    from jaxstyle import weights

    loaded = weights.load_weights(args.weights, allow_download=args.download_weights)
    if not loaded.pretrained:
        print(f"note: {loaded.description}", file=sys.stderr)
    return loaded


def progress_bar(total: int | None, *, unit: str, quiet: bool, initial: int = 0) -> Any:
    """A command's progress on stderr (tqdm), in ``unit``s; ``quiet`` draws nothing."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit=unit, disable=quiet, file=sys.stderr, dynamic_ncols=True)
