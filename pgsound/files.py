"""Writing files so that a crash never leaves one that looks complete (book: chapter 7, Checkpoints).

Every file pgsound writes for later (checkpoints, WAV and picture files) is written under a temporary name in
the same folder, flushed to disk, and renamed onto its final name only when it is whole: a rename within a
folder is atomic, so a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is synced and renamed onto ``path``.

    On any error (or Ctrl-C) inside the block the temporary file is removed and ``path`` is left as it was.
    ``suffix`` ends the temporary name, for writers that choose a format by the file's extension.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkstemp: it makes the file private (0600). Mode 0666 here is narrowed by the umask, so the
    # file ends with the permissions a plain open() would give it.
    temp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}{suffix}"
    os.close(os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        yield Path(temp)
        with open(temp, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise

