"""The growth schedule as a pure function of images shown (book: chapter 6, Growing).

:class:`Schedule` is the one place a run asks about its schedule: built once from the schedule config, the number
of levels and the base shape, it answers the phase at an image count, the continuous level, the windows of every
phase and the levels a run reaches. The functions below it are its building blocks, as chapter 6 writes them.

Everything that changes over a run (the level being trained, the fade-in ``alpha``, the minibatch size, the
learning rate, the tick length) is computed from ``images_shown`` alone. That is what makes resume exact:
a resumed run only needs the count of images it has shown.

Phases follow NVIDIA's reference code: the base level trains for ``lod_training_kimg``; then every new level
fades in over ``lod_transition_kimg`` (alpha from 0 to 1) and stabilises for ``lod_training_kimg``. One
difference: NVIDIA reads the schedule once per ``minibatch_repeats = 4`` minibatches, this code before every
step, so alpha rises in steps of one minibatch rather than four (the curve is the same to within 3 minibatches).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pgsound.errors import UserError


@dataclass
class ScheduleConfig:
    """Schedule settings. Tables are keyed by resolution: the larger side of a level's image, in pixels."""

    total_kimg: float = 2000.0
    lod_training_kimg: float = 150.0
    lod_transition_kimg: float = 150.0
    # None: progressive growing. An integer: train only that level, alpha = 1 (a fixed-resolution GAN).
    fixed_level: int | None = None
    minibatch_default: int = 16
    minibatch: dict[int, int] = field(default_factory=dict)
    lr_default: float = 1e-3
    lr: dict[int, float] = field(default_factory=dict)
    # Theano branch: lr multiplied by exp(-5 (1 - t)^2) over the first lr_rampup_kimg; 0 turns it off.
    lr_rampup_kimg: float = 0.0
    tick_kimg_default: float = 160.0
    tick_kimg: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_range("schedule.total_kimg", self.total_kimg, minimum=0.0, inclusive=False)
        check_range("schedule.lod_training_kimg", self.lod_training_kimg, minimum=0.0, inclusive=False)
        check_range("schedule.lod_transition_kimg", self.lod_transition_kimg, minimum=0.0)
        if self.fixed_level is not None:
            check_range("schedule.fixed_level", self.fixed_level, minimum=0)
        check_range("schedule.minibatch_default", self.minibatch_default, minimum=1)
        check_range("schedule.lr_default", self.lr_default, minimum=0.0, inclusive=False)
        check_range("schedule.lr_rampup_kimg", self.lr_rampup_kimg, minimum=0.0)
        check_range("schedule.tick_kimg_default", self.tick_kimg_default, minimum=0.0, inclusive=False)
        for name, table, positive_float in (("minibatch", self.minibatch, False), ("lr", self.lr, True),
                                            ("tick_kimg", self.tick_kimg, True)):
            for resolution, value in table.items():
                check_range(f"schedule.{name} key", resolution, minimum=1)
                if positive_float:
                    check_range(f"schedule.{name}[{resolution}]", value, minimum=0.0, inclusive=False)
                else:
                    check_range(f"schedule.{name}[{resolution}]", value, minimum=1)


def check_range(
    name: str, value: float, minimum: float | None = None, maximum: float | None = None,
    inclusive: bool = True, inclusive_max: bool = True,
) -> None:
    """Raise ``ValueError`` naming ``name`` when ``value`` is not finite or lies outside [minimum, maximum]."""
    if not math.isfinite(value):  # NaN passes every comparison below; inf is a typo, not a schedule
        raise UserError(f"{name} must be a finite number, got {value}")
    low_ok = minimum is None or (value >= minimum if inclusive else value > minimum)
    high_ok = maximum is None or (value <= maximum if inclusive_max else value < maximum)
    if low_ok and high_ok:
        return
    low = "" if minimum is None else f"{'>=' if inclusive else '>'} {minimum}"
    high = "" if maximum is None else f"{'<=' if inclusive_max else '<'} {maximum}"
    raise UserError(f"{name} must be {' and '.join(part for part in (low, high) if part)}, got {value}")


@dataclass(frozen=True)
class Phase:
    """Where a run stands after ``images_shown`` images."""

    level: int  # 0 = the base (4x4); level k has 2**k times the base's side
    alpha: float  # fade-in of ``level``: 0 = only the level below, 1 = fully in
    resolution: int  # the larger side of the level's images
    batch_size: int
    lr: float
    tick_kimg: float
    fading: bool  # True while alpha < 1


def level_resolution(level: int, base_shape: tuple[int, int]) -> tuple[int, int]:
    """(H, W) of ``level`` for a base shape such as (4, 4) or (2, 16)."""
    return base_shape[0] * 2**level, base_shape[1] * 2**level


def continuous_level(images_shown: int, config: ScheduleConfig, max_level: int) -> float:
    """The continuous level: 2.0 is level 2 fully in, 2.25 is level 3 faded in by a quarter.

    ``max_level`` caps it at the last level of the networks and the data.
    """
    if config.fixed_level is not None:
        if not 0 <= config.fixed_level <= max_level:
            raise UserError(f"fixed_level {config.fixed_level} is outside the levels 0..{max_level}")
        return float(config.fixed_level)
    kimg = images_shown / 1000.0
    phase_kimg = config.lod_training_kimg + config.lod_transition_kimg
    phase_index = math.floor(kimg / phase_kimg)
    into_phase = kimg - phase_index * phase_kimg
    fade = into_phase - config.lod_training_kimg
    level = phase_index + (min(max(fade / config.lod_transition_kimg, 0.0), 1.0) if fade > 0 else 0.0)
    return min(level, float(max_level))


