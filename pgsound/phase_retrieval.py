"""Getting the phase back: fast Griffin-Lim in torch, PGHI, spectral convergence (book: chapter 2).

A spectrogram picture keeps only magnitudes. :func:`griffin_lim` finds a signal whose STFT magnitude matches
them by alternating projections (Griffin & Lim 1984), with the momentum of fast Griffin-Lim (Perraudin, Balazs
& Sondergaard 2013; ``momentum=0`` is the plain algorithm), batched, on CPU or GPU. :func:`pghi` estimates the
phase in one pass from the magnitude's gradients (phase-gradient heap integration, Prusa, Balazs & Sondergaard
2017) and is the best known start for Griffin-Lim. :func:`spectral_convergence_db` measures the result.
"""

from __future__ import annotations

import functools
import heapq
import math
from collections.abc import Callable

import numpy as np
import torch

from pgsound.device import default_device
from pgsound.spectrogram import SpectrogramConfig, denormalise, istft, restore_bin, stft

INITS: tuple[str, ...] = ("random", "zeros", "pghi")
# lambda / win_length**2 of the Gaussian that best matches each window (Prusa et al. 2017, table 1).
GAUSSIAN_LAMBDA: dict[str, float] = {"hann": 0.25645, "hamming": 0.29794, "blackman": 0.17954}


def _as_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def _check_magnitude(magnitude: torch.Tensor, config: SpectrogramConfig) -> None:
    if magnitude.ndim != 3 or magnitude.shape[1] != config.n_freqs:
        raise ValueError(
            f"expected magnitudes of shape (N, {config.n_freqs}, frames) (all n_fft // 2 + 1 bins; "
            f"spectrogram.restore_bin puts back a dropped one), got {tuple(magnitude.shape)}"
        )
    if magnitude.is_complex() or not torch.isfinite(magnitude).all() or (magnitude < 0).any():
        raise ValueError("magnitudes must be real, finite and non-negative")


def spectral_convergence_db(
    target: np.ndarray | torch.Tensor,
    estimate: np.ndarray | torch.Tensor,
    config: SpectrogramConfig | None = None,
) -> np.ndarray | float:
    """Spectral convergence ``20 log10(|| |S| - |X| ||_F / || |S| ||_F)`` in dB; lower is better (book: chapter 2).

    ``target`` is a magnitude ``(F, T)`` or ``(N, F, T)``. ``estimate`` is a magnitude of the same shape, or,
    when ``config`` is given, audio ``(samples,)`` / ``(N, samples)`` whose STFT magnitude is compared (cropped
    to the target's bins: all ``n_freqs`` or the ``n_bins`` a picture keeps, and to its frames). Returns one
    value per item (a float for a single item).
    """
    s = _as_tensor(target).detach().to("cpu", torch.float64)
    x = _as_tensor(estimate).detach().to("cpu")
    single = s.ndim == 2
    if single:
        s, x = s[None], x[None]
    if config is not None:
        spec = stft(x.to(torch.float64), config).abs()
        rows = slice(None) if s.shape[-2] == config.n_freqs else config.kept_bins
        x = spec[..., rows, : s.shape[-1]]
    x = x.to(torch.float64)
    if x.shape != s.shape:
        raise ValueError(f"target shape {tuple(s.shape)} and estimate shape {tuple(x.shape)} differ")
    reference = torch.linalg.vector_norm(s, dim=(-2, -1))
    if (reference == 0).any():
        raise ValueError("spectral convergence is undefined for an all-zero target magnitude")
    ratio = torch.linalg.vector_norm(s - x, dim=(-2, -1)) / reference
    values = 20.0 * torch.log10(ratio.clamp_min(1e-12))
    return float(values[0]) if single else values.numpy()


# ---- PGHI --------------------------------------------------------------------------------------------------------
def _phase_increments(log_s: np.ndarray, config: SpectrogramConfig) -> tuple[np.ndarray, np.ndarray]:
    """Phase steps from one frame to the next (time) and one bin to the next (frequency), from log |S|.

    For a Gaussian window exp(-pi t^2 / lam) the phase of the centred STFT satisfies
    d(phase)/dt = 2 pi w + (1/lam) d(log s)/dw and d(phase)/dw = -lam d(log s)/dt (t in samples, w in cycles
    per sample); other windows use the Gaussian closest to them.
    """
    a, m = config.hop_length, config.n_fft
    lam = GAUSSIAN_LAMBDA[config.window] * (config.win_length or config.n_fft) ** 2
    d_bin = np.gradient(log_s, axis=0)  # per bin
    d_frame = np.gradient(log_s, axis=1) if log_s.shape[1] > 1 else np.zeros_like(log_s)  # per frame
    bins = np.arange(log_s.shape[0], dtype=np.float64)[:, None]
    time_step = 2.0 * np.pi * a * bins / m + (a * m / lam) * d_bin
    freq_step = -(lam / (a * m)) * d_frame
    return time_step, freq_step


