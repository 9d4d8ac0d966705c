"""The growth schedule against hand computations at and around every phase boundary."""

from __future__ import annotations

import math

import pytest

from pgsound.config import TrainConfig
from pgsound.schedule import Schedule, ScheduleConfig, continuous_level, kimg_to_reach, level_start_kimg, phase_at

# T = training, F = transition (fade-in); the paper's ordering: 4x4 for T, then (fade F, train T) per level.
CONFIG = ScheduleConfig(
    lod_training_kimg=150, lod_transition_kimg=100, total_kimg=2000,
    minibatch_default=16, minibatch={256: 14, 512: 6}, lr_default=1e-3, lr={512: 5e-4},
    tick_kimg_default=160, tick_kimg={512: 20},
)
MAX_LEVEL = 7  # 4x4 .. 512x512


@pytest.mark.parametrize(
    "kimg, level, alpha",
    [
        (0, 0, 1.0),
        (149.999, 0, 1.0),
        (150, 0, 1.0),  # the last image of the 4x4 phase
        (150.001, 1, 0.00001),  # the fade of 8x8 has just begun
        (175, 1, 0.25),
        (200, 1, 0.5),
        (249.999, 1, 0.99999),
        (250, 1, 1.0),  # 8x8 fully in, stabilising
        (399.999, 1, 1.0),
        (400, 1, 1.0),
        (425, 2, 0.25),
        (250 * 6 + 150 + 50, 7, 0.5),  # fading in 512x512
        (250 * 7, 7, 1.0),
        (1999, 7, 1.0),  # capped at the last level
        (5000, 7, 1.0),
    ],
)
def test_level_and_alpha(kimg, level, alpha):
    phase = phase_at(round(kimg * 1000), CONFIG, MAX_LEVEL, (4, 4))
    assert phase.level == level
    assert phase.alpha == pytest.approx(alpha, abs=1e-6)
    assert phase.fading == (phase.alpha < 1.0)


def test_tables_follow_the_resolution():
    at = lambda kimg: phase_at(int(kimg * 1000), CONFIG, MAX_LEVEL, (4, 4))  # noqa: E731
    assert (at(0).resolution, at(0).batch_size, at(0).lr, at(0).tick_kimg) == (4, 16, 1e-3, 160)
    # Fading into 256x256 (level 6) already uses 256's minibatch: the new level's images are what D sees.
    fade_256 = at(250 * 5 + 150 + 1)
    assert (fade_256.level, fade_256.resolution, fade_256.batch_size) == (6, 256, 14)
    last = at(1900)
    assert (last.resolution, last.batch_size, last.lr, last.tick_kimg) == (512, 6, 5e-4, 20)


def test_non_square_base():
    phase = phase_at(10**9, CONFIG, 6, (2, 16))
    assert (phase.level, phase.resolution) == (6, 1024)  # 128 x 1024, keyed by the larger side


def test_lr_rampup_matches_theano_formula():
    config = ScheduleConfig(lr_rampup_kimg=40, lr_default=1e-3)
    for kimg in (0, 10, 20, 39.5):
        expected = 1e-3 * math.exp(-5 * (1 - kimg / 40) ** 2)
        assert phase_at(int(kimg * 1000), config, 3, (4, 4)).lr == pytest.approx(expected)
    assert phase_at(40_000, config, 3, (4, 4)).lr == pytest.approx(1e-3)
    assert phase_at(90_000, config, 3, (4, 4)).lr == pytest.approx(1e-3)


def test_fixed_level_never_grows():
    config = ScheduleConfig(fixed_level=3)
    for images in (0, 10**5, 10**7):
        phase = phase_at(images, config, 5, (4, 4))
        assert (phase.level, phase.alpha, phase.resolution) == (3, 1.0, 32)
    with pytest.raises(ValueError, match="fixed_level 6 is outside the levels 0..5"):
        continuous_level(0, ScheduleConfig(fixed_level=6), 5)


def test_kimg_to_reach_and_no_transition():
    assert kimg_to_reach(0, CONFIG) == 0
    assert kimg_to_reach(3, CONFIG) == 750
    assert phase_at(750_000, CONFIG, MAX_LEVEL, (4, 4)).level == 3
    instant = ScheduleConfig(lod_training_kimg=10, lod_transition_kimg=0)
    assert [phase_at(k * 1000, instant, 5, (4, 4)).level for k in (0, 9, 10, 11, 25)] == [0, 0, 1, 1, 2]


def test_level_start_is_where_its_fade_in_begins():
    assert [level_start_kimg(k, CONFIG) for k in range(4)] == [0, 150, 400, 650]  # 150 + 250 per level
    for level in range(1, MAX_LEVEL + 1):
        start = round(level_start_kimg(level, CONFIG) * 1000)
        before, after = phase_at(start, CONFIG, MAX_LEVEL, (4, 4)), phase_at(start + 1, CONFIG, MAX_LEVEL, (4, 4))
        assert (before.level, before.alpha) == (level - 1, 1.0)
        assert after.level == level and after.fading and after.alpha < 1e-4
    instant = ScheduleConfig(lod_training_kimg=10, lod_transition_kimg=0)
    assert level_start_kimg(2, instant) == kimg_to_reach(2, instant) == 20
    fixed = ScheduleConfig(fixed_level=3)
    assert level_start_kimg(3, fixed) == 0  # a fixed-level run trains its one level from the start


def test_bad_schedule_values():
    with pytest.raises(ValueError, match="lod_training_kimg must be > 0.0, got 0"):
        ScheduleConfig(lod_training_kimg=0)
    with pytest.raises(ValueError, match="lod_transition_kimg"):
        ScheduleConfig(lod_transition_kimg=-1)


def test_the_schedule_object_answers_as_its_building_blocks():
    schedule = Schedule(CONFIG, MAX_LEVEL + 1, (4, 4))
    for images in (0, 150_001, 425_000, 1_999_000):
        assert schedule.phase(images) == phase_at(images, CONFIG, MAX_LEVEL, (4, 4))
        assert schedule.continuous_level(images) == continuous_level(images, CONFIG, MAX_LEVEL)
    assert [schedule.level_start_kimg(k) for k in range(4)] == [level_start_kimg(k, CONFIG) for k in range(4)]
    assert schedule.reach_kimg(3) == kimg_to_reach(3, CONFIG)
    assert schedule.minibatch(6) == 14 and schedule.level_shape(7) == (512, 512)


def test_the_windows_tile_the_run_and_the_reached_levels_are_theirs():
    schedule = Schedule(CONFIG, MAX_LEVEL + 1, (4, 4))
    windows = schedule.windows()
    assert windows[0].start_kimg == 0 and windows[-1].end_kimg == CONFIG.total_kimg
    assert all(a.end_kimg == b.start_kimg for a, b in zip(windows, windows[1:]))
    assert sorted({w.level for w in windows}) == schedule.reached_levels() == list(range(8))
    short = Schedule(ScheduleConfig(lod_training_kimg=150, lod_transition_kimg=100, total_kimg=400), 8, (4, 4))
    assert short.reached_levels() == [0, 1]  # level 2 would start to fade in at 400 kimg
    assert Schedule(ScheduleConfig(fixed_level=3), 8, (4, 4)).reached_levels() == [3]


def test_the_config_holds_its_base_shape_as_a_tuple():
    assert TrainConfig(base_shape=[3, 5]).base_shape == (3, 5)