def phase_at(images_shown: int, config: ScheduleConfig, max_level: int, base_shape: tuple[int, int]) -> Phase:
    """The level, alpha, minibatch, learning rate and tick length after ``images_shown`` images.

    (book: chapter 6, Growing)
    """
    continuous = continuous_level(images_shown, config, max_level)
    level = math.ceil(continuous)
    alpha = 1.0 - (level - continuous)
    resolution = max(level_resolution(level, base_shape))
    lr = config.lr.get(resolution, config.lr_default)  # where --set schedule.lr_default takes effect
    if config.lr_rampup_kimg > 0:
        t = min(images_shown / 1000.0 / config.lr_rampup_kimg, 1.0)
        lr *= math.exp(-5.0 * (1.0 - t) ** 2)
    return Phase(
        level=level,
        alpha=alpha,
        resolution=resolution,
        batch_size=minibatch_at(resolution, config),
        lr=lr,
        tick_kimg=config.tick_kimg.get(resolution, config.tick_kimg_default),
        fading=alpha < 1.0,
    )


def minibatch_at(resolution: int, config: ScheduleConfig) -> int:
    """The global minibatch at a level whose larger side is ``resolution``."""
    return config.minibatch.get(resolution, config.minibatch_default)


def level_start_kimg(level: int, config: ScheduleConfig) -> float:
    """kimg at which ``level`` starts to fade in (0 for the base level, and for a fixed-level run)."""
    if level == 0 or config.fixed_level is not None:
        return 0.0
    return kimg_to_reach(level, config) - config.lod_transition_kimg


def kimg_to_reach(level: int, config: ScheduleConfig) -> float:
    """kimg at which ``level`` has faded in fully (the start of its stabilisation phase)."""
    if level == 0:
        return 0.0
    return level * (config.lod_training_kimg + config.lod_transition_kimg)


@dataclass(frozen=True)
class PhaseWindow:
    """One phase of the schedule: a level's fade-in or its stable part, as an interval of kimg."""

    level: int
    kind: str  # "fade" or "stable"
    start_kimg: float
    end_kimg: float

    @property
    def kimg(self) -> float:
        return self.end_kimg - self.start_kimg


@dataclass(frozen=True)
class Schedule:
    """One run's schedule: its settings, the levels of its networks and data, and their base shape.

    Built once per run (``pgsound.trainer.TrainState`` holds it); plan, preflight, the trainer and the run
    records ask it instead of threading the settings through. (book: chapter 6, Growing)
    """

    config: ScheduleConfig
    num_levels: int
    base_shape: tuple[int, int]

    @property
    def max_level(self) -> int:
        return self.num_levels - 1

    def phase(self, images_shown: int) -> Phase:
        """The level, alpha, minibatch, learning rate and tick length after ``images_shown`` images."""
        return phase_at(images_shown, self.config, self.max_level, self.base_shape)

    def continuous_level(self, images_shown: int) -> float:
        """The continuous level: 2.25 is level 3 faded in by a quarter."""
        return continuous_level(images_shown, self.config, self.max_level)

    def level_shape(self, level: int) -> tuple[int, int]:
        """(H, W) of ``level``'s images."""
        return level_resolution(level, self.base_shape)

    def minibatch(self, level: int) -> int:
        """The global minibatch at ``level``."""
        return minibatch_at(max(self.level_shape(level)), self.config)

    def level_start_kimg(self, level: int) -> float:
        """kimg at which ``level`` starts to fade in (0 for the base level and for a fixed-level run)."""
        return level_start_kimg(level, self.config)

    def reach_kimg(self, level: int) -> float:
        """kimg at which ``level`` has faded in fully."""
        return kimg_to_reach(level, self.config)

    def reached_levels(self) -> list[int]:
        """The levels trained before ``total_kimg`` (only ``fixed_level`` for a fixed-level run)."""
        if self.config.fixed_level is not None:
            return [self.config.fixed_level]
        return [level for level in range(self.num_levels) if self.level_start_kimg(level) < self.config.total_kimg]

    def windows(self) -> list[PhaseWindow]:
        """Every phase the schedule reaches before ``total_kimg``, clipped to it: the base level's stable part,
        then each level's fade-in and stable part."""
        total = self.config.total_kimg
        if self.config.fixed_level is not None:
            return [PhaseWindow(self.config.fixed_level, "stable", 0.0, total)]
        windows = []
        for level in range(self.num_levels):
            if level > 0:
                windows.append(PhaseWindow(level, "fade", self.level_start_kimg(level), self.reach_kimg(level)))
            # A level is stable until the next one starts to fade in; the last one until the end of the run.
            stable_end = self.level_start_kimg(level + 1) if level < self.max_level else total
            windows.append(PhaseWindow(level, "stable", self.reach_kimg(level), stable_end))
        clipped = [PhaseWindow(w.level, w.kind, w.start_kimg, min(w.end_kimg, total))
                   for w in windows if w.start_kimg < total]
        return [w for w in clipped if w.kimg > 0]
