"""Sound as pictures: audio to normalised log-magnitude spectrogram frames and back (book: chapter 1).

The reference geometry is the 2018 piano run's: 16 kHz mono, an STFT with ``n_fft=1024``, ``hop_length=128`` and
a Hann window gives 513 frequency bins; the Nyquist bin is dropped to keep 512, and 512 frames make a 512x512
picture. Every number lives in one :class:`SpectrogramConfig`, whose ``to_dict()`` travels with every dataset
and checkpoint so that a picture can always be turned back into sound.

Two ways to cut a recording into pictures (``framing``):

- ``"consecutive"`` (default): consecutive windows of exactly ``(n_frames - 1) * hop_length`` samples (65408 at
  the reference geometry, 4.088 s), each transformed on its own with centred frames, so that the windows tile
  the recording and nothing is thrown away; ``frames_to_audio(...).reshape(-1)`` gives the recording back.
- ``"crop"``: the 2018 recipe: ``part_seconds`` parts (5 s), each transformed whole (626 frames) and cropped to
  the first ``n_frames`` frames; the last 0.9 s of every part is thrown away.

The normalisation is fixed and invertible: magnitudes in dB, clipped to ``[floor_db, floor_db + range_db]`` and
mapped linearly to ``[-1, 1]``. A magnitude of 1 is 0 dB; the largest magnitude a signal within [-1, 1] can
reach is the window's sum (512 for the reference Hann window, 54.2 dB: a constant signal at 1); a full-scale sine
peaks at half of it (256, 48.2 dB).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pgsound.audio_io import mono_samples
from pgsound.errors import UserError

FRAMINGS: tuple[str, ...] = ("consecutive", "crop")
DROPPED_BINS: tuple[str, ...] = ("nyquist", "dc")
CONFIG_FORMAT = "pgsound-spectrogram-1"


@dataclass(frozen=True)
class SpectrogramConfig:
    """Every parameter of the sound path (book: chapter 1, "The 512x512 frame").

    Geometry: ``sample_rate``, ``n_fft``, ``hop_length``, ``win_length`` (``None``: ``n_fft``), ``window`` (a
    ``torch`` window name: ``"hann"``), ``center`` (frames centred on their sample, zero padding at the ends as
    librosa does). The picture keeps ``n_bins`` frequency bins (``n_fft // 2``: one of the ``n_fft // 2 + 1``
    is dropped, the Nyquist bin or, as GANSynth does, the DC bin: ``dropped_bin``) and ``n_frames`` frames.

    Framing: ``framing`` is ``"consecutive"`` or ``"crop"`` (see the module docstring); with consecutive windows
    a last, partial window is zero-padded and kept when it holds at least ``min_last_fraction`` of a window.
    ``part_seconds`` is the part length of ``"crop"``.

    Normalisation: ``floor_db`` and ``range_db``; dB values in ``[floor_db, floor_db + range_db]`` map
    linearly to ``[-1, 1]``.
    """

    sample_rate: int = 16000
    n_fft: int = 1024
    hop_length: int = 128
    win_length: int | None = None
    window: str = "hann"
    center: bool = True
    n_bins: int = 512
    n_frames: int = 512
    dropped_bin: str = "nyquist"
    framing: str = "consecutive"
    min_last_fraction: float = 0.5
    part_seconds: float = 5.0
    floor_db: float = -50.0
    range_db: float = 100.0

    def __post_init__(self) -> None:
        def fail(message: str) -> None:
            raise UserError(f"SpectrogramConfig: {message}")

        for name in ("sample_rate", "n_fft", "hop_length", "n_bins", "n_frames"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                fail(f"{name} must be a positive integer, got {value!r}")
        win = self.win_length if self.win_length is not None else self.n_fft
        if not 1 <= win <= self.n_fft:
            fail(f"win_length must be in [1, n_fft={self.n_fft}], got {self.win_length}")
        if self.hop_length > win:
            fail(f"hop_length {self.hop_length} exceeds the window length {win}: the STFT would not be invertible")
        if self.n_bins > self.n_fft // 2 + 1:
            fail(f"n_bins {self.n_bins} exceeds the {self.n_fft // 2 + 1} bins of n_fft={self.n_fft}")
        if self.dropped_bin not in DROPPED_BINS:
            fail(f"dropped_bin must be one of {DROPPED_BINS}, got {self.dropped_bin!r}")
        if self.framing not in FRAMINGS:
            fail(f"framing must be one of {FRAMINGS}, got {self.framing!r}")
        if not 0.0 <= self.min_last_fraction <= 1.0:
            fail(f"min_last_fraction must be in [0, 1], got {self.min_last_fraction}")
        if self.framing == "crop" and self.part_samples < self.segment_length:
            fail(
                f"part_seconds={self.part_seconds} gives {self.part_samples} samples, fewer than the "
                f"{self.segment_length} that {self.n_frames} frames need"
            )
        if not self.range_db > 0:
            fail(f"range_db must be positive, got {self.range_db}")
        if not np.isfinite(self.floor_db):
            fail(f"floor_db must be finite, got {self.floor_db}")
        if self.window not in _WINDOWS:
            fail(f"unknown window {self.window!r}; expected one of {sorted(_WINDOWS)}")

    # ---- derived sizes -------------------------------------------------------------------------------------
    @property
    def n_freqs(self) -> int:
        """Bins of the full one-sided STFT: ``n_fft // 2 + 1`` (513 at the reference geometry)."""
        return self.n_fft // 2 + 1

    @property
    def segment_length(self) -> int:
        """Samples that ``n_frames`` frames cover exactly: ``(n_frames - 1) * hop`` when centred (65408)."""
        if self.center:
            return (self.n_frames - 1) * self.hop_length
        return (self.n_frames - 1) * self.hop_length + (self.win_length or self.n_fft)

    @property
    def segment_seconds(self) -> float:
        return self.segment_length / self.sample_rate

    @property
    def part_samples(self) -> int:
        return int(round(self.part_seconds * self.sample_rate))

    @property
    def shape(self) -> tuple[int, int]:
        """The picture: ``(n_bins, n_frames)``, frequency by time."""
        return (self.n_bins, self.n_frames)

    @property
    def ceiling_db(self) -> float:
        return self.floor_db + self.range_db

    @property
    def kept_bins(self) -> slice:
        """The bins of the full STFT that the picture keeps."""
        start = 1 if self.dropped_bin == "dc" else 0
        return slice(start, start + self.n_bins)

    # ---- serialisation -------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain types only (JSON, YAML, HDF5 attributes, ``torch.save`` with ``weights_only=True``)."""
        values = dataclasses.asdict(self)
        values["format"] = CONFIG_FORMAT
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SpectrogramConfig:
        """The inverse of :meth:`to_dict`; unknown keys are an error naming them, missing keys take defaults."""
        values = dict(values)
        found = values.pop("format", CONFIG_FORMAT)
        if found != CONFIG_FORMAT:
            raise UserError(f"spectrogram settings have format {found!r}; this version reads {CONFIG_FORMAT!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"unknown spectrogram settings {unknown}; known: {sorted(known)}")
        return cls(**values)

    @classmethod
    def for_shape(cls, n_bins: int, n_frames: int, hop_length: int | None = None, **kwargs: Any) -> SpectrogramConfig:
        """A geometry for another picture size: ``n_fft = 2 * n_bins`` (Nyquist dropped), hop ``n_fft // 8``.

        ``for_shape(256, 256)`` is n_fft 512, hop 64 (about 1 s); ``for_shape(256, 512)`` is non-square.
        """
        n_fft = 2 * n_bins
        return cls(n_fft=n_fft, hop_length=hop_length or n_fft // 8, n_bins=n_bins, n_frames=n_frames, **kwargs)


# ---- the STFT, in torch so that phase reconstruction shares it ---------------------------------------------------
_WINDOWS = {"hann": torch.hann_window, "hamming": torch.hamming_window, "blackman": torch.blackman_window}


def window_function(name: str, length: int, device: torch.device | str = "cpu", dtype=torch.float32) -> torch.Tensor:
    """The periodic analysis window (librosa's ``get_window(name, length, fftbins=True)``)."""
    if name not in _WINDOWS:
        raise UserError(f"unknown window {name!r}; expected one of {sorted(_WINDOWS)}")
    return _WINDOWS[name](length, periodic=True, device=device, dtype=dtype)


def _win(config: SpectrogramConfig, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return window_function(config.window, config.win_length or config.n_fft, device, dtype)


def stft(audio: torch.Tensor, config: SpectrogramConfig) -> torch.Tensor:
    """Complex STFT ``(..., n_freqs, frames)`` of real audio ``(..., samples)``, as ``librosa.stft`` computes it.

    Centred frames with zero padding (librosa's ``pad_mode="constant"``).
    (book: chapter 1, "The short-time Fourier transform")
    """
    shape = audio.shape
    flat = audio.reshape(-1, shape[-1])
    spec = torch.stft(
        flat,
        config.n_fft,
        config.hop_length,
        config.win_length or config.n_fft,
        window=_win(config, audio.device, audio.dtype),
        center=config.center,
        pad_mode="constant",
        return_complex=True,
    )
    return spec.reshape(*shape[:-1], *spec.shape[-2:])


def istft(spectrum: torch.Tensor, config: SpectrogramConfig, length: int | None = None) -> torch.Tensor:
    """Inverse of :func:`stft` (least-squares overlap-add); ``length`` trims or pads the result.

    The overlap-add is ``ceil(n_fft / hop)`` shifted sums of hop-long chunks, about twice as fast as
    ``torch.istft`` (Griffin-Lim calls it every iteration) and the same samples to float rounding. Where no
    window covers a sample with weight (the ends of uncentred frames, where a Hann window is zero) the sample
    is 0, as in librosa; ``torch.istft`` refuses such frames.
    """
    shape = spectrum.shape
    flat = spectrum.reshape(-1, *shape[-2:])
    real_dtype = torch.float64 if spectrum.dtype == torch.complex128 else torch.float32
    window = _win(config, spectrum.device, real_dtype)
    n_fft, hop = config.n_fft, config.hop_length
    if window.numel() < n_fft:  # a shorter window sits in the middle of the frame, as torch.stft puts it
        left = (n_fft - window.numel()) // 2
        window = torch.nn.functional.pad(window, (left, n_fft - window.numel() - left))
    audio = _overlap_add_istft(flat, window, n_fft, hop, config.center, length)
    return audio.reshape(*shape[:-2], audio.shape[-1])


def _overlap_add_istft(
    flat: torch.Tensor, window: torch.Tensor, n_fft: int, hop: int, center: bool, length: int | None
) -> torch.Tensor:
    """Inverse STFT of ``(B, n_fft // 2 + 1, T)`` by shifted sums of ``ceil(n_fft / hop)`` hop-long chunks."""
    batch, frames = flat.shape[0], flat.shape[-1]
    chunks = -(-n_fft // hop)
    tail = chunks * hop - n_fft  # zeros that make a frame whole chunks
    pieces = torch.fft.irfft(flat.transpose(-1, -2), n=n_fft, dim=-1) * window
    squares = window * window
    if tail:  # a copy only where the hop does not divide n_fft: Griffin-Lim calls this every iteration
        pieces, squares = (torch.nn.functional.pad(x, (0, tail)) for x in (pieces, squares))
    pieces = pieces.reshape(batch, frames, chunks, hop)
    squares = squares.reshape(1, 1, chunks, hop).expand(1, frames, chunks, hop)
    audio = pieces.new_zeros(batch, frames + chunks - 1, hop)
    envelope = pieces.new_zeros(1, frames + chunks - 1, hop)
    for k in range(chunks):
        audio[:, k : k + frames] += pieces[:, :, k]
        envelope[:, k : k + frames] += squares[:, :, k]
    start = n_fft // 2 if center else 0
    covered = hop * (frames - 1) + (0 if center else n_fft)
    end = start + (length if length is not None else covered)
    audio, envelope = audio.reshape(batch, -1)[:, start:end], envelope.reshape(1, -1)[:, start:end]
    if length is not None and audio.shape[-1] < length:  # asked for more than the frames cover: zeros
        audio = torch.nn.functional.pad(audio, (0, length - audio.shape[-1]))
        envelope = torch.nn.functional.pad(envelope, (0, length - envelope.shape[-1]), value=1.0)
    return audio / envelope.clamp_min(1e-11)


# ---- framing -----------------------------------------------------------------------------------------------------
def split_audio(audio: np.ndarray | torch.Tensor, config: SpectrogramConfig) -> np.ndarray:
    """Cut mono audio into the pieces that become pictures: ``(N, samples)`` float32 (book: chapter 1).

    ``"consecutive"``: ``N`` windows of ``config.segment_length`` samples that tile the audio; a last partial
    window is zero-padded when it holds at least ``min_last_fraction`` of a window. ``"crop"``: ``N`` whole parts
    of ``part_seconds`` (a shorter last part is dropped, as in 2018). Too little audio for one piece is a
    ``ValueError`` naming both lengths.
    """
    audio = mono_samples(audio)
    length = config.segment_length if config.framing == "consecutive" else config.part_samples
    count, rest = divmod(audio.size, length)
    pieces = [audio[i * length : (i + 1) * length] for i in range(count)]
    if config.framing == "consecutive" and rest > 0 and rest >= config.min_last_fraction * length:
        pieces.append(np.pad(audio[count * length :], (0, length - rest)))
    if not pieces:
        need = length if config.framing == "crop" else int(np.ceil(config.min_last_fraction * length)) or 1
        raise UserError(
            f"{audio.size} samples ({audio.size / config.sample_rate:.2f} s) are too short for one "
            f"{config.framing} piece: need at least {need} samples ({need / config.sample_rate:.2f} s)"
        )
    return np.stack(pieces).astype(np.float32, copy=False)


def pieces_to_magnitude(pieces: np.ndarray | torch.Tensor, config: SpectrogramConfig) -> np.ndarray:
    """Linear magnitudes ``(N, n_bins, n_frames)`` of pieces from :func:`split_audio` (bin dropped, cropped)."""
    x = torch.as_tensor(np.asarray(pieces, dtype=np.float32))
    magnitude = stft(x, config).abs()[..., config.kept_bins, : config.n_frames]
    if magnitude.shape[-1] != config.n_frames:
        raise ValueError(f"pieces of {x.shape[-1]} samples give {magnitude.shape[-1]} frames, need {config.n_frames}")
    return magnitude.numpy().astype(np.float32, copy=False)


def audio_to_magnitude(audio: np.ndarray | torch.Tensor, config: SpectrogramConfig) -> np.ndarray:
    """Linear STFT magnitudes ``(N, n_bins, n_frames)`` float32 of every piece of ``audio``."""
    return pieces_to_magnitude(split_audio(audio, config), config)


def audio_to_frames(audio: np.ndarray | torch.Tensor, config: SpectrogramConfig) -> np.ndarray:
    """Mono audio to pictures: ``(N, n_bins, n_frames)`` float32 in [-1, 1] (book: chapter 1).

    Row 0 is the lowest kept bin; column 0 the first frame. With consecutive framing the N pictures tile the
    recording.
    """
    return normalise(audio_to_magnitude(audio, config), config)


# ---- the normalisation -------------------------------------------------------------------------------------------
def _amin(config: SpectrogramConfig) -> float:
    return 10.0 ** (config.floor_db / 20.0)


def normalise(magnitude: np.ndarray | torch.Tensor, config: SpectrogramConfig) -> np.ndarray:
    """Linear magnitude to [-1, 1]: dB clipped to ``[floor_db, floor_db + range_db]``, mapped linearly.

    (book: chapter 1, "A fixed, invertible normalisation")
    """
    if isinstance(magnitude, torch.Tensor):
        magnitude = magnitude.detach().cpu().numpy()
    magnitude = np.asarray(magnitude, dtype=np.float32)
    if np.any(magnitude < 0) or not np.all(np.isfinite(magnitude)):
        raise ValueError("magnitudes must be finite and non-negative")
    db = 20.0 * np.log10(np.maximum(magnitude, _amin(config)))
    values = 2.0 * (db - config.floor_db) / config.range_db - 1.0
    return np.clip(values, -1.0, 1.0).astype(np.float32)


def denormalise(values: np.ndarray | torch.Tensor, config: SpectrogramConfig) -> np.ndarray:
    """The inverse of :func:`normalise`: [-1, 1] to linear magnitude (values outside are clipped first).

    Exact for every magnitude inside the normalisation's range; magnitudes below the floor come back at the
    floor (``10 ** (floor_db / 20)``), above the ceiling at the ceiling.
    """
    if isinstance(values, torch.Tensor):
        values = values.detach().float().cpu().numpy()
    values = np.asarray(values, dtype=np.float32)
    if not np.all(np.isfinite(values)):
        raise ValueError("spectrogram values must be finite (got NaN or Inf)")
    return (10.0 ** (to_db(values, config) / 20.0)).astype(np.float32)


def to_db(values: np.ndarray, config: SpectrogramConfig) -> np.ndarray:
    """Picture values in [-1, 1] to dB, float64: the first half of :func:`denormalise` (clipped to its range)."""
    return (np.clip(values, -1.0, 1.0).astype(np.float64) + 1.0) * 0.5 * config.range_db + config.floor_db


def restore_bin(magnitude: np.ndarray | torch.Tensor, config: SpectrogramConfig) -> torch.Tensor:
    """Put back the dropped bin (zeros) and the bins above ``n_bins``: ``(..., n_freqs, frames)`` tensor."""
    x = torch.as_tensor(magnitude)
    full = x.new_zeros(*x.shape[:-2], config.n_freqs, x.shape[-1])
    if x.shape[-2] != config.n_bins:
        raise ValueError(f"expected {config.n_bins} frequency rows, got {x.shape[-2]} (shape {tuple(x.shape)})")
    full[..., config.kept_bins, :] = x
    return full
