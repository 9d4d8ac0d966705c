"""A run folder's layout, in one place (book: chapter 10, Loading a trained run).

A run folder ``runs/00003-piano512/`` holds::

    config.yaml          the resolved config (pgsound train writes it)
    log.jsonl, log.txt   one record per tick (pgsound.runlog)
    stretches.jsonl      one line per stretch of training: when it started, at what kimg, on which machine
    samples/             the reals' grid and Gs's pictures (and sounds) of fixed latents, tick by tick
    checkpoints/         ckpt-0000012.000kimg.pt (the last few) and milestone-0000500.000kimg.pt (kept)
    .lock                held by the process that trains the run

This module names those paths, writes, rotates, lists and finds checkpoints, holds the lock and keeps the
stretches record; the training loop, ``pgsound train``, ``generate`` and ``evaluate`` ask it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgsound.checkpoint import CheckpointError, DamagedCheckpoint, damage, load_checkpoint, save_checkpoint
from pgsound.errors import MissingFileError, UserError
from pgsound.files import append_whole, read_jsonl, remove_temporaries

CONFIG = "config.yaml"
LOG = "log.jsonl"
LOG_TEXT = "log.txt"
STRETCHES = "stretches.jsonl"
SAMPLES = "samples"
CHECKPOINTS = "checkpoints"
LOCK = ".lock"

# The names the training loop gives its checkpoints: ckpt-0000012.000kimg.pt, milestone-0000100.000kimg.pt.
CHECKPOINT_NAME = re.compile(r"^(ckpt|milestone)-(\d+\.\d+)kimg\.pt$")


class RunWriteError(OSError):
    """The machine refused a write into a run folder (a full disk, say).

    ``kept`` is the newest checkpoint that holds the run (None before the first), ``run_dir`` the folder a
    resume continues; the commands word the advice.
    """

    def __init__(self, error: OSError, detail: str, run_dir: Path, kept: Path | None,
                 filename: str | None = None) -> None:
        super().__init__(error.errno, f"{error.strerror or error}; {detail}", filename or error.filename)
        self.run_dir = run_dir
        self.kept = kept


def samples_folder(run_dir: str | Path) -> Path:
    return Path(run_dir) / SAMPLES


def checkpoints_folder(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINTS


def run_of(checkpoint: str | Path) -> Path:
    """The run folder a checkpoint of the training loop lies in (``RUN`` of ``RUN/checkpoints/NAME.pt``); for
    a checkpoint elsewhere (one copied out of its run), its own folder."""
    checkpoint = Path(checkpoint)
    return checkpoint.parent.parent if in_run_folder(checkpoint) else checkpoint.parent


def in_run_folder(checkpoint: str | Path) -> bool:
    """Whether a checkpoint lies in a run's ``checkpoints`` folder, beside the run's log, as training writes it."""
    return Path(checkpoint).parent.name == CHECKPOINTS


def sample_stem(images_shown: int) -> str:
    """``fakes-0000012.000kimg``: Gs's samples at a tick's end, named to the image as checkpoints are."""
    return f"fakes-{images_shown / 1000:010.3f}kimg"


def checkpoint_name(images_shown: int, milestone: bool = False) -> str:
    """``ckpt-0000012.000kimg.pt``: images shown to the image, so short runs never write two under one name."""
    return f"{'milestone' if milestone else 'ckpt'}-{images_shown / 1000:010.3f}kimg.pt"


def checkpoints_in(folder: str | Path) -> list[Path]:
    """The training loop's checkpoints in ``folder``, newest first (by images shown; of two at one count, the
    plain one before the milestone, as both hold the same state).

    Only the names the training loop writes count (``ckpt-0000012.000kimg.pt``); other files are ignored.
    """
    found = [(float(m.group(2)), m.group(1) == "ckpt", p) for p in Path(folder).glob("*.pt")
             if (m := CHECKPOINT_NAME.match(p.name))]
    return [p for *_, p in sorted(found, reverse=True)]


# ---------------------------------------------------------------------- writing
def write_checkpoint(state: dict[str, Any], run_dir: Path, images_shown: int, keep: int,
                     milestone: bool = False) -> Path:
    """Write a checkpoint under ``RUN/checkpoints``; keep the last ``keep`` plain ones, and every milestone.

    A write the machine refuses is a :class:`RunWriteError` naming the last good checkpoint, which stands.
    """
    folder = checkpoints_folder(run_dir)
    path = folder / checkpoint_name(images_shown, milestone)
    try:
        save_checkpoint(state, path)
    except OSError as error:  # a full disk, say: the file was not written, the last one stands
        good = last_good(run_dir)
        last = f"the last good checkpoint is {good}" if good else "no checkpoint was written yet"
        raise RunWriteError(error, f"nothing of this tick was saved, {last}", run_dir, good,
                            error.filename or str(path)) from None
    plain = [p for p in checkpoints_in(folder) if p.name.startswith("ckpt-")]
    for old in plain[keep:]:
        old.unlink()
    return path


def record_stretch(run_dir: Path, images_shown: int, machine: str) -> None:
    """One line per stretch of training: a run resumed elsewhere keeps the machine of each part (its manifest
    names them when it is shipped)."""
    stretch = {"started": time.time(), "kimg": images_shown / 1000, "machine": machine}
    append_whole(Path(run_dir) / STRETCHES, json.dumps(stretch) + "\n")


def read_stretches(run_dir: str | Path) -> list[dict[str, Any]]:
    """The stretches a run folder was trained in: ``started`` (Unix time), ``kimg`` at the start, ``machine``.

    Empty for a run trained before the package recorded them.
    """
    path = Path(run_dir) / STRETCHES
    if not path.exists():
        return []
    return read_jsonl(path)


def new_run_dir(root: str | Path, name: str) -> Path:
    """``root/00003-name``: the next free number, like stylegan2-ada's run folders.

    Creating the folder is the claim: when two runs start at once and pick the same number, the one whose
    ``mkdir`` fails takes the next number.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    numbers = [int(match[1]) for p in root.iterdir() if p.is_dir() and (match := re.match(r"(\d+)-", p.name))]
    number = max(numbers, default=-1) + 1
    while True:
        path = root / f"{number:05d}-{name}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            number += 1


