"""Contact sheets: the pictures a benchmark made, side by side in one JPEG, so a figure can be
checked against what it measured. Two layouts: a grid of square cells under a title line
(:func:`grid`), and rows of cells as tall as their tallest, each row labelled and each column
titled (:func:`labelled_rows`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image

_TITLE_PX = 16  # the title line above a grid
_LINE_PX = 13  # a line of the default font


def fit_box(image: Image, width: int, height: int) -> Image:
    """``image`` scaled (Lanczos) to fit inside width × height, keeping its shape."""
    from PIL import Image as PILImage

    scale = min(width / image.width, height / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.convert("RGB").resize(size, PILImage.Resampling.LANCZOS)


def grid(rows: Sequence[Sequence[Image | None]], cell_px: int, title: str) -> Image:
    """Each image fitted to a square cell and centred in it, a row of cells per row (None: an
    empty cell), under ``title``."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    from jaxstyle import images

    columns = max(len(cells) for cells in rows)
    sheet = PILImage.new("RGB", (columns * cell_px, len(rows) * cell_px + _TITLE_PX), "white")
    ImageDraw.Draw(sheet).text((4, 2), title, fill="black")
    for row, cells in enumerate(rows):
        for column, image in enumerate(cells):
            if image is None:
                continue
            image = images.fit_long_side(image.convert("RGB"), cell_px)
            x = column * cell_px + (cell_px - image.width) // 2
            y = _TITLE_PX + row * cell_px + (cell_px - image.height) // 2
            sheet.paste(image, (x, y))
    return sheet


def labelled_rows(
    titles: Sequence[Sequence[str]],
    rows: Sequence[tuple[str, Sequence[Image]]],
    cell_width: int,
    *,
    header_px: int,
    label_px: int,
) -> Image:
    """A column per entry of ``titles`` (its lines: a title, then notes in grey), and per row its
    label above its cells, each centred in a cell ``cell_width`` wide and as tall as the row's
    tallest (the caller sizes the cells)."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    heights = [max(image.height for image in cells) for _, cells in rows]
    sheet = PILImage.new("RGB", (len(titles) * cell_width, header_px + sum(label_px + h for h in heights)), "white")
    draw = ImageDraw.Draw(sheet)
    for column, lines in enumerate(titles):
        for index, line in enumerate(lines):
            draw.text((column * cell_width + 4, 2 + index * _LINE_PX), line, fill="black" if index == 0 else "dimgray")
    top = header_px
    for (label, cells), height in zip(rows, heights, strict=True):
        draw.text((4, top), label, fill="black")
        top += label_px
        for column, image in enumerate(cells):
            x = column * cell_width + (cell_width - image.width) // 2
            sheet.paste(image, (x, top + (height - image.height) // 2))
        top += height
    return sheet


def save(sheet: Image, dest: Path, *, quality: int = 85) -> Path:
    """The sheet as a JPEG at ``dest`` (its folder made)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(dest, quality=quality, optimize=True)
    return dest