def _integrate_flat(values: np.ndarray, time_step: np.ndarray, freq_step: np.ndarray, done: np.ndarray,
                    starts: np.ndarray, n_frames: int) -> np.ndarray:
    """The heap integration over flat indices (row-major bins x frames); compiled by :func:`_heap_integrate`.

    ``done`` marks the coefficients already reached (the left-out ones from the start); ``starts`` lists the
    kept ones loudest first: when a heap runs dry, the loudest not yet reached starts the next.
    """
    phase = np.zeros(values.size)
    last_frame = n_frames - 1
    size = values.size
    for start in starts:
        if done[start]:
            continue
        done[start] = True
        heap = [(-values[start], start)]
        while heap:
            i = heapq.heappop(heap)[1]
            frame = i % n_frames
            p = phase[i]
            j = i + 1
            if frame < last_frame and not done[j]:
                phase[j] = p + 0.5 * (time_step[i] + time_step[j])
                done[j] = True
                heapq.heappush(heap, (-values[j], j))
            j = i - 1
            if frame > 0 and not done[j]:
                phase[j] = p - 0.5 * (time_step[i] + time_step[j])
                done[j] = True
                heapq.heappush(heap, (-values[j], j))
            j = i + n_frames
            if j < size and not done[j]:
                phase[j] = p + 0.5 * (freq_step[i] + freq_step[j])
                done[j] = True
                heapq.heappush(heap, (-values[j], j))
            j = i - n_frames
            if j >= 0 and not done[j]:
                phase[j] = p - 0.5 * (freq_step[i] + freq_step[j])
                done[j] = True
                heapq.heappush(heap, (-values[j], j))
    return phase


@functools.cache
def _compiled_integrate() -> Callable[..., np.ndarray]:
    """:func:`_integrate_flat` compiled to machine code by numba (librosa's dependency), once per process and
    cached on disk: one heap step per coefficient is too slow in the interpreter for 512x512 pictures."""
    import numba

    try:
        return numba.njit(cache=True, nogil=True)(_integrate_flat)
    except RuntimeError:  # no writable place for numba's cache (a read-only install): compile each process
        return numba.njit(nogil=True)(_integrate_flat)


