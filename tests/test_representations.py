"""Magnitude + instantaneous frequency and mel pictures: shapes, exactness, round trips (book: chapter 11)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pgsound.representations import channels_of, decode, encode, mel_basis
from pgsound.spectrogram import SpectrogramConfig, audio_to_frames

CONFIG = SpectrogramConfig(n_fft=256, hop_length=64, n_bins=128, n_frames=64)


def piano_pieces(n: int = 2) -> np.ndarray:
    from pgsound.synth_piano import piano_dataset

    audio, _ = piano_dataset(n, CONFIG.segment_length / CONFIG.sample_rate, seed=5)
    return audio


def test_magnitude_is_the_sound_paths_picture():
    pieces = piano_pieces()
    pictures = encode(pieces, CONFIG, "magnitude")
    assert pictures.shape == (2, 1, 128, 64) and channels_of("magnitude") == 1
    np.testing.assert_allclose(pictures[1, 0], audio_to_frames(pieces[1], CONFIG)[0], atol=1e-6)


def test_instantaneous_frequency_of_a_pure_tone_is_its_offset_from_the_bin_centre():
    # A sinusoid at bin 20.25 advances by 2 pi 20.25 hop / n_fft per frame: 2 pi 0.25 * 64 / 256 = pi / 8 more
    # than bin 20's centre frequency, so its instantaneous frequency picture holds 1/8 in row 20.
    t = np.arange(CONFIG.segment_length) / CONFIG.sample_rate
    frequency = 20.25 * CONFIG.sample_rate / CONFIG.n_fft
    tone = 0.5 * np.sin(2 * math.pi * frequency * t).astype(np.float32)
    pictures = encode(tone[None], CONFIG, "mag-if")
    assert pictures.shape == (1, 2, 128, 64) and channels_of("mag-if") == 2
    inner = pictures[0, 1, 20, 4:-4]  # away from the zero-padded ends
    np.testing.assert_allclose(inner, 0.125, atol=1e-3)
    assert np.all(np.abs(pictures[0, 1]) <= 1)


def test_mag_if_round_trip_is_exact_without_griffin_lim():
    pieces = piano_pieces()
    audio = decode(encode(pieces, CONFIG, "mag-if"), CONFIG, "mag-if")
    assert audio.shape == pieces.shape
    # Only the dropped Nyquist bin and magnitudes below the -50 dB floor are lost.
    error = np.linalg.norm(audio - pieces) / np.linalg.norm(pieces)
    assert 20 * np.log10(error) < -30


def test_mel_bands_average_their_bins_and_come_back_close():
    config = SpectrogramConfig(n_fft=1024, hop_length=128, n_bins=64, n_frames=64)
    basis = mel_basis(config.sample_rate, config.n_fft, 64)
    assert basis.shape == (64, 513)
    np.testing.assert_allclose(basis.sum(axis=1), 1.0, rtol=1e-5)
    from pgsound.synth_piano import piano_dataset

    pieces, _ = piano_dataset(2, config.segment_length / config.sample_rate, seed=1)
    pictures = encode(pieces, config, "mel")
    assert pictures.shape == (2, 1, 64, 64)
    again = encode(decode(pictures, config, "mel", n_iter=50), config, "mel")
    # The mel picture of the reconstructed audio is close to the one it came from (values in [-1, 1]).
    assert np.abs(again - pictures).mean() < 0.05
    with pytest.raises(ValueError, match="too many for n_fft=64"):
        mel_basis(16000, 64, 64)


def test_bad_representation_and_shape_are_clear_errors():
    with pytest.raises(ValueError, match="unknown representation 'phase'"):
        encode(np.zeros((1, CONFIG.segment_length), np.float32), CONFIG, "phase")
    with pytest.raises(ValueError, match=r"mag-if pictures must have shape \(N, 2, 128, 64\)"):
        decode(np.zeros((1, 1, 128, 64), np.float32), CONFIG, "mag-if")


def test_prepared_datasets_carry_their_representation_and_play_back(tmp_path):
    import torch

    from pgsound.cli import main
    from pgsound.datasets import open_dataset
    from pgsound.samples import spectrograms_to_audio

    out = tmp_path / "ifs.h5"
    args = ["prepare", "synthetic-piano", "--minutes", "0.05", "--size", "32x32", "--n-fft", "512", "--hop", "256",
            "--representation", "mag-if", "--labels", "octave", "-o", str(out)]
    assert main(args) == 0
    dataset = open_dataset(out)
    assert dataset.channels == 2 and dataset.metadata["representation"] == "mag-if" and dataset.num_labels == 8
    assert dataset.labels.max() < 8
    pictures = torch.from_numpy(dataset.to_float(dataset.images(32, 32)[:2]))
    audio = spectrograms_to_audio(pictures, dataset.metadata["spectrogram"], representation="mag-if")
    assert audio.shape == (2, 31 * 256) and np.all(np.isfinite(audio)) and np.abs(audio).max() > 1e-3
    # A lower level, scaled up, plays back too (the networks' samples at 8x8).
    low = torch.from_numpy(dataset.to_float(dataset.images(8, 8)[:1]))
    assert spectrograms_to_audio(low, dataset.metadata["spectrogram"], representation="mag-if").shape == (1, 7936)
    # A run's sample files decode with the data's representation: the phase from the IF channel, not guessed.
    import soundfile as sf

    from pgsound.samples import write_sample_set

    write_sample_set(pictures, tmp_path / "samples", "fakes", dataset.metadata, grid=(1, 2))
    heard = np.stack([sf.read(tmp_path / "samples" / f"fakes-{i:02d}.wav", dtype="float32")[0] for i in range(2)])
    peak_safe = audio * np.minimum(1.0, 10 ** (-0.1 / 20) / np.abs(audio).max(axis=1, keepdims=True))  # write_wav
    np.testing.assert_allclose(heard, peak_safe, atol=2 / 32768)
    guessed = spectrograms_to_audio(pictures[:, :1], dataset.metadata["spectrogram"], representation="magnitude")
    assert np.abs(heard - guessed).max() > 0.01
