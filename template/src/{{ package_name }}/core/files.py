"""Small file helpers: friendly CSV reading and atomic writes.

An atomic write replaces the target in one step: a crash never leaves a
half-written file that DVC or the next stage would take for a good one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import PipelineError

if TYPE_CHECKING:
    import pandas as pd


def md5_of(path: Path) -> str:
    """md5 of the file's bytes: the hash DVC 3 records for a file."""
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "md5").hexdigest()


def require_file(path: Path, hint: str) -> None:
    """Raise a PipelineError naming the missing file and how to produce it."""
    if not path.is_file():
        raise PipelineError(f"{path} is missing: {hint}.")


def read_csv(path: Path, hint: str) -> pd.DataFrame:
    """Read a CSV file, turning a missing, empty or unreadable file into a PipelineError."""
    import pandas as pd

    require_file(path, hint)
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise PipelineError(f"{path} is empty: {hint}.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        message = str(error).strip().splitlines()[-1] if str(error).strip() else repr(error)
        raise PipelineError(f"{path} is not a readable CSV file: {message}") from None
    if frame.shape[1] == 0:
        raise PipelineError(f"{path} has no columns: {hint}.")
    return frame


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Call write(temporary_path) in path's folder, then move the result to path in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        write(temporary)
        umask = os.umask(0)
        os.umask(umask)
        temporary.chmod(0o666 & ~umask)  # the mode of a new file, not mkstemp's 0600
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    write_atomically(path, lambda target: target.write_text(text, encoding="utf-8"))


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2) + "\n")


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    write_atomically(path, lambda target: frame.to_csv(target, index=False, lineterminator="\n"))
