"""The command line: ``python -m jaxstyle generate|weights|styles|gallery|train|models|video``.

One parser: each command module (``generate``, ``gallery``, ``instant``, ``video``) adds its
sub-commands with ``register(subparsers)`` and names the function that carries each one out with
``set_defaults(func=...)``; :func:`~jaxstyle.cli.common.run_command` calls it and turns the errors a
user can cause into one line on stderr and an exit status.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from jaxstyle.cli import common, gallery, generate, instant, video

__all__ = ["build_parser", "main"]

# In the order ``--help`` lists them.
_COMMAND_MODULES = (generate, gallery, instant, video)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command; a parsed command's ``func`` carries it out."""
    parser = argparse.ArgumentParser(prog="python -m jaxstyle", description="Neural style transfer in JAX.")
    commands = parser.add_subparsers(dest="command", required=True)
    for module in _COMMAND_MODULES:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m jaxstyle`` with ``argv`` (default: the process's); returns the exit status."""
    return common.run_command(build_parser().parse_args(argv))
