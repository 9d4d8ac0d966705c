"""Audio figures: centroids against librosa, W1 against SciPy, spectra by hand, consistency of real vs noise."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import scipy.stats
import torch

from pgsound.audio_stats import active_frames
from pgsound.metrics import audio as A
from pgsound.spectrogram import SpectrogramConfig, audio_to_frames

CONFIG = SpectrogramConfig.for_shape(64, 64)  # n_fft 128, hop 16: about 63 ms of sound per picture


def tones(n: int, seed: int = 0) -> np.ndarray:
    """Pictures of real sounds: decaying harmonic tones at random pitches."""
    rng = np.random.default_rng(seed)
    t = np.arange(CONFIG.segment_length * n) / CONFIG.sample_rate
    audio = np.zeros_like(t)
    for start in range(n):
        f0 = rng.uniform(200, 1500)
        part = slice(start * CONFIG.segment_length, (start + 1) * CONFIG.segment_length)
        tt = t[part] - t[part][0]
        audio[part] = sum(np.sin(2 * np.pi * k * f0 * tt) / k for k in range(1, 4)) * np.exp(-10 * tt) * 0.3
    frames = audio_to_frames(audio.astype(np.float32), CONFIG)
    assert frames.shape == (n, 64, 64)
    return frames


def test_row_frequencies_at_full_size_and_lower_levels():
    full = A.row_frequencies(64, CONFIG)
    np.testing.assert_allclose(full, np.arange(64) * 16000 / 128)
    np.testing.assert_allclose(A.row_frequencies(16, CONFIG), full.reshape(16, 4).mean(1))
    with pytest.raises(ValueError, match="not a level"):
        A.row_frequencies(48, CONFIG)


def test_spectral_centroids_match_librosa():
    pictures = tones(3)
    centroids = A.spectral_centroids(pictures[:, None], CONFIG, active_within_db=None)
    magnitude = 10.0 ** (A.to_db(pictures, CONFIG) / 20.0)
    expected = [librosa.feature.spectral_centroid(S=m, freq=A.row_frequencies(64, CONFIG))[0] for m in magnitude]
    np.testing.assert_allclose(centroids, np.concatenate(expected), rtol=1e-6)


def test_spectral_centroids_leave_out_silent_frames_but_not_a_silent_picture():
    pictures = tones(2)
    pictures[0, :, 40:] = -1.0  # the first picture falls silent (the normalisation floor) after frame 40
    pictures[1] = -1.0  # the second is silent throughout
    magnitude = 10.0 ** (A.to_db(pictures, CONFIG) / 20.0)
    freqs = A.row_frequencies(64, CONFIG)
    sounding = librosa.feature.spectral_centroid(S=magnitude[0][:, :40], freq=freqs)[0]
    silent = librosa.feature.spectral_centroid(S=magnitude[1], freq=freqs)[0]
    assert silent == pytest.approx(np.full(64, freqs.mean()), rel=1e-6)  # a flat floor: the middle of the band
    centroids = A.spectral_centroids(pictures[:, None], CONFIG)
    # Picture 0 keeps its 40 sounding frames; picture 1 has no louder frame, so all 64 stay (silence is visible).
    np.testing.assert_allclose(centroids, np.concatenate([sounding, silent]), rtol=1e-6)
    assert len(A.spectral_centroids(pictures[:, None], CONFIG, active_within_db=None)) == 128
    np.testing.assert_allclose(A.picture_centroids(pictures[:, None], CONFIG), [sounding.mean(), silent.mean()],
                               rtol=1e-6)


def test_a_quiet_note_does_not_let_floor_frames_count():
    # One partial at -10 dB in the first 20 frames, the floor (-50 dB) elsewhere. Summed over 64 rows a floor
    # frame's power is only 22 dB below the note's frame, so a rule on raw power would keep all 64 frames.
    db = np.full((1, 64, 64), CONFIG.floor_db)
    db[0, 10, :20] = -10.0
    pictures = 2.0 * (db - CONFIG.floor_db) / CONFIG.range_db - 1.0
    freqs = A.row_frequencies(64, CONFIG)
    magnitude = 10.0 ** (db[0] / 20.0)
    expected = librosa.feature.spectral_centroid(S=magnitude[:, :20], freq=freqs)[0]
    centroids = A.spectral_centroids(pictures[:, None], CONFIG)
    np.testing.assert_allclose(centroids, expected, rtol=1e-6)
    assert active_frames(magnitude[None] ** 2).all()  # the premise: raw power keeps every frame


def test_mean_log_spectrum_by_hand():
    x = np.zeros((2, 1, 8, 4), np.float32)
    x[:, :, 3] = 0.5  # one row louder: 0.5 maps to -50 + 0.75 * 100 = 25 dB, the rest to 0 dB
    spectrum = A.mean_log_spectrum(x, CONFIG.to_dict())
    np.testing.assert_allclose(spectrum, [0, 0, 0, 25, 0, 0, 0, 0])


def test_wasserstein_1d_matches_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=300), rng.gamma(2.0, size=170)
    assert A.wasserstein_1d(a, b) == pytest.approx(scipy.stats.wasserstein_distance(a, b), rel=1e-10)
    assert A.wasserstein_1d(a, a + 7.0) == pytest.approx(7.0)  # a shift moves every quantile by the shift
    assert A.wasserstein_1d(a, a) == 0.0


def test_audio_metrics_of_a_set_with_itself_and_with_a_louder_set():
    reals = np.clip(tones(4), -0.8, 0.8)
    same = A.audio_metrics(reals, reals, CONFIG, n_items=0)
    assert same["log_spectrum_rms_db"] == 0.0 and same["centroid_w1_hz"] == 0.0
    assert "sc_real_db" not in same  # n_items=0 skips phase reconstruction
    louder = A.audio_metrics(torch.from_numpy(reals)[:, None], torch.from_numpy(reals + 0.1)[:, None], CONFIG,
                             n_items=0)
    assert louder["log_spectrum_rms_db"] == pytest.approx(5.0, rel=1e-5)  # 0.1 of the [-1, 1] range is 5 dB
    # Adding the same dB everywhere scales every magnitude alike: the centroids do not move.
    assert louder["centroid_w1_hz"] == pytest.approx(0.0, abs=1e-3)  # float32 rounding of the pictures


def test_brighter_fakes_have_higher_centroids():
    reals = tones(4)
    brighter = np.roll(reals, 8, axis=1)  # every partial an octave-ish higher
    values = A.audio_metrics(reals, brighter, CONFIG, n_items=0)
    assert values["centroid_fake_hz"] > values["centroid_real_hz"] + 300
    assert values["centroid_w1_hz"] > 300


def test_consistency_real_spectrograms_beat_noise_pictures():
    reals = tones(2)
    noise = np.random.default_rng(1).uniform(-1, 1, size=reals.shape).astype(np.float32)
    sc_real = A.consistency_db(reals, CONFIG, n_iter=16, device="cpu")
    sc_noise = A.consistency_db(noise, CONFIG, n_iter=16, device="cpu")
    assert sc_real.shape == (2,)
    assert sc_real.max() < -12 and sc_noise.min() > -8 and sc_real.max() < sc_noise.min() - 8
    # A lower level is scaled up to full size first.
    low = torch.nn.functional.avg_pool2d(torch.from_numpy(reals)[:, None], 4)
    assert A.consistency_db(low, CONFIG, n_iter=4, device="cpu").shape == (2,)
    values = A.audio_metrics(reals, noise, CONFIG, n_items=2, n_iter=16, device="cpu")
    assert values["sc_real_db"] == pytest.approx(sc_real.mean()) and values["sc_fake_db"] > values["sc_real_db"]


def test_bad_input_is_clear():
    with pytest.raises(ValueError, match="one shape"):
        A.audio_metrics(np.zeros((2, 64, 64)), np.zeros((2, 32, 32)), CONFIG, n_items=0)
    with pytest.raises(ValueError, match="reals: expected spectrograms"):
        A.audio_metrics(np.zeros((2, 3, 64, 64)), np.zeros((2, 3, 64, 64)), CONFIG, n_items=0)


# ---- notes: onsets and partial lines (chapter 9) -------------------------------------------------------------------
def _level(db: float) -> float:
    """The picture value of a level in dB (the normalisation, by hand)."""
    return 2.0 * (db - CONFIG.floor_db) / CONFIG.range_db - 1.0


def test_onset_strength_is_the_jump_of_a_struck_note_and_a_fraction_of_it_when_smeared():
    pictures = np.full((3, 64, 64), -1.0, np.float32)  # the floor
    pictures[0, :, 20:] = _level(CONFIG.floor_db + 40.0)  # every row jumps 40 dB at frame 20
    ramp = np.minimum(np.arange(64) - 19, 4).clip(0, None) / 4  # the same rise spread over four frames
    pictures[1] = _level(CONFIG.floor_db + 40.0 * ramp)[None, :]
    pictures[2, :, :20] = _level(CONFIG.floor_db + 40.0)  # a note that stops: falls count as no onset
    np.testing.assert_allclose(A.onset_strengths(pictures, CONFIG), [40.0, 10.0, 0.0], atol=1e-3)


def test_onset_strength_matches_a_loop_by_hand():
    pictures = np.random.default_rng(0).uniform(-1, 1, (2, 8, 5)).astype(np.float32)
    db = A.to_db(pictures, CONFIG)
    expected = [max(sum(max(d[f, t + 1] - d[f, t], 0.0) for f in range(8)) / 8 for t in range(4)) for d in db]
    np.testing.assert_allclose(A.onset_strengths(torch.from_numpy(pictures)[:, None], CONFIG), expected, rtol=1e-9)
    with pytest.raises(ValueError, match="at least 2 frames"):
        A.onset_strengths(pictures[:, :, :1], CONFIG)


def _partial_contrast_by_hand(db: np.ndarray, window: int) -> float:
    """One picture (rows, frames) of sounding frames: the mean over frames of std(level - moving average)."""
    half = window // 2
    padded = np.pad(db, ((half, half), (0, 0)), mode="edge")
    contrasts = []
    for t in range(db.shape[1]):
        smooth = [padded[f : f + window, t].mean() for f in range(db.shape[0])]
        contrasts.append(np.std(db[:, t] - np.array(smooth)))
    return float(np.mean(contrasts))


def test_partial_contrast_is_zero_for_a_flat_spectrum_and_matches_a_comb_by_hand():
    base = CONFIG.floor_db + 30.0
    flat = np.full((64, 64), _level(base), np.float32)
    comb = flat.copy()
    comb[::4] = _level(base + 20.0)  # a partial every fourth row, 20 dB above the rest
    slope = _level(CONFIG.floor_db + np.linspace(50.0, 20.0, 64))[:, None] * np.ones((1, 64), np.float32)
    values = A.partial_contrasts(np.stack([flat, comb, slope]), CONFIG, window_rows=9)
    assert values[0] == pytest.approx(0.0, abs=1e-4)
    assert values[1] == pytest.approx(_partial_contrast_by_hand(A.to_db(comb, CONFIG), 9), rel=1e-4)
    assert values[1] > 5.0
    # A straight spectral slope is no partial: only the rows within half a window of the ends bend the average.
    assert values[2] == pytest.approx(_partial_contrast_by_hand(A.to_db(slope, CONFIG), 9), rel=1e-4)
    assert values[2] < 0.05 * values[1]


def test_partial_contrast_counts_sounding_frames_only_and_sees_partials_blur_away():
    pictures = tones(4)
    silenced = pictures.copy()
    silenced[:, :, 32:] = -1.0  # the floor after frame 32
    db = A.to_db(silenced, CONFIG)
    sounding = active_frames(10.0 ** (db / 10.0) - 10.0 ** (CONFIG.floor_db / 10.0))
    expected = [_partial_contrast_by_hand(d[:, s], 9) for d, s in zip(db, sounding)]
    np.testing.assert_allclose(A.partial_contrasts(silenced, CONFIG), expected, rtol=1e-4)
    assert not sounding[:, 32:].any()
    # The same tones smeared along the frequency axis lose their partial lines.
    kernel = np.ones(7) / 7
    blurred = np.apply_along_axis(lambda column: np.convolve(column, kernel, mode="same"), 1, pictures)
    sharp, smeared = A.partial_contrasts(pictures, CONFIG), A.partial_contrasts(blurred, CONFIG)
    assert (smeared < sharp).all() and smeared.mean() < 0.6 * sharp.mean()
    with pytest.raises(ValueError, match="odd number"):
        A.partial_contrasts(pictures, CONFIG, window_rows=8)
    with pytest.raises(ValueError, match="at least window_rows=9 rows"):
        A.partial_contrasts(pictures[:, :8], CONFIG)


def test_audio_metrics_report_the_note_figures_from_nine_rows_up():
    reals = tones(8)
    kernel = np.ones(7) / 7  # fakes: the same tones smeared along frequency and time, other figures
    fakes = np.apply_along_axis(lambda column: np.convolve(column, kernel, mode="same"), 1, reals)
    fakes = np.apply_along_axis(lambda row: np.convolve(row, kernel, mode="same"), 2, fakes)
    values = A.audio_metrics(reals, fakes, CONFIG, n_items=0)
    for side, pictures in (("real", reals), ("fake", fakes)):
        assert values[f"onset_{side}_db"] == pytest.approx(float(np.median(A.onset_strengths(pictures, CONFIG))))
        assert values[f"partial_contrast_{side}_db"] == pytest.approx(
            float(np.median(A.partial_contrasts(pictures, CONFIG))))
    assert values["onset_fake_db"] < values["onset_real_db"]  # each side's figure is its own
    assert values["partial_contrast_fake_db"] < values["partial_contrast_real_db"]
    small = reals.reshape(8, 8, 8, 8, 8).mean(axis=(2, 4))  # the 8x8 level: too few rows for a partial line
    assert "partial_contrast_real_db" not in A.audio_metrics(small, small, CONFIG, n_items=0)
