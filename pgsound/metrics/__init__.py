"""Measuring a GAN without a pretrained network: SWD, MS-SSIM, NDB/K and audio consistency (book: chapter 8).

:func:`evaluate_metrics` is the one entry point that ``pgsound evaluate`` and the training loop call:

- ``swd``: sliced Wasserstein distance on Laplacian pyramids x1000, per level and average (``swd_32``, ...,
  ``swd_avg``), and, given held-out reals, the floor ``swd_avg_real`` (reals against held-out reals at the
  same count), :mod:`pgsound.metrics.swd`;
- ``ms_ssim``: mean MS-SSIM of random pairs of fakes and, beside it, of reals (``ms_ssim_fake``,
  ``ms_ssim_real``), :mod:`pgsound.metrics.ms_ssim`;
- ``ndb``: NDB/K of the fakes and of held-out reals (``ndb_k``, ``ndb_k_real``, ``ndb_bins``),
  :mod:`pgsound.metrics.ndb`;
- ``audio`` (spectrogram data only): consistency through phase reconstruction of fakes and reals
  (``sc_fake_db``, ``sc_real_db``), mean log spectrum distance, spectral centroids, :mod:`pgsound.metrics.audio`;
- ``notes`` (spectrogram data of 16 kHz clips of at least 64 ms; chosen by name, never by default, since it
  decodes every picture to sound): the shipped note classifier's Fréchet and kernel distances and Inception
  Score on the decoded audio (``fid_notes``, ``kid_notes``, ``is_notes``), their floors with held-out reals
  (``fid_notes_real``, ...) and, given the pitches asked for, ``pitch_accuracy``, :mod:`pgsound.metrics.notes`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from pgsound.device import default_device
from pgsound.errors import UserError
from pgsound.metrics.audio import audio_metrics
from pgsound.metrics.ms_ssim import mean_pairwise_ms_ssim
from pgsound.metrics.ndb import NUM_BINS
from pgsound.metrics.ndb import ndb as ndb_k  # not `ndb`: that name is the submodule
from pgsound.metrics.swd import NHOOD_SIZE, sliced_wasserstein_distances

METRICS: tuple[str, ...] = ("swd", "ms_ssim", "ndb", "audio", "notes")
NOTES_DECODE_ITERS = 32  # Griffin-Lim iterations when pictures become sound for the classifier: reals and
# fakes go through the same decoder, and more iterations barely move the classifier's features
NDB_SAMPLES_PER_BIN = 10  # reals per bin, at least, when the number of bins is chosen from the image count


def default_metrics(num_images: int, metadata: dict[str, Any] | None = None) -> list[str]:
    """The metrics that apply: all image metrics (NDB from 100 images), ``audio`` for log-magnitude spectrograms.

    Mel bands and magnitude + instantaneous frequency get the image metrics only: the audio figures read rows
    as linear frequency bins of one magnitude channel (chapter 11 compares them through their sound instead).
    """
    chosen = ["swd", "ms_ssim"]
    if num_images >= 100:
        chosen.append("ndb")
    if metadata and metadata.get("spectrogram") and metadata.get("representation", "magnitude") == "magnitude":
        chosen.append("audio")
    return chosen


def check_metrics_apply(
    metrics: list[str] | tuple[str, ...], channels: int, metadata: dict[str, Any] | None
) -> dict[str, Any]:
    """Refuse, naming the metric and what the data lacks, metrics that cannot measure this data: what a run's
    ``metrics`` setting is checked with before its first step. Returns what the sound metrics decode with:
    ``{"audio": spectrogram settings, "notes": (SpectrogramConfig, representation)}``, for those chosen."""
    unknown = [name for name in metrics if name not in METRICS]
    if unknown:
        raise UserError(f"unknown metric(s) {unknown}; known: {list(METRICS)}")
    settings: dict[str, Any] = {}
    if "audio" in metrics:
        settings["audio"] = _audio_settings(channels, metadata)
    if "notes" in metrics:
        settings["notes"] = _notes_settings(metadata)
    return settings


def _audio_settings(channels: int, metadata: dict[str, Any] | None) -> dict[str, Any]:
    """The spectrogram settings the ``audio`` metrics decode with; an error names what the data lacks."""
    settings = (metadata or {}).get("spectrogram")
    if not settings:
        raise UserError("the 'audio' metrics need spectrogram data (the dataset's metadata has no "
                        "'spectrogram' settings)")
    representation = (metadata or {}).get("representation", "magnitude")
    if representation != "magnitude":
        raise UserError(f"the 'audio' metrics read log-magnitude pictures of linear frequency bins; this data is "
                        f"{representation!r} (pgsound.metrics.audio.audio_distances compares representations "
                        f"through their sound, chapter 11)")
    if channels != 1:
        raise UserError(f"the 'audio' metrics need one-channel spectrograms, got {channels} channels")
    return settings


def notes_apply(metadata: dict[str, Any] | None) -> bool:
    """Whether the ``notes`` metrics can measure this data: spectrograms of 16 kHz clips of 64 ms or more."""
    from pgsound.metrics.audio import as_config
    from pgsound.metrics.notes import MIN_SAMPLES
    from pgsound.note_classifier import SAMPLE_RATE

    settings = (metadata or {}).get("spectrogram")
    if not settings:
        return False
    config = as_config(settings)
    return config.sample_rate == SAMPLE_RATE and config.segment_length >= MIN_SAMPLES


def _notes_settings(metadata: dict[str, Any] | None) -> tuple[Any, str]:
    """The spectrogram settings and representation that the ``notes`` metrics decode with, checked."""
    from pgsound.metrics.audio import as_config
    from pgsound.metrics.notes import MIN_SAMPLES
    from pgsound.note_classifier import SAMPLE_RATE

    settings = (metadata or {}).get("spectrogram")
    if not settings:
        raise UserError("the 'notes' metrics need spectrogram data (the dataset's metadata has no "
                        "'spectrogram' settings)")
    config = as_config(settings)
    if not notes_apply(metadata):
        raise UserError(f"the 'notes' metrics need {SAMPLE_RATE} Hz clips of at least {MIN_SAMPLES} samples "
                        f"(64 ms); this data's pictures are {config.segment_length} samples at "
                        f"{config.sample_rate} Hz")
    return config, (metadata or {}).get("representation", "magnitude")


def _decoded(images: torch.Tensor, config: Any, representation: str, seed: int) -> Any:
    from pgsound.representations import decode

    return decode(images, config, representation, n_iter=NOTES_DECODE_ITERS, seed=seed, cpu_threads=None)


def _as_tensor(images: Any) -> torch.Tensor:
    x = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.asarray(images))
    x = x.detach().float()
    return x[:, None] if x.ndim == 3 else x


def evaluate_metrics(
    reals: Any,
    fakes: Any,
    metrics: list[str] | tuple[str, ...] | None = None,
    seed: int = 0,
    metadata: dict[str, Any] | None = None,
    device: torch.device | str | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    held_out_reals: Any | None = None,
) -> dict[str, float]:
    """Chosen metrics of ``fakes`` against ``reals``: a flat dict of floats (book: chapter 8, Measuring a GAN).

    ``reals`` and ``fakes``: (N, C, H, W) or (N, H, W) in [-1, 1], tensors or arrays; the larger side is cut
    to the smaller's count. ``metrics``: names from :data:`METRICS` (default :func:`default_metrics`).
    ``metadata``: the dataset's metadata; ``audio`` needs its ``"spectrogram"`` settings. ``device``: where the
    work runs (default :func:`pgsound.device.default_device`). ``options``: keyword arguments per metric, e.g.
    ``{"ndb": {"num_bins": 100}, "audio": {"n_items": 64}}``. ``held_out_reals``: other reals of the same shape;
    with at least as many as the compared count, SWD adds its floor ``swd_avg_real`` (reals against them).
    Seeded: the same seed gives the same numbers.
    SWD needs images of at least 7x7; at smaller levels (4x4) it is left out with a warning.
    """

    reals, fakes = _as_tensor(reals), _as_tensor(fakes)
    if tuple(reals.shape[1:]) != tuple(fakes.shape[1:]):
        raise ValueError(f"reals and fakes differ in shape: {tuple(reals.shape[1:])} and {tuple(fakes.shape[1:])}")
    count = min(len(reals), len(fakes))
    if count < 2:
        raise UserError(f"metrics need at least 2 images per side, got {len(reals)} reals and {len(fakes)} fakes")
    reals, fakes = reals[:count], fakes[:count]
    chosen = list(metrics) if metrics else default_metrics(count, metadata)
    decoding = check_metrics_apply(chosen, reals.shape[1], metadata)  # before any metric: none is lost
    options = options or {}
    bins = options.get("ndb", {}).get("num_bins")
    if "ndb" in chosen and bins is not None:
        fit = int(count * (1 - options["ndb"].get("held_out", 0.5)))
        if fit < 2 * bins:
            raise UserError(f"NDB with {bins} bins needs {2 * bins} reals to make the bins, and {count} images "
                            f"per side leave {fit}: lower --ndb-bins or raise --n")
    device = torch.device(device) if device is not None else default_device()
    if device.type == "mps":  # the metrics sum in float64, which Apple's GPU lacks: they run on the CPU there
        device = torch.device("cpu")
    values: dict[str, float] = {}
    for name in chosen:
        kwargs = dict(options.get(name, {}))
        if name == "swd":

            if min(reals.shape[-2:]) < NHOOD_SIZE:
                warnings.warn(f"SWD left out: {reals.shape[-2]}x{reals.shape[-1]} images are smaller than one "
                              f"{NHOOD_SIZE}x{NHOOD_SIZE} neighbourhood", stacklevel=2)
                continue
            others = [fakes]
            if held_out_reals is not None:
                held = _as_tensor(held_out_reals)
                if len(held) < count or tuple(held.shape[1:]) != tuple(reals.shape[1:]):
                    raise ValueError(f"held-out reals for SWD's floor must be at least {count} images of shape "
                                     f"{tuple(reals.shape[1:])}, got {len(held)} of {tuple(held.shape[1:])}")
                others.append(held[:count])
            against_fakes, *floor = sliced_wasserstein_distances(reals, others, seed=seed, device=device, **kwargs)
            values.update(against_fakes)
            if floor:
                values["swd_avg_real"] = floor[0]["swd_avg"]
        elif name == "ms_ssim":

            values["ms_ssim_fake"] = mean_pairwise_ms_ssim(fakes, seed=seed, device=device, **kwargs)
            values["ms_ssim_real"] = mean_pairwise_ms_ssim(reals, seed=seed, device=device, **kwargs)
        elif name == "ndb":

            held_out = kwargs.get("held_out", 0.5)
            kwargs.setdefault("num_bins", min(NUM_BINS, int(count * (1 - held_out)) // NDB_SAMPLES_PER_BIN))
            if kwargs["num_bins"] < 2:
                raise UserError(f"NDB needs at least {int(2 * NDB_SAMPLES_PER_BIN / (1 - held_out))} images per "
                                 f"side for 2 bins of {NDB_SAMPLES_PER_BIN} reals, got {count}")
            values.update(ndb_k(reals, fakes, seed=seed, device=device, **kwargs))
        elif name == "audio":

            values.update(audio_metrics(reals, fakes, decoding["audio"], seed=seed, device=device, **kwargs))
        elif name == "notes":

            from pgsound.metrics.notes import note_metrics

            notes_config, representation = decoding["notes"]
            if tuple(reals.shape[-2:]) != tuple(notes_config.shape):  # a lower level, while growing
                warnings.warn(f"notes left out: {reals.shape[-2]}x{reals.shape[-1]} pictures are a lower level "
                              f"than the data's {notes_config.shape[0]}x{notes_config.shape[1]}, and only whole "
                              f"pictures decode to sound", stacklevel=2)
                continue

            sounds = [_decoded(x, notes_config, representation, seed) for x in (reals, fakes)]
            held = None
            if held_out_reals is not None and len(held_out_reals) >= count:
                held = _decoded(_as_tensor(held_out_reals)[:count], notes_config, representation, seed)
            pitches = kwargs.pop("pitches", None)
            values.update(note_metrics(*sounds, held_out=held, seed=seed, device=device,
                                       pitches=None if pitches is None else np.asarray(pitches)[:count], **kwargs))
    return values
