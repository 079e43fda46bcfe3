"""Atomic writes: a file is replaced whole or not at all, and nothing is left behind on failure."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from jaxstyle.files import atomic_write


def test_bytes_are_written_into_a_new_folder_as_an_ordinary_file(tmp_path):
    path = atomic_write(tmp_path / "new" / "out.png", b"\x89PNG data")
    assert path == tmp_path / "new" / "out.png"
    assert path.read_bytes() == b"\x89PNG data"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.png"]


def test_an_existing_file_is_replaced_whole_by_what_a_writer_writes(tmp_path):
    path = tmp_path / "backup.zip"
    path.write_bytes(b"old " * 1000)

    def writer(file) -> None:
        file.write(b"new ")
        file.write(b"content")

    atomic_write(path, writer)
    assert path.read_bytes() == b"new content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.zip"]


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failing_writer_leaves_no_file_and_no_temporary_file(tmp_path, error):
    def writer(file) -> None:
        file.write(b"half of it")
        raise error

    with pytest.raises(type(error)):
        atomic_write(tmp_path / "out.png", writer)
    assert list(tmp_path.iterdir()) == []


def test_a_folder_in_the_way_is_an_os_error_and_leaves_nothing(tmp_path: Path):
    (tmp_path / "out.png").mkdir()
    with pytest.raises(OSError):
        atomic_write(tmp_path / "out.png", b"data")
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    assert (tmp_path / "out.png").is_dir()


def test_an_interrupted_write_leaves_neither_file_nor_temporary(tmp_path):
    # Moved from test_catalog.py: the catalog's cache writes go through atomic_write.
    destination = tmp_path / "styles" / "x.jpg"

    def write_then_fail(file):
        file.write(b"half a jpeg")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(destination, write_then_fail)
    assert list(destination.parent.iterdir()) == []
    # And an existing good file is not clobbered by a failed rewrite.
    destination.write_bytes(b"good")
    with pytest.raises(KeyboardInterrupt):
        atomic_write(destination, write_then_fail)
    assert destination.read_bytes() == b"good"
    assert [path.name for path in destination.parent.iterdir()] == ["x.jpg"]
