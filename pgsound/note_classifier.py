"""A note classifier: which of the 88 piano keys sound in a clip of audio (book: chapter 8, "Measuring with a
classifier").

The audio GAN papers judge sound through a trained audio classifier: GANSynth through a pitch classifier
trained on NSynth, DrumGAN through instrument and pitch classifiers. Neither was released, and no wheel ships
the weights of an audio embedding model, so pgsound trains its own on rendered piano whose notes are known
(:mod:`pgsound.note_training`) and ships it as package data (``pgsound/classifiers/notes.pt`` and its
manifest ``notes.json``).

It hears audio, not pictures, so that it judges a generator's sound after phase reconstruction:

- **analysis**: a log-frequency spectrogram of 16 kHz audio. An STFT with a 128 ms Hann window (2048 samples,
  7.8 Hz per bin, fine enough for the upper partials of the lowest keys) and a 32 ms hop; the magnitudes are
  pooled by triangular filters, three per semitone from MIDI 20 to 119 (the top of the 8 kHz band), and taken
  in dB below the clip's loudest cell, floored at :data:`FLOOR_DB`. So the classifier judges which keys sound,
  not how loud the clip is.
- **network**: two convolutions over (frequency, time) at three rows per semitone, a strided one down to one
  row per semitone, the mean and the maximum over time (so any clip length from 1 to 5 s gives the same
  shapes), a convolution along the keyboard reaching two octaves up (where a key's second to fourth partials
  lie), a linear layer to a :data:`EMBEDDING_SIZE`-d embedding (the features that the Fréchet and kernel
  distances compare; scaled by a constant fixed at the end of training so that its root-mean-square over the
  training clips is 1, the size the kernel distance's ``(x.y / d + 1)^3`` was made for) and one logit per key.
  A sigmoid turns the logits into independent probabilities: a chord sounds several keys at once.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pgsound.errors import MissingFileError, UserError
from pgsound.synth_piano import midi_to_hz

SAMPLE_RATE = 16000
N_FFT = 2048
HOP = 512
LOWEST_KEY, KEYS = 21, 88  # MIDI 21 (A0) to 108 (C8): index 0 is A0
ROW_PITCHES = (20, 119)  # semitones analysed: one below A0 up to B8 (7.9 kHz), the top of the band
ROWS_PER_SEMITONE = 3
FLOOR_DB = -80.0
EMBEDDING_SIZE = 128
MIN_SAMPLES = N_FFT  # the shortest clip that one analysis window covers
FOLDER = Path(__file__).with_name("classifiers")
WEIGHTS, MANIFEST = FOLDER / "notes.pt", FOLDER / "notes.json"


def semitones() -> int:
    """The number of semitone rows the network sees after its strided convolution."""
    return ROW_PITCHES[1] - ROW_PITCHES[0] + 1


@functools.lru_cache(maxsize=4)
def _filterbank(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT) -> np.ndarray:
    """(rows, n_fft // 2 + 1) triangular filters, ``ROWS_PER_SEMITONE`` per semitone, each summing to 1.

    Row ``3 s + 1`` is centred on semitone ``ROW_PITCHES[0] + s``; a filter is at least one STFT bin wide on
    each side, so that the low rows, narrower than a bin, still take the nearest bins.
    """
    steps = np.arange(semitones() * ROWS_PER_SEMITONE)
    centres = midi_to_hz(ROW_PITCHES[0] + (steps - 1) / ROWS_PER_SEMITONE)
    bin_hz = sample_rate / n_fft
    half_width = np.maximum(centres * (2 ** (1 / (12 * ROWS_PER_SEMITONE)) - 1), bin_hz)
    freqs = np.arange(n_fft // 2 + 1) * bin_hz
    weights = np.clip(1 - np.abs(freqs[None] - centres[:, None]) / half_width[:, None], 0, None)
    return (weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)).astype(np.float32)


def log_frequency_spectrogram(audio: torch.Tensor) -> torch.Tensor:
    """``(n, samples)`` audio at 16 kHz to ``(n, 1, rows, frames)`` dB below each clip's loudest cell."""
    window = torch.hann_window(N_FFT, device=audio.device)
    spectrum = torch.stft(audio.float(), N_FFT, HOP, window=window, center=True, return_complex=True).abs()
    bank = torch.from_numpy(_filterbank()).to(audio.device)
    rows = torch.einsum("rf,nft->nrt", bank, spectrum)
    db = 20 * torch.log10(rows + 1e-10)
    db = db - db.amax(dim=(1, 2), keepdim=True)
    return db.clamp(min=FLOOR_DB)[:, None] / -FLOOR_DB  # in [-1, 0]


class NoteClassifier(nn.Module):
    """Audio ``(n, samples)`` at 16 kHz to one logit per piano key ``(n, 88)`` (book: chapter 8)."""

    def __init__(self, width: int = 16, embedding_size: int = EMBEDDING_SIZE) -> None:
        super().__init__()
        act = nn.LeakyReLU(0.2)
        self.spectral = nn.Sequential(
            nn.Conv2d(1, width, (9, 3), padding=(4, 1)), nn.BatchNorm2d(width), act,
            nn.Conv2d(width, 2 * width, (3, 3), stride=(ROWS_PER_SEMITONE, 1), padding=(0, 1)),
            nn.BatchNorm2d(2 * width), act,
            nn.Conv2d(2 * width, 2 * width, (7, 3), padding=(3, 1)), nn.BatchNorm2d(2 * width), act,
        )
        self.harmonics = nn.Sequential(
            nn.ConstantPad1d((4, 24), 0.0),  # 4 semitones below a key to two octaves above it
            nn.Conv1d(4 * width, width, 29), nn.BatchNorm1d(width), act,
        )
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(width * semitones(), embedding_size), act)
        self.keys = nn.Linear(embedding_size, KEYS)
        self.register_buffer("embedding_scale", torch.ones(()))  # set by pgsound.note_training.train

    def _features(self, audio: torch.Tensor) -> torch.Tensor:
        if audio.ndim != 2 or audio.shape[1] < MIN_SAMPLES:
            raise ValueError(f"audio must be (n, samples) with at least {MIN_SAMPLES} samples, "
                             f"got shape {tuple(audio.shape)}")
        x = self.spectral(log_frequency_spectrogram(audio))
        pooled = torch.cat([x.mean(dim=3), x.amax(dim=3)], dim=1)  # (n, 4 width, semitones)
        return self.embed(self.harmonics(pooled))

    def outputs(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The embedding ``(n, embedding_size)`` and the key logits ``(n, 88)``, from one pass."""
        features = self._features(audio)
        return features * self.embedding_scale, self.keys(features)

    def embeddings(self, audio: torch.Tensor) -> torch.Tensor:
        """The penultimate features ``(n, embedding_size)``, scaled to unit RMS over the training clips."""
        return self._features(audio) * self.embedding_scale

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.keys(self._features(audio))


def manifest(path: str | Path = MANIFEST) -> dict[str, Any]:
    """The shipped classifier's manifest: its data recipe, commit, training time and held-out accuracy."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no note classifier manifest (retrain it with "
                               f"python benchmarks/train_note_classifier.py)")
    return json.loads(path.read_text())


def load(path: str | Path = WEIGHTS, device: torch.device | str = "cpu") -> NoteClassifier:
    """The classifier from a plain state dict (``weights_only=True``), in eval mode, as float32 on ``device``."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no note classifier weights (retrain them with "
                               f"python benchmarks/train_note_classifier.py)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        width = int(state["harmonics.1.weight"].shape[0])
        model = NoteClassifier(width, int(state["keys.weight"].shape[1]))
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except (RuntimeError, KeyError, EOFError, ValueError) as error:
        raise UserError(f"{path}: not a note classifier state dict ({error})") from None
    return model.to(device).eval()


@functools.lru_cache(maxsize=2)
def shipped(device: str = "cpu") -> NoteClassifier:
    """The shipped classifier, loaded once per device."""
    return load(WEIGHTS, device)
