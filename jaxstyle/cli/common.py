"""What the CLI's commands share: exit codes, the flags several commands take (``--gallery``,
``--weights``, ``--download-weights``), where a run executes (``--ray-address``), the progress bar,
the checks of ``--out``, and the one place errors become exit codes (:func:`run_command`).

Its own module so that every command module imports it without importing another command's.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jaxstyle.errors import Cancelled, JaxstyleError

EXIT_OK = 0
EXIT_BAD_INPUT = 2  # every command's exit status for input it refuses (one line on stderr)
EXIT_CANCELLED = 130  # a cancelled run or Ctrl-C, as a shell reports a SIGINT

if TYPE_CHECKING:
    from jaxstyle.runners import Backend
    from jaxstyle.weights import Weights


def run_command(args: argparse.Namespace) -> int:
    """Carry out a parsed command (its ``func``, set by the module that registered it); returns the
    exit status. Every error a user can cause ends in one line on stderr, never a traceback."""
    try:
        return args.func(args)
    except Cancelled as error:
        print(f"cancelled: {error}", file=sys.stderr)
        return EXIT_CANCELLED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_CANCELLED
    except JaxstyleError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:  # e.g. a full disk or an unwritable --out
        print(f"error: {error.strerror or error}: {error.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_BAD_INPUT


def add_gallery_flag(parser: argparse.ArgumentParser, *, what: str = "gallery database", default: Any = None) -> None:
    """``--gallery PATH``, the gallery a command reads or stores into (None: ``JAXSTYLE_GALLERY``,
    else the project's gallery.db). ``what`` says what the command uses of it; ``default``
    ``argparse.SUPPRESS`` keeps a value given before a sub-command when the flag is repeated after it."""
    parser.add_argument(
        "--gallery",
        type=Path,
        default=default,
        metavar="PATH",
        help=f"{what} (default: the project's gallery.db)",
    )


def add_weights_flags(parser: argparse.ArgumentParser) -> None:
    """``--weights FILE`` and ``--download-weights``, read by :func:`local_weights` and refused by
    :func:`ray_cluster` beside ``--ray-address``."""
    parser.add_argument("--weights", help="VGG19 weights file (Keras .h5 or converted .npz); else JAXSTYLE_WEIGHTS")
    parser.add_argument("--download-weights", action="store_true", help="download the pretrained weights if missing")


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


def check_out(out: Path, suffixes: Iterable[str]) -> None:
    """Refuse an ``--out`` of another kind than ``suffixes`` or in a folder that does not exist,
    before any work."""
    suffixes = tuple(suffixes)
    if out.suffix.lower() not in suffixes:
        raise JaxstyleError(f"--out must be a {', '.join(suffixes)} file, got {out}")
    if not out.parent.is_dir():
        raise JaxstyleError(f"output folder {out.parent} does not exist")


def use_compilation_cache() -> None:
    """Keep XLA's compiled programs in the project's cache, so a second run skips compiling."""
    from jaxstyle import transfer

    transfer.enable_compilation_cache()


def progress_bar(total: int | None, *, unit: str, quiet: bool, initial: int = 0) -> Any:
    """A command's progress on stderr (tqdm), in ``unit``s; ``quiet`` draws nothing."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit=unit, disable=quiet, file=sys.stderr, dynamic_ncols=True)
