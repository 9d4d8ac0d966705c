"""Other pictures of sound: magnitude with instantaneous frequency, and mel bands (book: chapter 11).

The paper's piano run draws one picture per clip: the normalised log magnitude (``"magnitude"``), whose phase
must be guessed afterwards (chapter 2). Two alternatives, each chosen by ``representation`` when a dataset is
prepared and stored in its metadata so that generated pictures can be heard:

- ``"mag-if"`` (GANSynth, Engel et al. 2019): two channels, the normalised log magnitude and the
  *instantaneous frequency*, the frame-to-frame phase advance of each bin minus the advance of the bin's own
  centre frequency, wrapped to (-pi, pi] and divided by pi. Summing it back up gives the phase, so audio comes
  back with one inverse STFT and no Griffin-Lim.
- ``"mel"``: ``n_bins`` mel bands instead of linear bins (band-averaged magnitudes, normalised like the
  magnitude). Low frequencies get finer rows, high ones coarser; going back needs a non-negative least-squares
  step to linear bins, then phase reconstruction.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from pgsound.errors import UserError
from pgsound.phase_retrieval import frames_to_audio, griffin_lim
from pgsound.spectrogram import (
    SpectrogramConfig,
    denormalise,
    istft,
    normalise,
    pieces_to_magnitude,
    stft,
)

REPRESENTATIONS: tuple[str, ...] = ("magnitude", "mag-if", "mel")


def channels_of(representation: str) -> int:
    """Image channels a representation needs: 2 for ``"mag-if"``, else 1."""
    _check(representation)
    return 2 if representation == "mag-if" else 1


def _check(representation: str) -> None:
    if representation not in REPRESENTATIONS:
        raise UserError(f"unknown representation {representation!r}; expected one of {REPRESENTATIONS}")


def _bin_advance(config: SpectrogramConfig) -> torch.Tensor:
    """Phase advance per hop of each kept bin's centre frequency, (n_bins, 1) radians."""
    bins = torch.arange(config.n_freqs, dtype=torch.float64)[config.kept_bins]
    return (2 * math.pi * bins * config.hop_length / config.n_fft)[:, None]


def _wrap(phase: torch.Tensor) -> torch.Tensor:
    return torch.remainder(phase + math.pi, 2 * math.pi) - math.pi


@lru_cache(maxsize=8)
def mel_basis(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular mel filters (librosa, Slaney scale), each scaled to sum to one.

    Rows summing to one make a mel band the *average* magnitude of its bins, on the same scale as a linear bin,
    so the magnitude's normalisation fits it unchanged. Too many bands for ``n_fft`` leaves empty filters: an
    error that says so.
    """
    import warnings

    import librosa

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # librosa warns of empty filters; we raise below instead
        basis = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, norm=None)
    sums = basis.sum(axis=1, keepdims=True)
    if np.any(sums <= 0):
        raise UserError(f"{n_mels} mel bands are too many for n_fft={n_fft} at {sample_rate} Hz: some bands hold "
                         f"no FFT bin; use fewer bands or a larger n_fft")
    return (basis / sums).astype(np.float32)


def encode(pieces: np.ndarray, config: SpectrogramConfig, representation: str = "magnitude") -> np.ndarray:
    """Audio pieces ``(N, config.segment_length)`` to pictures ``(N, C, n_bins, n_frames)`` in [-1, 1].

    (book: chapter 11, Beyond the paper)
    """
    _check(representation)
    if representation == "magnitude":
        return normalise(pieces_to_magnitude(pieces, config), config)[:, None]
    x = torch.as_tensor(np.asarray(pieces, dtype=np.float32))
    spectrum = stft(x.double(), config)[..., : config.n_frames]
    if representation == "mel":
        basis = torch.from_numpy(mel_basis(config.sample_rate, config.n_fft, config.n_bins)).double()
        return normalise((basis @ spectrum.abs()).float(), config)[:, None]
    spectrum = spectrum[..., config.kept_bins, :]
    magnitude = normalise(spectrum.abs().float(), config)
    phase = torch.angle(spectrum)
    advance = torch.diff(phase, dim=-1) - _bin_advance(config)
    frequency = torch.cat([_wrap(phase[..., :1]), _wrap(advance)], dim=-1) / math.pi
    return np.stack([magnitude, frequency.float().numpy()], axis=1).astype(np.float32)


def decode(
    pictures: np.ndarray | torch.Tensor,
    config: SpectrogramConfig,
    representation: str = "magnitude",
    n_iter: int = 1000,
    seed: int = 0,
    cpu_threads: int | None = 1,
) -> np.ndarray:
    """Pictures ``(N, C, n_bins, n_frames)`` back to audio ``(N, segment_length)`` float32.

    ``"magnitude"``: :func:`pgsound.phase_retrieval.frames_to_audio` (PGHI + fast Griffin-Lim, ``n_iter``).
    ``"mag-if"``: the phase is the running sum of the instantaneous frequency; one inverse STFT.
    ``"mel"``: bands to linear bins by non-negative least squares, then as ``"magnitude"``.
    ``cpu_threads``: Griffin-Lim's torch threads on the CPU (:func:`pgsound.phase_retrieval.griffin_lim`).
    (book: chapter 11, Beyond the paper)
    """
    _check(representation)
    x = pictures.detach().float().cpu().numpy() if isinstance(pictures, torch.Tensor) else np.asarray(pictures)
    expected = (channels_of(representation), config.n_bins, config.n_frames)
    if x.ndim != 4 or x.shape[1:] != expected:
        raise ValueError(f"{representation} pictures must have shape (N, {', '.join(map(str, expected))}), "
                         f"got {x.shape}")
    if representation == "magnitude":
        return np.asarray(frames_to_audio(x[:, 0], config, n_iter=n_iter, seed=seed,
                                          cpu_threads=cpu_threads)).reshape(len(x), -1)
    if representation == "mel":
        import librosa


        bands = denormalise(x[:, 0], config)
        basis = mel_basis(config.sample_rate, config.n_fft, config.n_bins)
        linear = np.stack([librosa.util.nnls(basis, item) for item in bands]).astype(np.float32)
        return np.asarray(griffin_lim(linear, config, n_iter=n_iter, init="pghi", seed=seed,
                                      length=config.segment_length, cpu_threads=cpu_threads)).reshape(len(x), -1)
    magnitude = torch.from_numpy(denormalise(x[:, 0], config)).double()
    frequency = torch.from_numpy(np.clip(x[:, 1], -1.0, 1.0)).double() * math.pi
    steps = frequency.clone()
    steps[..., 1:] += _bin_advance(config)
    phase = torch.cumsum(steps, dim=-1)
    full = torch.zeros(len(x), config.n_freqs, config.n_frames, dtype=torch.complex128)
    full[:, config.kept_bins] = torch.polar(magnitude, phase)
    return istft(full, config, length=config.segment_length).float().numpy()
