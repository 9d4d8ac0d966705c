"""Checkpoints: plain state dicts, written atomically, read with ``weights_only=True`` (book: chapter 7).

A checkpoint is a dict of tensors, numbers, strings and nested dicts only: no pickled classes, so it loads
across versions and cannot run code. Writes go to a temporary file in the same folder and are renamed into
place, so a crash mid-write never leaves a file that looks complete.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from pgsound.errors import MissingFileError, UserError
from pgsound.files import atomic_write

FORMAT = "pgsound-checkpoint"
VERSION = 1


class CheckpointError(UserError):
    """A checkpoint that is truncated, corrupt or not ours; the message names the file."""


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` (plus the format tag) atomically to ``path``. (book: chapter 7)"""
    path = Path(path)
    payload = {"format": FORMAT, "version": VERSION, **state}
    with atomic_write(path) as temp:
        torch.save(payload, temp)
    return path


TRAINING_KEYS = ("G", "D", "Gs", "opt_g", "opt_d", "images_shown", "tick", "last_progress", "rng", "config", "data")
GENERATOR_KEYS = ("Gs", "config", "data", "images_shown")  # what sampling needs (a shipped run has only these)


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
    if not path.is_file():
        raise MissingFileError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(_refused(path, error)) from None
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise CheckpointError(
            f"{path} is not a readable pgsound checkpoint (truncated or corrupt?): {type(error).__name__}: {error}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a pgsound checkpoint (no '{FORMAT}' format tag)")
    if state.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {state.get('version')}, this pgsound reads {VERSION}")
    missing = [key for key in needs if key not in state]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}: it cannot be "
                              f"{'resumed' if 'opt_g' in needs else 'sampled'} (a shipped run can only be sampled)")
    return state