def _heap_integrate(log_s: np.ndarray, time_step: np.ndarray, freq_step: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Integrate the phase steps from the largest coefficient outwards (a max-heap on log |S|).

    Each coefficient gets its phase from the neighbour it was reached from, by the trapezoidal rule; the
    strongest coefficients go first, so that phase flows along ridges, not across the noise between them.
    Coefficients outside ``keep`` stay 0 (the caller gives them random phase).
    """
    n_bins, n_frames = log_s.shape
    flat_log = np.ascontiguousarray(log_s, dtype=np.float64).ravel()
    starts = np.flatnonzero(keep.ravel())
    starts = starts[np.argsort(-flat_log[starts], kind="stable")].astype(np.int64)
    phase = _compiled_integrate()(
        flat_log,
        np.ascontiguousarray(time_step, dtype=np.float64).ravel(),
        np.ascontiguousarray(freq_step, dtype=np.float64).ravel(),
        ~keep.ravel(),
        starts,
        n_frames,
    )
    return phase.reshape(n_bins, n_frames)


def pghi(
    magnitude: np.ndarray | torch.Tensor, config: SpectrogramConfig, tol_db: float = 70.0, seed: int = 0
) -> np.ndarray:
    """Phase from magnitude alone by phase-gradient heap integration (book: chapter 2, "PGHI").

    ``magnitude`` is ``(n_freqs, frames)`` or ``(N, n_freqs, frames)`` (all bins). Coefficients more than
    ``tol_db`` below the item's largest get a random phase (seeded). Returns phases in radians, float32, in
    the convention of :func:`pgsound.spectrogram.stft` (frames centred, phase referred to the frame start).
    """
    mag = _as_tensor(magnitude).detach().to("cpu", torch.float64)
    single = mag.ndim == 2
    mag = mag[None] if single else mag
    _check_magnitude(mag, config)
    if tol_db <= 0:
        raise ValueError(f"tol_db must be positive, got {tol_db}")
    rng = np.random.default_rng(seed)
    bins = np.arange(config.n_freqs, dtype=np.float64)[:, None]
    phases = []
    for item in mag.numpy():
        peak = item.max()
        log_s = np.log(np.maximum(item, max(peak, 1e-30) * 1e-12))
        keep = item > peak * 10.0 ** (-tol_db / 20.0) if peak > 0 else np.zeros(item.shape, bool)
        time_step, freq_step = _phase_increments(log_s, config)
        phase = _heap_integrate(log_s, time_step, freq_step, keep)
        # The STFT refers the phase to the frame's first sample, half a window before its centre: (-1)^k.
        phase = phase + np.pi * bins
        phase = np.where(keep, phase, rng.uniform(0.0, 2.0 * np.pi, size=item.shape))
        phases.append(np.mod(phase, 2.0 * np.pi).astype(np.float32))
    out = np.stack(phases)
    return out[0] if single else out


# ---- Griffin-Lim -------------------------------------------------------------------------------------------------
def _initial_phase(
    magnitude: torch.Tensor, config: SpectrogramConfig, init: str | np.ndarray | torch.Tensor, seed: int
) -> torch.Tensor:
    """Unit phasors ``(N, F, T)`` complex64 on the CPU; random phases come from a CPU generator so that CPU and
    GPU start from the same numbers."""
    if isinstance(init, str):
        if init == "random":
            generator = torch.Generator().manual_seed(seed)
            phase = 2.0 * math.pi * torch.rand(magnitude.shape, generator=generator, dtype=torch.float64)
        elif init == "zeros":
            phase = torch.zeros(magnitude.shape, dtype=torch.float64)
        elif init == "pghi":
            phase = torch.as_tensor(pghi(magnitude, config, seed=seed), dtype=torch.float64)
        else:
            raise ValueError(f"init must be one of {INITS} or an array of phases, got {init!r}")
    else:
        phase = _as_tensor(init).detach().to("cpu")
        if phase.is_complex():
            phase = torch.angle(phase)
        phase = phase.to(torch.float64)
        if phase.ndim == magnitude.ndim - 1:  # one item's phases for a single magnitude
            phase = phase[None]
        if phase.shape != magnitude.shape:
            raise ValueError(f"init phases have shape {tuple(phase.shape)}, magnitudes {tuple(magnitude.shape)}")
    return torch.polar(torch.ones_like(phase), phase).to(torch.complex64)


def griffin_lim(
    magnitude: np.ndarray | torch.Tensor,
    config: SpectrogramConfig,
    n_iter: int = 1000,
    momentum: float = 0.99,
    init: str | np.ndarray | torch.Tensor = "random",
    seed: int = 0,
    device: torch.device | str | None = None,
    batch_size: int | None = 16,
    length: int | None = None,
    return_history: bool = False,
    cpu_threads: int | None = 1,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Fast Griffin-Lim: audio whose STFT magnitude approaches ``magnitude`` (book: chapter 2).

    ``magnitude`` is ``(n_freqs, frames)`` or ``(N, n_freqs, frames)`` (all bins; use
    :func:`pgsound.spectrogram.restore_bin` for pictures). Each iteration inverts the current complex estimate,
    transforms the signal again and keeps its phase, extrapolated by ``momentum`` as ``librosa.griffinlim``
    does (``momentum=0.99`` is fast Griffin-Lim, ``0`` the original). ``init`` is ``"random"`` (seeded by
    ``seed``, the same numbers on every device), ``"zeros"``, ``"pghi"`` or an array of phases. Runs on
    ``device`` (default :func:`pgsound.device.default_device`), ``batch_size`` items at a time (``None``: all).
    On the CPU it uses ``cpu_threads`` torch threads (``None``: torch's setting). One, the default, is for
    listening beside other work: on a busy machine two threads made each iteration 20-90x slower than one (they
    wait for each other), while on an idle one two threads take 512x512 batches 1.7x faster, to the bit the same
    audio; the metrics, which run with the process's threads throughout, pass ``None``.

    Returns audio ``(samples,)`` / ``(N, samples)`` float32 (``length`` samples if given) and, with
    ``return_history=True``, also the spectral convergence in dB after 0, 1, ..., ``n_iter`` iterations,
    ``(n_iter + 1,)`` / ``(N, n_iter + 1)``.
    """

    if isinstance(n_iter, bool) or not isinstance(n_iter, (int, np.integer)) or n_iter < 0:
        raise ValueError(f"n_iter must be a non-negative integer, got {n_iter!r}")
    if not 0.0 <= momentum < 1.0 + 1e-9:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    mag = _as_tensor(magnitude).detach().to("cpu", torch.float32)
    single = mag.ndim == 2
    mag = mag[None] if single else mag
    _check_magnitude(mag, config)
    device = torch.device(device) if device is not None else default_device()
    phasors = _initial_phase(mag, config, init, seed)
    step = len(mag) if not batch_size else int(batch_size)
    if step < 1:
        raise ValueError(f"batch_size must be positive or None, got {batch_size}")
    audio_parts, history_parts = [], []
    threads = torch.get_num_threads()
    if device.type == "cpu" and cpu_threads is not None:
        torch.set_num_threads(int(cpu_threads))
    try:
        for start in range(0, len(mag), step):
            audio, history = _fgla(
                mag[start : start + step].to(device),
                phasors[start : start + step].to(device),
                config,
                n_iter,
                momentum,
                length,
                return_history,
            )
            audio_parts.append(audio.cpu())
            history_parts.append(history)
    finally:
        torch.set_num_threads(threads)
    audio = torch.cat(audio_parts).numpy().astype(np.float32, copy=False)
    audio = audio[0] if single else audio
    if not return_history:
        return audio
    history = np.concatenate(history_parts, axis=0)
    return audio, (history[0] if single else history)


def _convergence_db(target: torch.Tensor, rebuilt: torch.Tensor, target_norm: torch.Tensor) -> torch.Tensor:
    error = torch.linalg.vector_norm(rebuilt.abs() - target, dim=(-2, -1))
    return 20.0 * torch.log10((error / target_norm).clamp_min(1e-12))


@torch.no_grad()
def _fgla(
    target: torch.Tensor,
    phasors: torch.Tensor,
    config: SpectrogramConfig,
    n_iter: int,
    momentum: float,
    length: int | None,
    with_history: bool,
) -> tuple[torch.Tensor, np.ndarray | None]:
    """The iterations, for one batch already on its device."""
    frames = target.shape[-1]
    if length is None:
        length = (frames - 1) * config.hop_length if config.center else None
    target_norm = torch.linalg.vector_norm(target, dim=(-2, -1)).clamp_min(1e-30)
    eps = torch.finfo(target.dtype).tiny
    extrapolate = momentum / (1.0 + momentum)
    angles = phasors * target
    previous = None
    history = []
    for _ in range(n_iter):
        rebuilt = stft(istft(angles, config, length), config)[..., :frames]
        if with_history:
            history.append(_convergence_db(target, rebuilt, target_norm))
        if previous is not None and extrapolate:
            angles = torch.sub(rebuilt, previous, alpha=extrapolate)
        else:
            angles = rebuilt
        angles = angles * (target / (angles.abs() + eps))  # complex times real: faster than a complex division
        previous = rebuilt
    audio = istft(angles, config, length)
    if not with_history:
        return audio, None
    final = stft(audio, config)[..., :frames]
    history.append(_convergence_db(target, final, target_norm))
    return audio, torch.stack(history, dim=-1).cpu().numpy()


def frames_to_audio(
    frames: np.ndarray | torch.Tensor,
    config: SpectrogramConfig,
    n_iter: int = 1000,
    momentum: float = 0.99,
    init: str = "pghi",
    seed: int = 0,
    device: torch.device | str | None = None,
    batch_size: int = 16,
    cpu_threads: int | None = 1,
) -> np.ndarray:
    """Pictures back to sound: denormalise, restore the dropped bin, reconstruct the phase, inverse STFT.

    ``frames`` is ``(n_bins, n_frames)`` or ``(N, n_bins, n_frames)`` in [-1, 1]; the result is ``(samples,)``
    or ``(N, samples)`` float32 with ``config.segment_length`` samples per picture. The phase comes from
    :func:`griffin_lim` (fast Griffin-Lim, ``momentum``; ``init="pghi"`` starts from PGHI),
    seeded, on ``device`` (default: :func:`pgsound.device.default_device`), ``batch_size`` pictures at a time,
    with ``cpu_threads`` torch threads on the CPU (as :func:`griffin_lim`). (book: chapter 2, Getting the phase back)
    """
    values = np.asarray(frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else frames)
    single = values.ndim == 2
    batch = values[None] if single else values
    if batch.ndim != 3 or batch.shape[1:] != config.shape:
        raise ValueError(
            f"expected pictures of shape {config.shape} or (N, {config.n_bins}, {config.n_frames}), got {values.shape}"
        )
    magnitude = restore_bin(denormalise(batch, config), config)
    audio = griffin_lim(
        magnitude,
        config,
        n_iter=n_iter,
        momentum=momentum,
        init=init,
        seed=seed,
        device=device,
        batch_size=batch_size,
        length=config.segment_length,
        cpu_threads=cpu_threads,
    )
    return audio[0] if single else audio
