"""Checkpoints: plain state dicts, written atomically, read with ``weights_only=True`` (book: chapter 7).

A checkpoint is a dict of tensors, numbers, strings and nested dicts only: no pickled classes, so it loads
across versions and cannot run code. Writes go to a temporary file in the same folder and are renamed into
place, so a crash mid-write never leaves a file that looks complete. A file damaged later (cut short, or with
bytes a bad disk changed: torch's zip records a CRC-32 per entry, which torch itself does not check on load)
is a :class:`DamagedCheckpoint` that names it (``pgsound.run_folder.read_checkpoint`` adds the newest good
checkpoint before it in its run). What a checkpoint holds is listed once, here: :data:`TRAINING_KEYS`;
:func:`state_differences` compares two states exactly (the resume checks).
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from pgsound.errors import MissingFileError, UserError
from pgsound.files import atomic_write

FORMAT = "pgsound-checkpoint"
VERSION = 1


class CheckpointError(UserError):
    """A checkpoint that is truncated, corrupt or not ours; the message names the file."""


class DamagedCheckpoint(CheckpointError):
    """A checkpoint file that cannot be read whole: cut short, changed on disk, or not a torch file."""


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` (plus the format tag) atomically to ``path``. (book: chapter 7)

    A full disk is an ``OSError`` naming ``path`` (nothing is left under it), not torch's ``RuntimeError``.
    """
    path = Path(path)
    payload = {"format": FORMAT, "version": VERSION, **state}
    with atomic_write(path) as temp, open(temp, "wb") as handle:
        # Through a Python file, not a path: torch's own writer reports a full disk as a RuntimeError that hides
        # the error number ("unexpected pos 576 vs 534"); a Python write keeps the OSError behind it.
        try:
            torch.save(payload, handle)
        except RuntimeError as error:
            cause = _os_error_behind(error)
            if cause is None:
                raise
            raise OSError(cause.errno, cause.strerror) from error  # atomic_write adds the name of path
    return path


def _os_error_behind(error: BaseException) -> OSError | None:
    """The ``OSError`` an exception was raised while handling (or from), if any."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def damage(path: str | Path) -> str | None:
    """Why ``path`` is not a whole checkpoint file (cut short, or an entry whose CRC-32 fails), or None.

    Reads the whole file once; says nothing about what the file holds (:func:`load_checkpoint` does).
    """
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except zipfile.BadZipFile:
        return "truncated or not a torch zip file"
    except (OSError, EOFError, zipfile.LargeZipFile) as error:
        return f"truncated ({type(error).__name__}: {error})"
    return f"its entry {bad} fails its CRC-32 check (changed on disk)" if bad else None


# What a training checkpoint holds (``pgsound.trainer.TrainState.state_dict`` writes exactly these).
TRAINING_KEYS = ("G", "D", "Gs", "opt_g", "opt_d", "images_shown", "tick", "last_level", "rng", "config", "data")
# What a resumed run must match bit for bit: all but the tick count and the records of the config and the data.
RESUMED_KEYS = tuple(key for key in TRAINING_KEYS if key not in ("tick", "config", "data"))
GENERATOR_KEYS = ("Gs", "config", "data", "images_shown")  # what sampling needs (a shipped run has only these)


def _flat_state(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat_state(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def state_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The keys where two state dicts differ (tensors compared exactly); empty when identical."""
    flat_a, flat_b = _flat_state(a), _flat_state(b)
    differ = sorted(set(flat_a) ^ set(flat_b))
    for key in set(flat_a) & set(flat_b):
        x, y = flat_a[key], flat_b[key]
        if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
            same = x.shape == y.shape and x.dtype == y.dtype and torch.equal(x.cpu(), y.cpu())
        else:
            same = x == y
        if not same:
            differ.append(key)
    return differ



def _refused(path: Path, error: pickle.UnpicklingError) -> str:
    """One line for a file that ``weights_only=True`` refused, without torch's advice to load it unsafely."""
    reason = str(error).partition("WeightsUnpickler error:")[2].strip().splitlines()
    reason = reason[0] if reason else str(error).splitlines()[0]
    if "Unsupported global" in reason:  # a pickle of Python objects: a module, another port's checkpoint
        global_name = reason.partition("GLOBAL ")[2].split(" ")[0] or "?"
        return (f"{path} holds a Python object ({global_name}) that a pgsound checkpoint never holds: it was not "
                "written by pgsound, and pgsound loads checkpoints with weights_only=True, which runs no code from "
                "a file")
    return f"{path} is not a readable pgsound checkpoint (truncated, corrupt or not a torch file): {reason}"


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu", needs: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint``; anything else raises ``CheckpointError``.

    ``needs``: the keys the caller will read (``TRAINING_KEYS`` to resume, ``GENERATOR_KEYS`` to sample): a
    checkpoint without one of them is a ``CheckpointError`` naming the file and the keys, not a ``KeyError``.
    """
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"no checkpoint at {path}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; expected a checkpoint file (.pt), or a run folder where a run "
                              f"folder is taken")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise DamagedCheckpoint(_refused(path, error)) from None
    except Exception as error:  # torch raises several types for truncated or foreign files
        detail = " ".join(f"{type(error).__name__}: {error}".split())  # torch's text spans several lines
        raise DamagedCheckpoint(f"{path} is not a readable pgsound checkpoint (truncated or corrupt?): {detail}"
                                ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a pgsound checkpoint (no '{FORMAT}' format tag)")
    reason = damage(path)
    if reason is not None:
        raise DamagedCheckpoint(f"{path} is damaged: {reason}")
    if state.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {state.get('version')}, this pgsound reads {VERSION}")
    missing = [key for key in needs if key not in state]
    if missing == ["G"]:
        raise CheckpointError(f"{path} lacks G: its raw generator cannot be sampled (a shipped run holds only the "
                              f"EMA generator Gs)")
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}: it cannot be "
                              f"{'resumed' if 'opt_g' in needs else 'sampled'} (a shipped run can only be sampled)")
    return state
