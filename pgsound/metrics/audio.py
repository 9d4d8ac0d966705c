"""Audio figures for spectrogram GANs: consistency, mean log spectrum, spectral centroids (book: chapter 8).

A generated spectrogram is only a magnitude. Four questions an image metric does not ask:

- **Consistency**: is it the magnitude of *some* sound? Phase reconstruction (fast Griffin-Lim from PGHI, the
  book's sound path) finds the closest sound; the spectral convergence between the picture and that sound's
  STFT magnitude says how far the picture is from any real STFT. Real spectrograms are not perfect either
  (the normalisation clips, a bin is dropped, the iterations stop), so the same figure on reals is the floor.
- **Mean log spectrum**: the average level of every frequency row in dB, over all frames and pictures; the
  root-mean-square difference between the real and generated curves shows a missing or excess band (too much
  hiss, no bass) that per-patch metrics normalise away.
- **Spectral centroid**: the magnitude-weighted mean frequency of each frame (librosa's definition), a single
  number for "brightness"; the distribution over all sounding frames (within 40 dB of their picture's loudest)
  is compared by the Wasserstein-1 distance in Hz.
- **Notes** (chapter 9): does a sample draw notes rather than a smear of energy? The strongest onset (the
  largest rise of the level from one frame to the next, averaged over rows) asks for sharp attacks; the partial
  contrast (how far single rows stand out of the smoothed spectrum) asks for separate partial lines.

Pictures at a lower level of the network (fewer rows and columns) are read as they are for the spectrum and the
centroids (a row is the average of ``n_bins / rows`` frequency bins) and scaled up to full size (nearest, as
the networks upsample) for phase reconstruction, as :func:`pgsound.samples.spectrograms_to_audio` does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.ndimage import uniform_filter1d

from pgsound.audio_stats import ACTIVE_WITHIN_DB, active_frames
from pgsound.metrics.swd import sliced_wasserstein_distance
from pgsound.phase_retrieval import frames_to_audio, spectral_convergence_db
from pgsound.representations import encode
from pgsound.spectrogram import SpectrogramConfig, denormalise, to_db

N_ITEMS = 32
N_ITER = 64
PARTIAL_WINDOW_ROWS = 9  # rows of the moving average that partial_contrasts subtracts


def as_config(settings: SpectrogramConfig | dict[str, Any]) -> SpectrogramConfig:
    return settings if isinstance(settings, SpectrogramConfig) else SpectrogramConfig.from_dict(settings)


def _pictures(images: Any, name: str) -> np.ndarray:
    """(N, rows, columns) float32 from (N, 1, H, W) or (N, H, W), tensor or array."""
    x = images.detach().float().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images, np.float32)
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3:
        raise ValueError(f"{name}: expected spectrograms of shape (N, 1, H, W) or (N, H, W), got {x.shape}")
    return x


def row_frequencies(rows: int, config: SpectrogramConfig) -> np.ndarray:
    """Centre frequency in Hz of each row of a picture with ``rows`` rows (row 0 lowest).

    At full size a row is one STFT bin; at a lower level it averages ``n_bins / rows`` neighbouring bins.
    """
    if config.n_bins % rows:
        raise ValueError(f"a picture with {rows} rows is not a level of {config.n_bins}-bin spectrograms")
    bins = np.arange(config.kept_bins.start, config.kept_bins.stop) * config.sample_rate / config.n_fft
    return bins.reshape(rows, -1).mean(axis=1)


def mean_log_spectrum(images: Any, config: SpectrogramConfig | dict[str, Any]) -> np.ndarray:
    """The mean level in dB of every row over all frames and pictures: (rows,) (book: chapter 8)."""
    config = as_config(config)
    return to_db(_pictures(images, "mean_log_spectrum"), config).mean(axis=(0, 2))


def spectral_centroids(
    images: Any, config: SpectrogramConfig | dict[str, Any], active_within_db: float | None = ACTIVE_WITHIN_DB
) -> np.ndarray:
    """The spectral centroid in Hz of every sounding frame of every picture, flattened: (frames kept,).

    ``sum_f f |S(f, t)| / sum_f |S(f, t)|`` on linear magnitudes, as ``librosa.feature.spectral_centroid``.
    Only frames whose power above the normalisation floor is within ``active_within_db`` dB of their picture's
    loudest frame's count (:func:`pgsound.audio_stats.active_frames`, the rule of chapter 1's statistics): a
    silent frame's centroid is mid-band and says nothing about brightness. ``None`` keeps every frame
    (book: chapter 8, Measuring a GAN).
    """
    centroids, sounding = _frame_centroids(images, config, active_within_db, "spectral_centroids")
    return centroids[sounding]


def picture_centroids(
    images: Any, config: SpectrogramConfig | dict[str, Any], active_within_db: float | None = ACTIVE_WITHIN_DB
) -> np.ndarray:
    """The mean spectral centroid in Hz of each picture's sounding frames: (N,) (book: chapter 11)."""
    centroids, sounding = _frame_centroids(images, config, active_within_db, "picture_centroids")
    return (centroids * sounding).sum(axis=1) / sounding.sum(axis=1)


