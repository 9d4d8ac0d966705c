"""The helpers every chapter uses: profiles, device, seeding, inline audio and image grids."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from pgsound import display
from pgsound.device import default_device, describe_device, keep_freed_memory, seed_everything
from pgsound.profile import current_profile, pick


@pytest.mark.parametrize("value, expected", [("", "cpu"), ("smoke", "smoke"), (" GPU ", "gpu"), ("cpu", "cpu")])
def test_profile_from_environment(monkeypatch, value, expected):
    monkeypatch.setenv("PGSOUND_PROFILE", value)
    assert current_profile() == expected


def test_profile_defaults_to_cpu(monkeypatch):
    monkeypatch.delenv("PGSOUND_PROFILE", raising=False)
    assert current_profile() == "cpu"
    assert pick(smoke=1, cpu=2, gpu=3) == 2


def test_bad_profile_names_the_valid_ones(monkeypatch):
    monkeypatch.setenv("PGSOUND_PROFILE", "laptop")
    with pytest.raises(ValueError, match="'laptop'.*smoke, cpu, gpu"):
        current_profile()
    with pytest.raises(ValueError, match="'tiny'"):
        pick(smoke=1, cpu=2, gpu=3, profile="tiny")


def test_pick_follows_profile(monkeypatch):
    monkeypatch.setenv("PGSOUND_PROFILE", "gpu")
    assert pick(smoke="s", cpu="c", gpu="g") == "g"
    assert pick(smoke="s", cpu="c", gpu="g", profile="smoke") == "s"


def test_seed_everything_repeats_all_generators():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    gen = seed_everything(123)
    first, first_gen = draw(), torch.rand(1, generator=gen).item()
    gen = seed_everything(123)
    assert draw() == first
    assert torch.rand(1, generator=gen).item() == first_gen
    seed_everything(124)
    assert draw() != first
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)


def test_default_device_matches_cuda_availability():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert default_device().type == expected
    assert describe_device().startswith(expected)


def test_keep_freed_memory_reuses_large_blocks():
    # A 64 MiB block allocated again and again: without the setting, glibc maps and unmaps it every time and the
    # kernel faults in all of its 16384 pages each time; with it, after a few rounds (the heap settles: torch's
    # aligned allocations leave small neighbours) the freed pages are reused without faults.
    resource = pytest.importorskip("resource")
    if not keep_freed_memory():
        pytest.skip("no glibc mallopt on this system")
    faults = []
    for _ in range(16):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        block = torch.empty(16 << 20)  # 64 MiB of float32
        block.fill_(1.0)
        del block
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    assert sum(faults[-4:]) < 16384, faults


def test_audio_is_not_normalised_and_is_capped():
    sr = 8000
    clip = 0.25 * np.sin(2 * np.pi * 440 * np.arange(3 * sr) / sr)
    prepared = display.prepare_clip(clip, max_seconds=1.0, sample_rate=sr)
    assert prepared.shape == (sr,)
    np.testing.assert_allclose(prepared, clip[:sr].astype(np.float32))  # quiet stays quiet
    loud = display.prepare_clip(torch.tensor([0.0, 2.0, -4.0]), max_seconds=1.0, sample_rate=sr)
    np.testing.assert_allclose(loud, [0.0, 0.5, -1.0])  # scaled down by the peak, never clipped
    player = display.audio(clip, sr, max_seconds=0.5)
    assert "audio" in player._repr_html_()
    import io

    import soundfile as sf

    heard, rate = sf.read(io.BytesIO(player.data), dtype="float32")  # the WAV the page embeds
    assert rate == sr and heard.shape == (sr // 2,)  # capped at max_seconds
    assert np.abs(heard).max() == pytest.approx(0.25, abs=2 / 32768)  # not raised to full scale


def test_audio_rejects_bad_clips():
    with pytest.raises(ValueError, match="mono"):
        display.prepare_clip(np.zeros((2, 100)), 1.0, 8000)
    with pytest.raises(ValueError, match="NaN"):
        display.prepare_clip(np.array([0.0, np.nan]), 1.0, 8000)


def test_audio_table_puts_clips_side_by_side():
    clips = {f"clip <{i}>": np.zeros(800) for i in range(5)}
    html = display.audio_table(clips, sample_rate=8000, columns=3).data
    assert html.count("<audio") == 5
    assert html.count("<tr>") == 2  # 3 + 2
    assert "clip &lt;4&gt;" in html  # titles are escaped


def test_image_grid_layout_and_errors():
    fig = display.image_grid(torch.zeros(5, 1, 8, 8), columns=3, titles=list("abcde"))
    visible = [ax for ax in fig.axes if ax.images]
    assert len(fig.axes) == 6 and len(visible) == 5
    assert [ax.get_title() for ax in visible] == list("abcde")
    rgb = display.image_grid(np.random.rand(2, 3, 4, 4) * 2 - 1)
    assert rgb.axes[0].images[0].get_array().shape == (4, 4, 3)
    with pytest.raises(ValueError, match=r"\(N, 1\|3, H, W\)"):
        display.image_grid(np.zeros((2, 2, 4, 4)))
    with pytest.raises(ValueError, match="3 titles for 2 images"):
        display.image_grid(np.zeros((2, 4, 4)), titles=["a", "b", "c"])
