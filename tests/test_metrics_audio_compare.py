"""Comparing sounds from any representation: common spectrograms against librosa, distances by hand (chapter 11)."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from pgsound.metrics import audio as A
from pgsound.metrics.swd import sliced_wasserstein_distance
from pgsound.spectrogram import SpectrogramConfig

COMMON = SpectrogramConfig(n_fft=256, hop_length=128, n_bins=32, n_frames=30)  # the lowest 2 kHz, 0.23 s


def clips(n: int, samples: int, seed: int = 0) -> np.ndarray:
    """Decaying harmonic tones at random pitches, a little noise: clips that are neither silent nor loud."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 16000
    out = []
    for _ in range(n):
        f0 = rng.uniform(100, 700)
        tone = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) / k for k in range(1, 5))
        out.append(0.2 * tone * np.exp(-rng.uniform(2, 8) * t) + 1e-3 * rng.normal(size=samples))
    return np.asarray(out, np.float32)


def librosa_pictures(audio: np.ndarray, config: SpectrogramConfig) -> np.ndarray:
    """The same pictures computed independently: librosa's STFT, dB, clip, map to [-1, 1]."""
    audio = audio[:, : config.segment_length]
    magnitude = np.abs(librosa.stft(audio, n_fft=config.n_fft, hop_length=config.hop_length, window="hann",
                                    center=True, pad_mode="constant"))[:, : config.n_bins, : config.n_frames]
    db = 20 * np.log10(np.maximum(magnitude, 1e-10))
    return np.clip(2 * (db - config.floor_db) / config.range_db - 1, -1, 1)[:, None]


def test_common_spectrograms_cut_clips_of_any_length_and_match_librosa():
    longer = clips(3, COMMON.segment_length + 500)
    pictures = A.common_spectrograms(longer, COMMON)
    assert pictures.shape == (3, 1, 32, 30)
    np.testing.assert_allclose(pictures, librosa_pictures(longer, COMMON), atol=2e-4)
    # Only the first segment_length samples count: what follows them changes nothing.
    changed = longer.copy()
    changed[:, COMMON.segment_length :] = 0.5
    np.testing.assert_array_equal(A.common_spectrograms(changed, COMMON), pictures)
    with pytest.raises(ValueError, match="shorter than"):
        A.common_spectrograms(longer[:, : COMMON.segment_length - 1], COMMON)
    with pytest.raises(ValueError, match=r"\(N, samples\)"):
        A.common_spectrograms(longer[0], COMMON)


def test_audio_distances_by_hand():
    reals = clips(8, COMMON.segment_length + 100, seed=1)
    fakes = clips(10, COMMON.segment_length + 300, seed=2) * 0.3  # quieter: about 10 dB lower
    values = A.audio_distances(reals, fakes, COMMON.to_dict(), seed=3)
    real_pictures, fake_pictures = librosa_pictures(reals, COMMON), librosa_pictures(fakes, COMMON)[:8]
    swd = sliced_wasserstein_distance(real_pictures.astype(np.float32), fake_pictures.astype(np.float32), seed=3)
    for key, value in swd.items():
        assert values[key] == pytest.approx(value, rel=2e-3, abs=0.05)
    real_db = (real_pictures[:, 0] + 1) / 2 * COMMON.range_db + COMMON.floor_db
    fake_db = (fake_pictures[:, 0] + 1) / 2 * COMMON.range_db + COMMON.floor_db
    gap = real_db.mean(axis=(0, 2)) - fake_db.mean(axis=(0, 2))
    assert values["log_spectrum_rms_db"] == pytest.approx(np.sqrt(np.mean(gap**2)), rel=1e-3)
    assert 3 < values["log_spectrum_rms_db"] < 15
    same = A.audio_distances(reals, reals, COMMON)
    assert same["log_spectrum_rms_db"] == 0.0 and same["centroid_w1_hz"] == 0.0
    with pytest.raises(ValueError, match="at least 2 clips"):
        A.audio_distances(reals[:1], fakes, COMMON)


def test_peak_frequencies_pick_the_loudest_row_on_average():
    pictures = np.full((2, 1, 32, 30), -1.0, np.float32)
    pictures[0, 0, 5] = 0.2  # a partial that rings through the picture
    pictures[1, 0, 20, :3] = 1.0  # a short loud burst ...
    pictures[1, 0, 9] = 0.8  # ... loses to a partial 10 dB quieter (a third of the magnitude) but ten times longer
    np.testing.assert_allclose(A.peak_frequencies(pictures, COMMON), A.row_frequencies(32, COMMON)[[5, 9]])
    np.testing.assert_allclose(A.row_frequencies(32, COMMON)[[5, 9]], [312.5, 562.5])
