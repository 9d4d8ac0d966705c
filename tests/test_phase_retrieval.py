"""Phase reconstruction: fast Griffin-Lim against librosa.griffinlim, PGHI, spectral convergence by hand."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from pgsound.phase_retrieval import griffin_lim, pghi, spectral_convergence_db
from pgsound.spectrogram import SpectrogramConfig, stft

CONFIG = SpectrogramConfig(n_fft=256, hop_length=32, n_bins=128, n_frames=128)
SECONDS = 0.5


pytestmark = pytest.mark.usefixtures("one_thread")  # small FFTs (tests/conftest.py)


def piano_like(samples: int = int(SECONDS * 16000)) -> np.ndarray:
    """Two decaying partial series and a glide: enough structure that the phase matters."""
    t = np.arange(samples) / 16000
    x = sum(np.sin(2 * np.pi * 220 * k * t) * np.exp(-(2 + k) * t) / k for k in range(1, 6))
    x = x + 0.4 * np.sin(2 * np.pi * (600 + 200 * t) * t)
    return (0.3 * x).astype(np.float32)


def magnitude_of(x: np.ndarray) -> np.ndarray:
    return np.abs(librosa.stft(x, n_fft=CONFIG.n_fft, hop_length=CONFIG.hop_length, pad_mode="constant"))


# ---- spectral convergence ----------------------------------------------------------------------------------------
def test_spectral_convergence_matches_numpy():
    rng = np.random.default_rng(0)
    s = rng.random((3, 129, 40))
    x = s + 0.1 * rng.standard_normal(s.shape)
    expected = [20 * np.log10(np.sqrt(((s[i] - x[i]) ** 2).sum()) / np.sqrt((s[i] ** 2).sum())) for i in range(3)]
    np.testing.assert_allclose(spectral_convergence_db(s, x), expected, rtol=1e-10)
    assert isinstance(spectral_convergence_db(s[0], x[0]), float)
    # Audio as the estimate: its STFT magnitude is compared.
    audio = piano_like()
    target = magnitude_of(audio) * 1.1
    hand = 20 * np.log10(np.linalg.norm(target - magnitude_of(audio)) / np.linalg.norm(target))
    assert spectral_convergence_db(target, audio, CONFIG) == pytest.approx(hand, abs=1e-4)  # = 20 log10(0.1/1.1)
    assert hand == pytest.approx(20 * np.log10(0.1 / 1.1), abs=1e-4)
    # A picture's kept bins (Nyquist dropped) are compared with the same bins of the audio.
    assert spectral_convergence_db(target[:128], audio, CONFIG) == pytest.approx(hand, abs=1e-3)


def test_spectral_convergence_errors():
    with pytest.raises(ValueError, match="all-zero target"):
        spectral_convergence_db(np.zeros((4, 4)), np.ones((4, 4)))
    with pytest.raises(ValueError, match=r"target shape \(1, 4, 4\) and estimate shape \(1, 4, 5\) differ"):
        spectral_convergence_db(np.ones((4, 4)), np.ones((4, 5)))


# ---- Griffin-Lim -------------------------------------------------------------------------------------------------
def test_fast_griffin_lim_matches_librosa_quality():
    """Same iterations, same momentum, random starts: the means agree within the seed spread."""
    audio = piano_like()
    magnitude = magnitude_of(audio)
    n_iter, seeds = 60, 5
    ours = griffin_lim(
        np.stack([magnitude] * seeds), CONFIG, n_iter=n_iter, momentum=0.99, seed=0, device="cpu", length=audio.size
    )
    ours_db = spectral_convergence_db(np.stack([magnitude] * seeds), ours, CONFIG)
    theirs_db = np.array(
        [
            spectral_convergence_db(
                magnitude,
                librosa.griffinlim(
                    magnitude,
                    n_iter=n_iter,
                    hop_length=CONFIG.hop_length,
                    n_fft=CONFIG.n_fft,
                    momentum=0.99,
                    init="random",
                    random_state=seed,
                    length=audio.size,
                    pad_mode="constant",
                ),
                CONFIG,
            )
            for seed in range(seeds)
        ]
    )
    spread = max(ours_db.std(), theirs_db.std(), 1.0)
    assert abs(ours_db.mean() - theirs_db.mean()) < 2.5 * spread, (ours_db, theirs_db)
    assert ours_db.mean() < -15  # and both actually converge
    # Momentum is what makes it fast: plain Griffin-Lim at the same iteration count is clearly worse.
    plain = griffin_lim(magnitude, CONFIG, n_iter=n_iter, momentum=0.0, seed=0, device="cpu")
    assert spectral_convergence_db(magnitude, plain, CONFIG) > ours_db.mean() + 3


def test_griffin_lim_from_librosas_start_follows_librosa():
    """Given librosa's own random start, the first iterations coincide (before float rounding diverges)."""
    magnitude = magnitude_of(piano_like())
    start = 2 * np.pi * np.random.RandomState(3).random_sample(magnitude.shape)  # librosa draws it so
    for n_iter in (1, 3):
        ours = griffin_lim(magnitude, CONFIG, n_iter=n_iter, init=start, device="cpu")
        theirs = librosa.griffinlim(
            magnitude,
            n_iter=n_iter,
            hop_length=32,
            n_fft=256,
            momentum=0.99,
            init="random",
            random_state=3,
            pad_mode="constant",
            length=ours.size,
        )
        assert np.abs(ours - theirs).max() < 1e-3 * np.abs(theirs).max()


