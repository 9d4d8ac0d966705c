"""Run profiles: how big a chapter or a command runs (book: Introduction, "Profiles").

``PGSOUND_PROFILE`` chooses one of three sizes for the same code:

- ``smoke``: seconds; what the test suite executes.
- ``cpu``: the default; minutes on a 2-core laptop, large enough to see and hear the point.
- ``gpu``: the full reproduction (512x512 piano, 2000 kimg).

``PGSOUND_PRETRAINED`` (book: Introduction, "Shipped runs instead of training") is the other switch: set to
``1``, every chapter that only needs a trained generator loads a run shipped with the package
(``pgsound.pretrained``) instead of training one, under any profile. ``PGSOUND_RUNS`` names the folder where
the chapters keep their data and runs (:func:`work_folder`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TypeVar

from pgsound.errors import UserError

PROFILES: tuple[str, ...] = ("smoke", "cpu", "gpu")
DEFAULT_PROFILE = "cpu"
ENV_VAR = "PGSOUND_PROFILE"
PRETRAINED_VAR = "PGSOUND_PRETRAINED"
TRUE_VALUES: tuple[str, ...] = ("1", "true", "yes")
FALSE_VALUES: tuple[str, ...] = ("", "0", "false", "no")
RUNS_VAR = "PGSOUND_RUNS"

T = TypeVar("T")


def current_profile() -> str:
    """The profile named by ``PGSOUND_PROFILE`` (``cpu`` when unset or empty).

    Raises ``UserError`` naming the valid profiles for any other value.
    """
    value = os.environ.get(ENV_VAR, "").strip().lower() or DEFAULT_PROFILE
    if value not in PROFILES:
        raise UserError(
            f"{ENV_VAR}={os.environ.get(ENV_VAR)!r} is not a profile; expected one of {', '.join(PROFILES)}"
        )
    return value


def use_pretrained() -> bool:
    """Whether ``PGSOUND_PRETRAINED`` asks the chapters to load shipped runs instead of training.

    ``1``, ``true`` or ``yes`` (any case) is true; unset, empty, ``0``, ``false`` or ``no`` is false. Any other
    value raises ``UserError`` naming the variable and the accepted values.
    """
    raw = os.environ.get(PRETRAINED_VAR)
    value = (raw or "").strip().lower()
    if value in TRUE_VALUES:
        return True
    if value in FALSE_VALUES:
        return False
    raise UserError(
        f"{PRETRAINED_VAR}={raw!r} is not understood; expected one of "
        f"{', '.join(TRUE_VALUES)} (load shipped runs) or {', '.join(repr(v) for v in FALSE_VALUES)} (train)"
    )


def pick(*, smoke: T, cpu: T, gpu: T, profile: str | None = None) -> T:
    """The value for the current profile: ``pick(smoke=2, cpu=200, gpu=2000)``.

    Chapters keep all their sizes in one parameters cell built from calls like this one.
    """
    name = profile if profile is not None else current_profile()
    if name not in PROFILES:
        raise UserError(f"profile {name!r} is not one of {', '.join(PROFILES)}")
    return {"smoke": smoke, "cpu": cpu, "gpu": gpu}[name]


# The temporary folders work_folder handed out, kept alive so that each is deleted when the process exits.
_TEMPORARY_FOLDERS: list[tempfile.TemporaryDirectory] = []


def work_folder(chapter: str) -> Path:
    """Where a chapter keeps its data and runs (book: Introduction, "Profiles: how big a chapter runs").

    ``PGSOUND_RUNS`` when it names a folder (created if missing; kept, so that a second run of the chapter
    finds its data and a later chapter its runs); otherwise a new temporary folder named after ``chapter``
    (``pgsound-ch5-...``) that is deleted when the Python process, the notebook's kernel, exits.
    """
    named = os.environ.get(RUNS_VAR, "").strip()
    if named:
        folder = Path(named).expanduser()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UserError(f"{RUNS_VAR}={named!r}: cannot create that folder ({error.strerror or error})") from None
        return folder
    temporary = tempfile.TemporaryDirectory(prefix=f"pgsound-{chapter}-", ignore_cleanup_errors=True)
    _TEMPORARY_FOLDERS.append(temporary)
    return Path(temporary.name)