@contextlib.contextmanager
def hold_run_dir(run_dir: str | Path) -> Iterator[None]:
    """Hold an OS lock on ``RUN/.lock`` while this process trains the run.

    A second process that tries to train the same run is refused with the holder's PID (two resumes of one run
    would write one log twice and race for its checkpoints). Once the lock is held, temporary files that a
    killed process left behind (a checkpoint half written, say) are removed: nobody else can be writing them;
    only :func:`pgsound.files.atomic_write`'s names, never the user's own hidden files. The lock goes with the
    process, however it ends. (Without ``fcntl``, on Windows, nothing is locked; the temporaries still go.)
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:
        _remove_temporaries(run_dir)
        yield
        return
    with open(run_dir / LOCK, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "unknown"
            raise UserError(f"{run_dir} is being trained by process {holder}; stop that one first (or train "
                            f"another run)") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        _remove_temporaries(run_dir)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _remove_temporaries(run_dir: Path) -> None:
    for folder in (run_dir, checkpoints_folder(run_dir), samples_folder(run_dir)):
        remove_temporaries(folder)


# ---------------------------------------------------------------------- finding and reading
def latest_checkpoint(run_dir: str | Path) -> Path:
    """The newest checkpoint in ``RUN/checkpoints`` (by images shown; a milestone before a plain one)."""
    folder = checkpoints_folder(run_dir)
    found = checkpoints_in(folder)
    if not found:
        raise MissingFileError(f"no checkpoint in {folder}")
    return found[0]


def latest_good_checkpoint(run_dir: str | Path) -> tuple[Path, list[tuple[Path, str]]]:
    """The newest whole checkpoint of a run, and the newer ones passed over as damaged, with the reason.

    A damaged checkpoint (cut short by a crash or a full disk outside pgsound, changed by a bad disk) does not
    stop a run: it is resumed from the last good one. No good one at all is a ``CheckpointError``.
    """
    folder = checkpoints_folder(run_dir)
    damaged = []
    for path in checkpoints_in(folder):
        reason = damage(path)
        if reason is None:
            return path, damaged
        damaged.append((path, reason))
    if not damaged:
        raise MissingFileError(f"no checkpoint in {folder}")
    newest, reason = damaged[0]
    raise CheckpointError(f"every checkpoint in {folder} is damaged (the newest, {newest.name}: {reason}); "
                          f"the run cannot be resumed, start it again")


def last_good(run_dir: str | Path) -> Path | None:
    """The run's newest whole checkpoint, the one the error messages name (None before the first)."""
    try:
        return latest_good_checkpoint(run_dir)[0]
    except (FileNotFoundError, CheckpointError):
        return None


def checkpoint_path(run_or_checkpoint: str | Path) -> Path:
    """A checkpoint file itself, or the newest good checkpoint of a run folder.

    Newer checkpoints of the run that are damaged are passed over with a one-line warning on stderr.
    """
    path = Path(run_or_checkpoint)
    if not path.is_dir():
        return path
    good, damaged = latest_good_checkpoint(path)
    if damaged:
        newest, reason = damaged[0]
        more = f" (and {len(damaged) - 1} more)" if len(damaged) > 1 else ""
        print(f"warning: {newest} is damaged: {reason}{more}; using the last good checkpoint {good}",
              file=sys.stderr)
    return good


@dataclass(frozen=True)
class SavedCheckpoint:
    """A checkpoint read once: where it was and what it holds."""

    path: Path
    state: dict[str, Any]


def read_checkpoint(run_or_checkpoint: str | Path, needs: tuple[str, ...] = ()) -> SavedCheckpoint:
    """Read a checkpoint file, or a run folder's newest good one (``pgsound.checkpoint.load_checkpoint``).

    A damaged checkpoint of a run is a ``CheckpointError`` that also names the newest good one before it.
    """
    path = checkpoint_path(run_or_checkpoint)
    try:
        return SavedCheckpoint(path, load_checkpoint(path, needs=needs))
    except DamagedCheckpoint as error:
        raise DamagedCheckpoint(f"{error}{_older_good(path)}") from None


def _older_good(path: Path) -> str:
    """For a damaged checkpoint among a run's: the newest good one before it, and how to use it."""
    if not CHECKPOINT_NAME.match(path.name):
        return ""
    older = checkpoints_in(path.parent)
    older = older[older.index(path) + 1:] if path in older else []
    good = next((p for p in older if damage(p) is None), None)
    if good is None:
        return "; no older good checkpoint is left in its folder"
    return f"; the newest good checkpoint before it is {good} (resume from it: pgsound train --resume {good})"