def test_griffin_lim_history_seed_and_shapes():
    magnitude = magnitude_of(piano_like())
    audio, history = griffin_lim(magnitude, CONFIG, n_iter=20, seed=1, device="cpu", return_history=True)
    assert audio.shape == (piano_like().size,) and audio.dtype == np.float32
    assert history.shape == (21,)
    assert history[-1] == pytest.approx(spectral_convergence_db(magnitude, audio, CONFIG), abs=0.05)
    assert history[-1] < history[0] - 5
    again = griffin_lim(magnitude, CONFIG, n_iter=20, seed=1, device="cpu")
    np.testing.assert_array_equal(audio, again)
    other = griffin_lim(magnitude, CONFIG, n_iter=20, seed=2, device="cpu")
    assert not np.allclose(audio, other)
    # The CPU thread setting is borrowed and given back.
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    griffin_lim(magnitude, CONFIG, n_iter=1, device="cpu")
    assert torch.get_num_threads() == 2
    torch.set_num_threads(threads)
    # Batched in chunks gives the same as all at once.
    batch = np.stack([magnitude, magnitude * 0.5, magnitude * 2.0])
    chunked = griffin_lim(batch, CONFIG, n_iter=5, init="pghi", device="cpu", batch_size=2)
    whole = griffin_lim(batch, CONFIG, n_iter=5, init="pghi", device="cpu", batch_size=None)
    np.testing.assert_allclose(chunked, whole, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_griffin_lim_same_on_gpu():
    magnitude = magnitude_of(piano_like())
    cpu = griffin_lim(magnitude, CONFIG, n_iter=5, seed=0, device="cpu")
    gpu = griffin_lim(magnitude, CONFIG, n_iter=5, seed=0, device="cuda")
    assert np.abs(cpu - gpu).max() < 1e-3 * np.abs(cpu).max()


def test_griffin_lim_errors():
    magnitude = magnitude_of(piano_like())
    with pytest.raises(ValueError, match=r"expected magnitudes of shape \(N, 129, frames\).*restore_bin"):
        griffin_lim(magnitude[:128], CONFIG, n_iter=1)
    with pytest.raises(ValueError, match="non-negative"):
        griffin_lim(-magnitude, CONFIG, n_iter=1)
    with pytest.raises(ValueError, match="init must be one of"):
        griffin_lim(magnitude, CONFIG, n_iter=1, init="ones")
    with pytest.raises(ValueError, match="n_iter must be a non-negative integer"):
        griffin_lim(magnitude, CONFIG, n_iter=-1)
    with pytest.raises(ValueError, match="momentum must be in"):
        griffin_lim(magnitude, CONFIG, n_iter=1, momentum=1.5)


# ---- PGHI --------------------------------------------------------------------------------------------------------
def test_pghi_start_beats_random_start():
    magnitude = magnitude_of(piano_like())
    start = {
        init: spectral_convergence_db(
            magnitude, griffin_lim(magnitude, CONFIG, n_iter=0, init=init, device="cpu"), CONFIG
        )
        for init in ("random", "pghi")
    }
    assert start["pghi"] < start["random"] - 10, start
    after = {
        init: spectral_convergence_db(
            magnitude, griffin_lim(magnitude, CONFIG, n_iter=20, init=init, device="cpu"), CONFIG
        )
        for init in ("random", "pghi")
    }
    assert after["pghi"] < after["random"] - 3, after


def test_pghi_phase_advance_of_a_sinusoid():
    """At the peak bin of a steady sinusoid, PGHI's phase step per frame is the true one: 2 pi f hop / sr."""
    bin_index = 20
    frequency = bin_index * 16000 / CONFIG.n_fft
    x = np.sin(2 * np.pi * frequency * np.arange(8000) / 16000).astype(np.float32)
    spectrum = stft(torch.from_numpy(x), CONFIG).numpy()
    phase = pghi(np.abs(spectrum), CONFIG)
    assert phase.shape == spectrum.shape and phase.dtype == np.float32
    frames = slice(20, 200)  # away from the zero-padded ends
    true_step = np.diff(np.angle(spectrum[bin_index, frames]))
    our_step = np.diff(phase[bin_index, frames].astype(np.float64))
    assert np.abs(np.angle(np.exp(1j * (our_step - true_step)))).max() < 1e-3
    # Neighbouring bins of the same partial: phase relative to the peak bin matches the STFT's too (mod 2 pi).
    relative_true = np.angle(spectrum[bin_index + 1, frames] / spectrum[bin_index, frames])
    relative_ours = phase[bin_index + 1, frames] - phase[bin_index, frames]
    assert np.median(np.abs(np.angle(np.exp(1j * (relative_ours - relative_true))))) < 0.3


@pytest.mark.parametrize("bin_position", [20.3, 20.5])
def test_pghi_phase_advance_between_bins(bin_position):
    """Between two bins the per-frame step of every bin of the partial is the sinusoid's, not the bin centre's:
    PGHI's correction from the magnitude's slope across bins (a quarter to a half turn here) must be right in
    size and sign."""
    frequency = bin_position * 16000 / CONFIG.n_fft
    x = np.sin(2 * np.pi * frequency * np.arange(8000) / 16000).astype(np.float32)
    spectrum = stft(torch.from_numpy(x), CONFIG).numpy()
    phase = pghi(np.abs(spectrum), CONFIG)
    frames = slice(20, 200)
    for k in range(19, 23):
        true_step = np.diff(np.angle(spectrum[k, frames]))
        our_step = np.diff(phase[k, frames].astype(np.float64))
        correction = 2 * np.pi * (bin_position - k) * CONFIG.hop_length / CONFIG.n_fft
        assert abs(correction) > 0.2  # what a bin-centre step would miss
        assert np.abs(np.angle(np.exp(1j * (our_step - true_step)))).max() < 0.03, k


def _integrate_by_hand(log_s, time_step, freq_step, keep):
    """PGHI's integration as chapter 2 writes it: nested lists, (bin, frame) pairs, one neighbour at a time."""
    import heapq

    n_bins, n_frames = log_s.shape
    reached = (~keep).tolist()
    phase = [[0.0] * n_frames for _ in range(n_bins)]
    for start in np.argsort(-np.where(keep, log_s, -np.inf), axis=None, kind="stable")[: keep.sum()]:
        k, n = divmod(int(start), n_frames)
        if reached[k][n]:
            continue
        reached[k][n] = True
        heap = [(-log_s[k, n], k, n)]
        while heap:
            _, k, n = heapq.heappop(heap)
            for dk, dn in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                kk, nn = k + dk, n + dn
                if 0 <= kk < n_bins and 0 <= nn < n_frames and not reached[kk][nn]:
                    steps = time_step if dn else freq_step
                    phase[kk][nn] = phase[k][n] + (dn + dk) * 0.5 * (steps[k, n] + steps[kk, nn])
                    reached[kk][nn] = True
                    heapq.heappush(heap, (-log_s[kk, nn], kk, nn))
    return np.array(phase)


@pytest.mark.parametrize("shape", [(33, 20), (1, 9), (9, 1), (64, 64)])
def test_pghi_compiled_integration_is_the_integration_by_hand(shape):
    """The numba-compiled heap integration gives the same phases, to the bit, as the plain loop, ties, left-out
    coefficients and several ridges included."""
    from pgsound.phase_retrieval import _heap_integrate

    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    log_s = np.round(rng.normal(size=shape), 1)  # rounded: many equal values, so the order of ties matters
    keep = rng.random(shape) > 0.3
    time_step, freq_step = rng.normal(size=shape), rng.normal(size=shape)
    np.testing.assert_array_equal(_heap_integrate(log_s, time_step, freq_step, keep),
                                  _integrate_by_hand(log_s, time_step, freq_step, keep))


def test_pghi_compiles_without_a_writable_cache(monkeypatch):
    """Where numba has nowhere to write its cache (a read-only install), it says so when asked to cache; PGHI then
    compiles for the process alone and gives the same phases."""
    import numba

    from pgsound import phase_retrieval

    compile_for_real = numba.njit

    def njit(*args, **kwargs):
        if kwargs.get("cache"):
            raise RuntimeError("cannot cache function '_integrate_flat': no locator available for file")
        return compile_for_real(*args, **kwargs)

    magnitude = magnitude_of(piano_like())
    expected = pghi(magnitude, CONFIG, seed=2)
    phase_retrieval._compiled_integrate.cache_clear()
    monkeypatch.setattr(numba, "njit", njit)
    try:
        np.testing.assert_array_equal(pghi(magnitude, CONFIG, seed=2), expected)
    finally:
        phase_retrieval._compiled_integrate.cache_clear()


def test_griffin_lim_gives_the_same_audio_on_one_thread_and_two():
    """The metrics decode with the process's threads and the shipped manifests were measured on one: the thread
    count must not move a sample. The process's own setting comes back afterwards."""
    batch = np.stack([magnitude_of(piano_like()), magnitude_of(piano_like()[::-1].copy())] * 4)
    before = torch.get_num_threads()
    one = griffin_lim(batch, CONFIG, n_iter=8, init="pghi", device="cpu", cpu_threads=1)
    two = griffin_lim(batch, CONFIG, n_iter=8, init="pghi", device="cpu", cpu_threads=2)
    np.testing.assert_array_equal(one, two)
    assert torch.get_num_threads() == before


def test_pghi_batches_and_rejects_bad_input():
    magnitude = magnitude_of(piano_like())
    batch = pghi(np.stack([magnitude, magnitude]), CONFIG, seed=4)
    np.testing.assert_array_equal(batch[0], pghi(magnitude, CONFIG, seed=4))
    assert batch.min() >= 0 and batch.max() <= 2 * np.pi
    with pytest.raises(ValueError, match="tol_db must be positive"):
        pghi(magnitude, CONFIG, tol_db=0)
    with pytest.raises(ValueError, match="expected magnitudes of shape"):
        pghi(magnitude[:, :, None], CONFIG)
