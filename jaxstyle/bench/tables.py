"""The text of the benchmarks' reports: figures that may be missing, and Markdown tables."""

from __future__ import annotations


def fmt(value: float | None, spec: str = ".2f", suffix: str = "") -> str:
    """``value`` formatted, or a dash where there is none."""
    return "—" if value is None else f"{value:{spec}}{suffix}"


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
