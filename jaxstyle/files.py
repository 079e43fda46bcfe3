"""Writing files whole or not at all: the one atomic-write helper every writer of a user-visible file uses.

A file that is written in place and interrupted (a full disk, Ctrl-C, a crash) is left half-written,
and a later reader trusts it: a truncated PNG, a catalog image that no longer decodes, a backup zip
that cannot be read. :func:`atomic_write` writes a temporary file beside the target, flushes it to
the disk, then renames it over the target, so the target is either the old file or the new one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

FILE_MODE = 0o644  # temporary files are created 0600; what we write is an ordinary user file


def atomic_write(
    path: str | os.PathLike,
    content: bytes | Callable[[BinaryIO], object],
    *,
    mode: int = FILE_MODE,
    fsync: bool = True,
) -> Path:
    """Write ``path`` through a temporary sibling, replacing an existing file only once the new one is complete.

    Args:
        path: the file to write; its folder is created if missing.
        content: the bytes to write, or a function that writes them to the open binary file it is given
            (e.g. ``lambda file: image.save(file, format="PNG")``).
        mode: the permission bits of the written file.
        fsync: flush the data to the disk before the rename, so a power cut can't leave an empty file
            in place of the old one (costs one disk sync per file).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OSError: the folder can't be created or written, or the disk is full. The target is then
            unchanged and no temporary file is left behind; anything ``content`` raises propagates
            the same way, ``KeyboardInterrupt`` included.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # In the same folder, so that os.replace is a rename within one file system (atomic).
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as file:
            if isinstance(content, bytes | bytearray | memoryview):
                file.write(content)
            else:
                content(file)
            if fsync:
                file.flush()
                os.fsync(file.fileno())
        os.chmod(temp_name, mode)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    return path
