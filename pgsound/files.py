"""Writing files so that a crash never leaves one that looks complete (book: chapter 7, Checkpoints).

Every file pgsound writes for later (checkpoints, WAV and picture files) is written under a temporary name in
the same folder, flushed to disk, and renamed onto its final name only when it is whole: a rename within a
folder is atomic, so a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pgsound.errors import UserError

# atomic_write's temporary names: hidden, the final name, 12 hex digits, a suffix (".take.wav.0123456789ab.tmp")
TEMPORARY_NAME = re.compile(r"^\..+\.[0-9a-f]{12}\.\w+$")


def _sync_folder(folder: Path) -> None:
    """Flush a folder's entries to disk, so that a rename survives a power cut before anything older is
    deleted (checkpoint rotation). Windows has no such call, and some file systems refuse it: then nothing."""
    if os.name != "posix":
        return
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def temporary_path(path: str | os.PathLike, suffix: str = ".tmp") -> Path:
    """The name :func:`atomic_write` writes ``path`` under until it is whole: beside it, hidden, unique."""
    path = Path(path)
    return path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}{suffix}"


def remove_temporaries(folder: str | os.PathLike) -> None:
    """Remove what killed writers left in ``folder``: :func:`atomic_write`'s temporary files, nothing else."""
    folder = Path(folder)
    if folder.is_dir():
        for stale in folder.iterdir():
            if TEMPORARY_NAME.match(stale.name) and stale.is_file():
                stale.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is synced and renamed onto ``path``.

    On any error (or Ctrl-C) inside the block the temporary file is removed and ``path`` is left as it was; an
    ``OSError`` that names no file, or the temporary one (a full disk), is raised again naming ``path``.
    ``suffix`` ends the temporary name, for writers that choose a format by the file's extension.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkstemp: it makes the file private (0600). Mode 0666 here is narrowed by the umask, so the
    # file ends with the permissions a plain open() would give it.
    temp = temporary_path(path, suffix)
    try:
        os.close(os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    except OSError as error:  # a read-only folder: the user asked for path and knows nothing of the temporary name
        raise OSError(error.errno, error.strerror or str(error), str(path)) from None
    try:
        yield Path(temp)
        with open(temp, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temp, path)
        _sync_folder(path.parent)
    except OSError as error:
        Path(temp).unlink(missing_ok=True)
        if error.filename not in (None, str(temp)):
            raise
        # A full disk surfaces in a write or a close, where Python names no file, or names the temporary one:
        # the error names the file the caller asked for, so that the command line can say which one failed.
        raise OSError(error.errno, error.strerror or str(error), str(path)) from error
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise



def append_whole(path: str | os.PathLike, text: str) -> None:
    """Append ``text`` to ``path`` in full or not at all: a full disk leaves no half line in a log.

    An error cuts the file back to its size before the call and is raised naming ``path``.
    """
    data = memoryview(text.encode())
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        start = os.fstat(descriptor).st_size
        try:
            while data:  # a write can be cut short (the disk filled mid-way); the next one raises
                data = data[os.write(descriptor, data):]
        except OSError as error:
            os.ftruncate(descriptor, start)
            raise OSError(error.errno, error.strerror, str(path)) from None
    finally:
        os.close(descriptor)


def check_writable(path: str | os.PathLike, option: str) -> Path:
    """Check, before the work that ends in writing ``path``, that it can be written; ``option`` names it.

    Its nearest existing folder must be a writable folder, and ``path`` itself must not be a folder. Raises
    :class:`~pgsound.errors.UserError` naming the option and the path; creates nothing.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{option} {path} is a folder; expected a file name")
    _check_nearest_folder(path.parent, path, option)
    return path


def check_writable_folder(path: str | os.PathLike, option: str) -> Path:
    """Check, before the work, that files can be written in the folder ``path`` (made if missing)."""
    path = Path(path)
    _check_nearest_folder(path, path, option)
    return path


def _check_nearest_folder(folder: Path, path: Path, option: str) -> None:
    """The nearest existing folder at or above ``folder`` must be a folder this process can write in."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UserError(f"{option} {path}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{option} {path}: the folder {folder} is not writable")


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a JSON-lines file that :func:`append_whole` wrote, one per line.

    A line a crash or a bad disk damaged is left out with a warning naming the file and the line, so a run
    whose log was damaged can still be read and resumed.
    """
    path = Path(path)
    records, damaged = [], []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict):
            records.append(record)
        else:
            damaged.append(number)
    if damaged:
        warnings.warn(f"{path}: left out damaged line(s) {', '.join(map(str, damaged))}", stacklevel=2)
    return records
