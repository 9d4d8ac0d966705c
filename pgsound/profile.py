"""Run profiles: how big a chapter or a command runs (book: Introduction, "Profiles").

``PGSOUND_PROFILE`` chooses one of three sizes for the same code:

- ``smoke``: seconds; what the test suite executes.
- ``cpu``: the default; minutes on a 2-core laptop, large enough to see and hear the point.
- ``gpu``: the full reproduction (512x512 piano, 2000 kimg).
"""

from __future__ import annotations

import os
from typing import TypeVar

from pgsound.errors import UserError

PROFILES: tuple[str, ...] = ("smoke", "cpu", "gpu")
DEFAULT_PROFILE = "cpu"
ENV_VAR = "PGSOUND_PROFILE"

T = TypeVar("T")


def current_profile() -> str:
    """The profile named by ``PGSOUND_PROFILE`` (``cpu`` when unset or empty).

    Raises ``ValueError`` naming the valid profiles for any other value.
    """
    value = os.environ.get(ENV_VAR, "").strip().lower() or DEFAULT_PROFILE
    if value not in PROFILES:
        raise UserError(
            f"{ENV_VAR}={os.environ.get(ENV_VAR)!r} is not a profile; expected one of {', '.join(PROFILES)}"
        )
    return value


def pick(*, smoke: T, cpu: T, gpu: T, profile: str | None = None) -> T:
    """The value for the current profile: ``pick(smoke=2, cpu=200, gpu=2000)``.

    Chapters keep all their sizes in one parameters cell built from calls like this one.
    """
    name = profile if profile is not None else current_profile()
    if name not in PROFILES:
        raise UserError(f"profile {name!r} is not one of {', '.join(PROFILES)}")
    return {"smoke": smoke, "cpu": cpu, "gpu": gpu}[name]
