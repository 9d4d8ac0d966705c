"""Spectral statistics of a set of clips, to compare the synthetic piano with recordings (book: chapter 1).

:func:`spectral_statistics` summarises STFT magnitudes ``(N, bins, frames)`` (linear, from
:func:`pgsound.spectrogram.pieces_to_magnitude`) by what an ear and an eye notice first:

- the **mean log spectrum** (power averaged over every frame, in dB relative to its maximum) and the energy of
  four bands relative to 250-1000 Hz;
- the **spectral centroid** of every active frame (within 40 dB of its clip's loudest frame): median and
  quartiles;
- the **decay** in three bands: the median slope (dB/s) of the band energy over 0.25 s windows that only fall;
- the **level**: percentiles of the magnitudes in dB and the share of pixels below the normalisation floor.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pgsound.spectrogram import SpectrogramConfig

BANDS_HZ: dict[str, tuple[float, float]] = {
    "0-250": (0, 250),
    "250-1000": (250, 1000),
    "1000-4000": (1000, 4000),
    "4000-8000": (4000, 8000),
}
DECAY_BANDS_HZ: dict[str, tuple[float, float]] = {"low": (0, 500), "mid": (500, 2000), "high": (2000, 8000)}


def band_decay_db_per_s(band_db: np.ndarray, frame_rate: float, window_s: float = 0.25) -> np.ndarray:
    """Slopes (dB/s) of a band's level over windows that only fall (each 1/5 window no more than 1 dB up).

    ``band_db`` is ``(N, frames)``; windows quieter than 50 dB below their clip's peak are ignored.
    """
    width = max(5, int(round(window_s * frame_rate)))
    x = np.arange(width) / frame_rate
    x = x - x.mean()
    slopes = []
    for clip in np.atleast_2d(band_db):
        for start in range(0, clip.size - width, max(1, width // 4)):
            segment = clip[start : start + width]
            if segment.max() < clip.max() - 50:
                continue
            if np.all(np.diff(segment[:: max(1, width // 6)]) < 1.0):
                slopes.append(float((x * (segment - segment.mean())).sum() / (x**2).sum()))
    return np.asarray(slopes)


ACTIVE_WITHIN_DB = 40.0


def active_frames(power: np.ndarray, within_db: float = ACTIVE_WITHIN_DB) -> np.ndarray:
    """Which frames sound: energy within ``within_db`` dB of the loudest frame of the same clip, (N, frames).

    ``power`` is ``(N, bins, frames)``. A silent frame has a flat floor spectrum whose centroid sits mid-band;
    counting it would mix silence into "brightness". A clip's loudest frame always counts, so a clip that is
    silent throughout keeps all its frames and a generator that draws silence still shows up (book: chapters 1
    and 8). For pictures, pass the power above the normalisation floor: a floor frame summed over 512 bins
    is only some 30 dB below a quiet note's frame, so raw power would keep it.
    """
    energy = np.asarray(power).sum(axis=1)
    loudest = energy.max(axis=1, keepdims=True)
    return (energy > loudest * 10.0 ** (-within_db / 10.0)) | (energy == loudest)


def spectral_statistics(magnitude: np.ndarray, config: SpectrogramConfig) -> dict[str, Any]:
    """The statistics listed in the module docstring, as a dict of floats and arrays (book: chapter 1)."""
    mags = np.asarray(magnitude, dtype=np.float64)
    if mags.ndim != 3 or mags.shape[1] != config.n_bins:
        raise ValueError(f"expected magnitudes (N, {config.n_bins}, frames), got {mags.shape}")
    start = config.kept_bins.start
    freqs = (np.arange(config.n_bins) + start) * config.sample_rate / config.n_fft
    power = mags**2
    mean_power = power.mean(axis=(0, 2))
    mean_db = 10 * np.log10(mean_power / mean_power.max() + 1e-20)
    bands = {name: float(power[:, (freqs >= lo) & (freqs < hi)].mean()) for name, (lo, hi) in BANDS_HZ.items()}
    reference = bands["250-1000"]
    band_db = {name: float(10 * np.log10(value / reference + 1e-20)) for name, value in bands.items()}
    energy = power.sum(axis=1)
    centroid = ((power * freqs[None, :, None]).sum(axis=1) / np.maximum(energy, 1e-30))[active_frames(power)]
    frame_rate = config.sample_rate / config.hop_length
    decay = {}
    for name, (lo, hi) in DECAY_BANDS_HZ.items():
        level = 10 * np.log10(power[:, (freqs >= lo) & (freqs < hi)].sum(axis=1) + 1e-20)
        slopes = band_decay_db_per_s(level, frame_rate)
        decay[name] = float(np.median(slopes)) if slopes.size else float("nan")
    db = 20 * np.log10(np.maximum(mags, 1e-5))
    return {
        "pictures": int(mags.shape[0]),
        "frequencies_hz": freqs,
        "mean_log_spectrum_db": mean_db,
        "band_db": band_db,
        "centroid_hz": centroid,
        "centroid_median_hz": float(np.median(centroid)),
        "centroid_quartiles_hz": (float(np.percentile(centroid, 25)), float(np.percentile(centroid, 75))),
        "decay_db_per_s": decay,
        "level_percentiles_db": {p: float(np.percentile(db, p)) for p in (1, 50, 99)},
        "level_max_db": float(db.max()),
        "below_floor": float((db < config.floor_db).mean()),
    }


def compare_spectra(a: dict[str, Any], b: dict[str, Any], low_hz: float = 50.0, high_hz: float = 7000.0) -> dict:
    """Correlation and RMS difference (dB) of two mean log spectra between ``low_hz`` and ``high_hz``."""
    freqs = a["frequencies_hz"]
    keep = (freqs >= low_hz) & (freqs <= high_hz)
    x, y = a["mean_log_spectrum_db"][keep], b["mean_log_spectrum_db"][keep]
    return {"correlation": float(np.corrcoef(x, y)[0, 1]), "rms_difference_db": float(np.sqrt(np.mean((x - y) ** 2)))}