def _frame_centroids(
    images: Any, config: SpectrogramConfig | dict[str, Any], active_within_db: float | None, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Centroid of every frame (N, columns) and which frames count (every one when ``active_within_db`` is None)."""
    config = as_config(config)
    x = _pictures(images, what)
    db = to_db(x, config)
    magnitude = 10.0 ** (db / 20.0)
    freqs = row_frequencies(x.shape[1], config)
    centroids = np.einsum("f,nft->nt", freqs, magnitude) / magnitude.sum(axis=1)
    if active_within_db is None:
        return centroids, np.ones(centroids.shape, bool)
    # Power above the floor: a frame at the floor has none, however many rows add up its floor power.
    above_floor = 10.0 ** (db / 10.0) - 10.0 ** (config.floor_db / 10.0)
    return centroids, active_frames(above_floor, active_within_db)


def peak_frequencies(images: Any, config: SpectrogramConfig | dict[str, Any]) -> np.ndarray:
    """The frequency in Hz of the loudest row of each picture, averaged over its frames: (N,).

    Rows are compared by their mean *linear* magnitude, so a loud partial that rings for a while wins over a
    short burst. For a piano note this is one of its lowest partials, so it follows the pitch (book: chapter 11,
    "(b) Does the label set the pitch?").
    """
    config = as_config(config)
    x = _pictures(images, "peak_frequencies")
    mean_magnitude = (10.0 ** (to_db(x, config) / 20.0)).mean(axis=2)
    return row_frequencies(x.shape[1], config)[mean_magnitude.argmax(axis=1)]


def onset_strengths(images: Any, config: SpectrogramConfig | dict[str, Any]) -> np.ndarray:
    """The strongest onset of each picture in dB: (N,) (book: chapter 9, Does it draw notes?).

    The spectral flux of a frame is how much the level rises from the frame before, averaged over all rows, with
    falls counted as zero; a picture's onset strength is its largest flux. A struck piano note raises its
    partials within a frame, so a real picture with a note starting in it scores the rise of the rows the attack
    lifts, averaged over all the rows; a generator that smears its attacks over several frames draws the same
    note with a fraction of that.
    """
    config = as_config(config)
    db = to_db(_pictures(images, "onset_strengths"), config)
    if db.shape[2] < 2:
        raise ValueError(f"onset_strengths needs pictures of at least 2 frames, got {db.shape[2]}")
    flux = np.clip(np.diff(db, axis=2), 0.0, None).mean(axis=1)  # (N, frames - 1)
    return flux.max(axis=1)


def partial_contrasts(
    images: Any,
    config: SpectrogramConfig | dict[str, Any],
    window_rows: int = PARTIAL_WINDOW_ROWS,
    active_within_db: float = ACTIVE_WITHIN_DB,
) -> np.ndarray:
    """How far the partials stand out of the spectrum, in dB, per picture: (N,) (book: chapter 9, Does it draw notes?).

    In each frame the level in dB minus its moving average over ``window_rows`` rows keeps the narrow peaks and
    dips (a harmonic partial is one or two rows wide) and removes the broad spectral slope; its standard deviation
    over the rows is the frame's contrast, averaged over the picture's sounding frames (the rule of
    :func:`spectral_centroids`). Separate partial lines give several dB; a smooth smear of energy gives little.
    """
    config = as_config(config)
    if window_rows < 3 or window_rows % 2 == 0:
        raise ValueError(f"window_rows must be an odd number of at least 3, got {window_rows}")
    db = to_db(_pictures(images, "partial_contrasts"), config)
    if db.shape[1] < window_rows:
        raise ValueError(f"partial_contrasts needs pictures of at least window_rows={window_rows} rows, got "
                         f"{db.shape[1]}")
    # "nearest" edges: the window at the lowest and highest rows repeats the edge row instead of reflecting.
    detail = db - uniform_filter1d(db, window_rows, axis=1, mode="nearest")
    contrast = detail.std(axis=1)  # (N, frames)
    sounding = active_frames(10.0 ** (db / 10.0) - 10.0 ** (config.floor_db / 10.0), active_within_db)
    return (contrast * sounding).sum(axis=1) / sounding.sum(axis=1)


def wasserstein_1d(a: np.ndarray, b: np.ndarray) -> float:
    """Wasserstein-1 distance between two empirical distributions on the line: the area between their CDFs."""
    a, b = np.sort(np.asarray(a, np.float64).ravel()), np.sort(np.asarray(b, np.float64).ravel())
    if len(a) == 0 or len(b) == 0:
        raise ValueError("the Wasserstein distance needs at least one value on each side")
    points = np.concatenate([a, b])
    points.sort()
    widths = np.diff(points)
    cdf_a = np.searchsorted(a, points[:-1], side="right") / len(a)
    cdf_b = np.searchsorted(b, points[:-1], side="right") / len(b)
    return float(np.sum(np.abs(cdf_a - cdf_b) * widths))


def consistency_db(
    images: Any,
    config: SpectrogramConfig | dict[str, Any],
    n_iter: int = N_ITER,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """Spectral convergence (dB, lower is better) of each picture against the sound phase reconstruction makes.

    Pictures at a lower level are scaled up to full size first. The phase comes from
    :func:`pgsound.phase_retrieval.frames_to_audio` (PGHI, then ``n_iter`` fast Griffin-Lim iterations); the figure
    from :func:`pgsound.phase_retrieval.spectral_convergence_db` on the kept bins (book: chapter 8, Measuring a GAN).
    Griffin-Lim runs with the process's torch threads, as the other metrics do.
    """

    config = as_config(config)
    x = torch.from_numpy(_pictures(images, "consistency_db"))
    if tuple(x.shape[1:]) != config.shape:
        x = torch.nn.functional.interpolate(x[:, None], size=config.shape, mode="nearest")[:, 0]
    frames = x.clamp(-1, 1).numpy()
    audio = frames_to_audio(frames, config, n_iter=n_iter, seed=seed, device=device, cpu_threads=None)
    return np.atleast_1d(spectral_convergence_db(denormalise(frames, config), audio, config))


def audio_metrics(
    reals: Any,
    fakes: Any,
    settings: SpectrogramConfig | dict[str, Any],
    *,
    n_items: int = N_ITEMS,
    n_iter: int = N_ITER,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """The audio figures of generated against real spectrograms (book: chapter 8, Measuring a GAN).

    ``sc_fake_db`` / ``sc_real_db``: mean spectral convergence through phase reconstruction of the first
    ``n_items`` pictures of each side (``n_items=0`` skips this, the only slow part); ``log_spectrum_rms_db``:
    RMS difference of the mean log spectra; ``centroid_w1_hz``: Wasserstein-1 distance between the per-frame
    spectral centroid distributions, with ``centroid_real_hz`` / ``centroid_fake_hz`` their means;
    ``onset_real_db`` / ``onset_fake_db``: median :func:`onset_strengths`; ``partial_contrast_real_db`` /
    ``partial_contrast_fake_db``: median :func:`partial_contrasts` (pictures of at least 9 rows). The last two
    pairs ask whether the samples draw notes: sharp attacks and separate partial lines (chapter 9).
    """
    config = as_config(settings)
    real_pictures, fake_pictures = _pictures(reals, "reals"), _pictures(fakes, "fakes")
    if real_pictures.shape[1:] != fake_pictures.shape[1:]:
        raise ValueError(f"audio metrics need reals and fakes of one shape, got {real_pictures.shape[1:]} and "
                         f"{fake_pictures.shape[1:]}")
    spectrum_gap = mean_log_spectrum(real_pictures, config) - mean_log_spectrum(fake_pictures, config)
    real_centroids = spectral_centroids(real_pictures, config)
    fake_centroids = spectral_centroids(fake_pictures, config)
    values = {
        "log_spectrum_rms_db": float(np.sqrt(np.mean(spectrum_gap**2))),
        "centroid_w1_hz": wasserstein_1d(real_centroids, fake_centroids),
        "centroid_real_hz": float(real_centroids.mean()),
        "centroid_fake_hz": float(fake_centroids.mean()),
        "onset_real_db": float(np.median(onset_strengths(real_pictures, config))),
        "onset_fake_db": float(np.median(onset_strengths(fake_pictures, config))),
    }
    if real_pictures.shape[1] >= PARTIAL_WINDOW_ROWS:  # lower levels have too few rows to hold a partial line
        values["partial_contrast_real_db"] = float(np.median(partial_contrasts(real_pictures, config)))
        values["partial_contrast_fake_db"] = float(np.median(partial_contrasts(fake_pictures, config)))
    if n_items > 0:
        values["sc_real_db"] = float(consistency_db(real_pictures[:n_items], config, n_iter, seed, device).mean())
        values["sc_fake_db"] = float(consistency_db(fake_pictures[:n_items], config, n_iter, seed, device).mean())
    return values


# ---- comparing representations through their sound (book: chapter 11) --------------------------------------------
def common_spectrograms(audio: Any, settings: SpectrogramConfig | dict[str, Any]) -> np.ndarray:
    """Clips ``(N, samples)`` to normalised log-magnitude pictures ``(N, 1, n_bins, n_frames)`` of one geometry.

    Each clip is cut to its first ``segment_length`` samples of ``settings`` (a clip that is shorter is an
    error), then goes through the sound path's magnitude picture. Audio decoded from pictures of any
    representation (linear bins, mel bands, magnitude with instantaneous frequency, any picture shape) lands in
    the same pictures, so that image metrics compare the *sounds* (book: chapter 11, Beyond the paper).
    """

    config = as_config(settings)
    clips = audio.detach().float().cpu().numpy() if isinstance(audio, torch.Tensor) else np.asarray(audio, np.float32)
    if clips.ndim != 2:
        raise ValueError(f"expected clips of shape (N, samples), got {clips.shape}")
    if clips.shape[1] < config.segment_length:
        raise ValueError(f"clips of {clips.shape[1]} samples are shorter than the {config.segment_length} that "
                         f"{config.n_frames} frames of hop {config.hop_length} cover; use fewer frames")
    return encode(clips[:, : config.segment_length], config, "magnitude")


def audio_distances(
    real_audio: Any,
    fake_audio: Any,
    settings: SpectrogramConfig | dict[str, Any],
    seed: int = 0,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """How far generated clips are from real ones, measured on :func:`common_spectrograms` of both.

    ``swd_*`` and ``swd_avg``: the sliced Wasserstein distance x1000 (:mod:`pgsound.metrics.swd`);
    ``log_spectrum_rms_db``, ``centroid_w1_hz``, ``centroid_real_hz``, ``centroid_fake_hz``: as
    :func:`audio_metrics` (without its phase-reconstruction part: the clips are sound already). The larger side
    is cut to the smaller's count. (book: chapter 11, Beyond the paper)
    """

    reals, fakes = common_spectrograms(real_audio, settings), common_spectrograms(fake_audio, settings)
    count = min(len(reals), len(fakes))
    if count < 2:
        raise ValueError(f"need at least 2 clips per side, got {len(reals)} real and {len(fakes)} generated")
    reals, fakes = torch.from_numpy(reals[:count]), torch.from_numpy(fakes[:count])
    values = sliced_wasserstein_distance(reals, fakes, seed=seed, device=device)
    values.update(audio_metrics(reals, fakes, settings, n_items=0))
    return values
