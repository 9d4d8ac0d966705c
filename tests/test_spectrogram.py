"""The sound path's forward direction and its inverse pieces, against librosa, NumPy and hand computations."""

from __future__ import annotations

import json

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from pgsound.audio_io import write_wav
from pgsound.phase_retrieval import frames_to_audio
from pgsound.spectrogram import (
    SpectrogramConfig,
    audio_to_frames,
    denormalise,
    istft,
    normalise,
    restore_bin,
    split_audio,
    stft,
)

SMALL = SpectrogramConfig(n_fft=128, hop_length=16, n_bins=64, n_frames=64)


pytestmark = pytest.mark.usefixtures("one_thread")  # small FFTs (tests/conftest.py)


def chirp(samples: int, sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    t = np.arange(samples) / sample_rate
    noise = np.random.default_rng(seed).standard_normal(samples) * 0.01
    return (0.5 * np.sin(2 * np.pi * (200 + 300 * t) * t) + noise).astype(np.float32)


# ---- the STFT ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config", [SpectrogramConfig(), SMALL], ids=["1024/128", "128/16"])
def test_stft_matches_librosa(config):
    x = chirp(9000)
    ours = stft(torch.from_numpy(x), config).numpy()
    reference = librosa.stft(x, n_fft=config.n_fft, hop_length=config.hop_length, window="hann", pad_mode="constant")
    assert ours.shape == reference.shape == (config.n_fft // 2 + 1, 1 + 9000 // config.hop_length)
    assert np.abs(ours - reference).max() < 1e-5 * np.abs(reference).max()


def test_stft_batches_and_istft_inverts_it():
    x = torch.from_numpy(np.stack([chirp(4000, seed=0), chirp(4000, seed=1)]))
    spectrum = stft(x, SMALL)
    assert spectrum.shape == (2, 65, 1 + 4000 // 16)
    assert torch.allclose(spectrum[1], stft(x[1], SMALL))
    back = istft(spectrum, SMALL, length=4000)
    assert torch.allclose(back, x, atol=1e-5)


@pytest.mark.parametrize("hop", [16, 24])  # 24 does not divide 128: the last chunk of a frame is padded
@pytest.mark.parametrize("length", [None, 3000, 4000, 4100])
def test_istft_matches_torch_istft(hop, length):
    config = SpectrogramConfig(n_fft=128, hop_length=hop, n_bins=64, n_frames=64)
    spectrum = stft(torch.from_numpy(np.stack([chirp(4000, seed=0), chirp(4000, seed=1)])), config)
    spectrum = spectrum * torch.polar(torch.ones(()), torch.tensor(0.3))  # not consistent any more
    window = torch.hann_window(128, periodic=True)
    expected = torch.istft(spectrum, 128, hop, 128, window=window, center=True, length=length)
    ours = istft(spectrum, config, length=length)
    assert ours.shape == expected.shape
    assert torch.allclose(ours, expected, atol=1e-6)



@pytest.mark.parametrize("hop, win_length, center", [(16, None, False), (48, 100, False), (48, 100, True)])
def test_istft_matches_librosa_for_uncentred_frames_and_short_windows(hop, win_length, center):
    """Uncentred Hann frames leave the first and last sample uncovered (torch.istft refuses them); librosa
    returns zeros there, and the same samples everywhere else."""
    config = SpectrogramConfig(n_fft=128, hop_length=hop, win_length=win_length, center=center,
                               n_bins=64, n_frames=64)
    audio = np.stack([chirp(3000, seed=0), chirp(3000, seed=1)]).astype(np.float64)
    spectrum = stft(torch.from_numpy(audio), config)
    ours = istft(spectrum, config, length=3000).numpy()
    expected = librosa.istft(spectrum.numpy(), n_fft=128, hop_length=hop, win_length=win_length, center=center,
                             length=3000)
    np.testing.assert_allclose(ours, expected, atol=1e-9)
    np.testing.assert_allclose(ours[:, 128:-128], audio[:, 128:-128], atol=1e-9)  # and it inverts stft


def test_uncentred_frames_are_librosas_uncentred_stft():
    config = SpectrogramConfig(n_fft=128, hop_length=16, n_bins=64, n_frames=64, center=False)
    assert config.segment_length == 63 * 16 + 128  # no padding: the window must cover every frame
    audio = chirp(2 * config.segment_length)
    frames = audio_to_frames(audio, config)
    assert frames.shape == (2, 64, 64)
    window = audio[config.segment_length :]
    magnitude = np.abs(librosa.stft(window, n_fft=128, hop_length=16, center=False))
    assert magnitude.shape == (65, 64)
    np.testing.assert_allclose(frames[1], normalise(magnitude[:64], config), atol=1e-4)


# ---- framing -----------------------------------------------------------------------------------------------------
def test_reference_geometry_numbers():
    config = SpectrogramConfig()
    assert config.segment_length == 65408 == 511 * 128
    assert config.shape == (512, 512) and config.n_freqs == 513
    assert config.kept_bins == slice(0, 512)
    # The 2018 recipe: 5 s at hop 128 gives 626 centred frames, of which 512 are kept.
    assert 1 + config.part_samples // config.hop_length == 626


def test_consecutive_windows_tile_the_audio():
    config = SMALL  # segment_length 63 * 16 = 1008
    length = config.segment_length
    audio = chirp(int(2.6 * length))
    pieces = split_audio(audio, config)
    assert pieces.shape == (3, length)
    flat = pieces.reshape(-1)
    np.testing.assert_array_equal(flat[: audio.size], audio)
    np.testing.assert_array_equal(flat[audio.size :], 0.0)  # the last, partial window is zero-padded
    # A last piece under min_last_fraction is dropped, the rest still tile exactly.
    short = split_audio(audio[: int(2.3 * length)], config)
    assert short.shape == (2, length)
    np.testing.assert_array_equal(short.reshape(-1), audio[: 2 * length])


def test_audio_to_frames_is_the_normalised_librosa_magnitude_of_each_window():
    config = SMALL
    audio = chirp(2 * config.segment_length)
    frames = audio_to_frames(audio, config)
    assert frames.shape == (2, 64, 64) and frames.dtype == np.float32
    assert frames.min() >= -1.0 and frames.max() <= 1.0
    for i in range(2):
        window = audio[i * config.segment_length : (i + 1) * config.segment_length]
        magnitude = np.abs(librosa.stft(window, n_fft=128, hop_length=16, pad_mode="constant"))
        assert magnitude.shape == (65, 64)  # exactly n_frames frames: nothing to crop in time
        db = 20 * np.log10(np.maximum(magnitude[:64], 10 ** (-50 / 20)))
        expected = np.clip((db + 50) / 50 - 1, -1, 1)  # floor -50 dB, range 100 dB
        np.testing.assert_allclose(frames[i], expected, atol=1e-4)


def test_crop_framing_takes_parts_and_keeps_the_first_frames():
    config = SpectrogramConfig(n_fft=128, hop_length=16, n_bins=64, n_frames=64, framing="crop", part_seconds=0.1)
    assert config.part_samples == 1600
    audio = chirp(3 * 1600 + 700)  # the shorter last part is dropped, as in 2018
    frames = audio_to_frames(audio, config)
    assert frames.shape == (3, 64, 64)
    part = audio[1600:3200]
    magnitude = np.abs(librosa.stft(part, n_fft=128, hop_length=16, pad_mode="constant"))
    assert magnitude.shape[1] == 101  # the whole part is transformed, then cropped to 64 frames
    np.testing.assert_allclose(frames[1], normalise(magnitude[:64, :64], config), atol=1e-4)


def test_dc_bin_can_be_dropped_instead():
    config = SpectrogramConfig(n_fft=128, hop_length=16, n_bins=64, n_frames=64, dropped_bin="dc")
    audio = chirp(config.segment_length)
    magnitude = np.abs(librosa.stft(audio, n_fft=128, hop_length=16, pad_mode="constant"))
    np.testing.assert_allclose(audio_to_frames(audio, config)[0], normalise(magnitude[1:], config), atol=1e-4)


def test_too_short_audio_names_both_lengths():
    with pytest.raises(ValueError, match=r"100 samples .* too short .* need at least 504 samples"):
        split_audio(np.zeros(100, np.float32), SMALL)
    with pytest.raises(ValueError, match="mono audio"):
        split_audio(np.zeros((2, 5000), np.float32), SMALL)
    with pytest.raises(ValueError, match="NaN or Inf"):
        split_audio(np.full(5000, np.nan, np.float32), SMALL)


# ---- normalisation -----------------------------------------------------------------------------------------------
def test_normalise_by_hand():
    config = SpectrogramConfig()  # floor -50 dB, range 100 dB
    magnitude = np.array([[0.0, 10 ** (-50 / 20), 1.0, 10.0, 10 ** (50 / 20), 1e6]], np.float32)
    np.testing.assert_allclose(normalise(magnitude, config), [[-1.0, -1.0, 0.0, 0.4, 1.0, 1.0]], atol=1e-6)


def test_normalise_denormalise_round_trip_is_exact_inside_the_range():
    config = SpectrogramConfig()
    rng = np.random.default_rng(0)
    db = rng.uniform(-50, 50, size=(3, 512, 64))
    magnitude = (10 ** (db / 20)).astype(np.float32)
    back = denormalise(normalise(magnitude, config), config)
    np.testing.assert_allclose(back, magnitude, rtol=2e-5)
    # Outside the range: clipped to the floor and to the ceiling.
    outside = np.array([1e-6, 1e4], np.float32)
    np.testing.assert_allclose(denormalise(normalise(outside, config), config), [10**-2.5, 10**2.5], rtol=1e-5)
    # Torch tensors go through too, and values outside [-1, 1] are clipped before the inverse.
    assert np.allclose(denormalise(torch.tensor([-3.0, 3.0]), config), [10**-2.5, 10**2.5])


def test_normalisation_rejects_bad_values():
    config = SpectrogramConfig()
    with pytest.raises(ValueError, match="non-negative"):
        normalise(np.array([-1.0]), config)
    with pytest.raises(ValueError, match="finite"):
        denormalise(np.array([np.nan]), config)


def test_restore_bin_puts_back_zeros_in_the_dropped_row():
    x = torch.rand(2, 64, 10) + 0.1
    nyquist = restore_bin(x, SMALL)
    assert nyquist.shape == (2, 65, 10)
    assert torch.equal(nyquist[:, :64], x) and torch.all(nyquist[:, 64] == 0)
    dc = restore_bin(x, SpectrogramConfig.from_dict({**SMALL.to_dict(), "dropped_bin": "dc"}))
    assert torch.equal(dc[:, 1:], x) and torch.all(dc[:, 0] == 0)
    with pytest.raises(ValueError, match="expected 64 frequency rows, got 65"):
        restore_bin(torch.rand(65, 10), SMALL)


# ---- the config --------------------------------------------------------------------------------------------------
def test_config_round_trips_through_json():
    config = SpectrogramConfig(
        n_fft=512, hop_length=64, n_bins=256, n_frames=128, floor_db=-60.0, framing="crop", part_seconds=1.0
    )
    values = json.loads(json.dumps(config.to_dict()))
    assert values["format"] == "pgsound-spectrogram-1"
    assert SpectrogramConfig.from_dict(values) == config
    assert SpectrogramConfig.from_dict({}) == SpectrogramConfig()


def test_config_errors_name_the_value():
    with pytest.raises(ValueError, match=r"unknown spectrogram settings \['hop'\]"):
        SpectrogramConfig.from_dict({"hop": 128})
    with pytest.raises(ValueError, match="format 'other'"):
        SpectrogramConfig.from_dict({"format": "other"})
    with pytest.raises(ValueError, match="n_bins 600 exceeds the 513 bins"):
        SpectrogramConfig(n_bins=600)
    with pytest.raises(ValueError, match="hop_length 2048 exceeds the window length 1024"):
        SpectrogramConfig(hop_length=2048)
    with pytest.raises(ValueError, match="framing must be one of"):
        SpectrogramConfig(framing="overlap")
    with pytest.raises(ValueError, match="part_seconds=1.0 gives 16000 samples, fewer than the 65408"):
        SpectrogramConfig(framing="crop", part_seconds=1.0)
    with pytest.raises(ValueError, match="n_fft must be a positive integer"):
        SpectrogramConfig(n_fft=0)
    with pytest.raises(ValueError, match="range_db must be positive"):
        SpectrogramConfig(range_db=0.0)
    with pytest.raises(ValueError, match="unknown window 'kaiser'"):
        SpectrogramConfig(window="kaiser")


def test_other_picture_sizes_follow_from_the_config():
    square = SpectrogramConfig.for_shape(128, 128)
    assert (square.n_fft, square.hop_length, square.shape) == (256, 32, (128, 128))
    wide = SpectrogramConfig.for_shape(256, 512)
    assert wide.shape == (256, 512) and wide.segment_length == 511 * 64
    assert audio_to_frames(chirp(square.segment_length), square).shape == (1, 128, 128)


# ---- back to audio -----------------------------------------------------------------------------------------------
def test_frames_to_audio_round_trip_small():
    config = SMALL
    audio = chirp(2 * config.segment_length)
    frames = audio_to_frames(audio, config)
    back = frames_to_audio(frames, config, n_iter=30, device="cpu")
    assert back.shape == (2, config.segment_length) and back.dtype == np.float32
    # Same pictures again (up to the phase): within 1/20 of the range after 30 iterations from PGHI.
    assert np.abs(audio_to_frames(back.reshape(-1), config) - frames).mean() < 0.05
    single = frames_to_audio(frames[0], config, n_iter=2, device="cpu")
    assert single.shape == (config.segment_length,)
    with pytest.raises(ValueError, match=r"expected pictures of shape \(64, 64\)"):
        frames_to_audio(np.zeros((2, 32, 64)), config)


def test_write_wav_is_peak_safe_and_atomic(tmp_path):
    loud = np.array([0.0, 3.0, -1.5, 0.75], np.float32)
    path = write_wav(tmp_path / "sub" / "loud.wav", loud, 16000)
    data, rate = sf.read(path, dtype="float32")
    assert rate == 16000 and data.shape == (4,)
    peak = 10 ** (-0.1 / 20)
    np.testing.assert_allclose(data, loud * peak / 3.0, atol=1 / 32768)  # scaled, shape kept, never clipped
    quiet = np.array([0.0, 0.5, -0.25], np.float32)
    np.testing.assert_allclose(
        sf.read(write_wav(tmp_path / "quiet.wav", quiet), dtype="float32")[0], quiet, atol=1 / 32768
    )  # left as it is
    # NaN: an error, and the earlier file of that name is still there, untouched; no temp files left.
    with pytest.raises(ValueError, match="NaN or Inf"):
        write_wav(tmp_path / "quiet.wav", np.array([0.0, np.nan], np.float32))
    np.testing.assert_allclose(sf.read(tmp_path / "quiet.wav", dtype="float32")[0], quiet, atol=1 / 32768)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["loud.wav", "quiet.wav", "sub"]
