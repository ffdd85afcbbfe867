import os
import stat
from pathlib import Path

import pytest

from ..package import load

files = load("core.files")


def test_written_files_get_the_umask_mode_not_0600(tmp_path: Path):
    previous = os.umask(0o022)
    try:
        files.write_text(tmp_path / "out.txt", "hello\n")
    finally:
        os.umask(previous)

    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o644


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path):
    target = tmp_path / "out.txt"
    target.write_text("old\n")

    def broken(path: Path) -> None:
        path.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        files.write_atomically(target, broken)

    assert target.read_text() == "old\n"
    assert [path.name for path in tmp_path.iterdir()] == ["out.txt"]
