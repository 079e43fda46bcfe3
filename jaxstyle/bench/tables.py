"""The text of the benchmarks' reports: figures that may be missing, and Markdown tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def fmt(value: float | None, spec: str = ".2f", suffix: str = "") -> str:
    """``value`` formatted, or a dash where there is none."""
    return "—" if value is None else f"{value:{spec}}{suffix}"


def row(*cells: object) -> str:
    """One Markdown table row."""
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def header(*titles: str) -> list[str]:
    """A Markdown table's header row and the line under it."""
    return [row(*titles), "|---" * len(titles) + "|"]


def by_size(rows: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """A report's rows keyed by size (``"256"``), smallest first."""
    return sorted(rows.items(), key=lambda item: int(item[0]))


def shape(size: Sequence[int]) -> str:
    """A width and a height (or any two sides) as ``W×H``."""
    return f"{size[0]}×{size[1]}"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def spaced(lines: list[str]) -> str:
    """``lines`` joined, with an empty line before and after every table (Markdown needs them)."""
    text = "\n".join(lines).split("\n")
    out: list[str] = []
    for line in text:
        is_row, was_row = line.startswith("|"), bool(out) and out[-1].startswith("|")
        if out and out[-1] and is_row != was_row and line:
            out.append("")
        out.append(line)
    return "\n".join(out)
