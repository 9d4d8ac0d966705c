"""The synthetic piano: seeded, inharmonic, decaying like a piano, with correct labels."""

from __future__ import annotations

import numpy as np
import pytest

from pgsound.synth_piano import (
    HIGHEST,
    LOWEST,
    PHRASE_KINDS,
    Note,
    compose_phrase,
    in_room,
    inharmonicity,
    midi_to_hz,
    partial_frequencies,
    piano_dataset,
    render_notes,
    render_phrase,
    room_response,
)

RATE = 16000


def spectrum_peak(audio: np.ndarray, near: float, width: float) -> float:
    """The frequency of the largest spectral peak within ``near +- width`` Hz (zero-padded FFT, parabolic fit)."""
    size = 4 * audio.size
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size), size))
    hz = RATE / size
    lo, hi = int((near - width) / hz), int((near + width) / hz) + 1
    i = lo + int(np.argmax(spectrum[lo:hi]))
    a, b, c = np.log(spectrum[i - 1 : i + 2] + 1e-20)
    return (i + 0.5 * (a - c) / (a - 2 * b + c)) * hz


def test_same_seed_same_audio_other_seed_other_audio():
    a, notes_a = render_phrase(1.0, seed=3)
    b, notes_b = render_phrase(1.0, seed=3)
    np.testing.assert_array_equal(a, b)
    assert notes_a == notes_b
    c, _ = render_phrase(1.0, seed=4)
    assert not np.array_equal(a, c)
    audio, labels = piano_dataset(5, 0.5, seed=1)
    first, first_labels = piano_dataset(3, 0.5, seed=1)
    np.testing.assert_array_equal(audio[:3], first)  # clip i depends on (seed, i) only
    np.testing.assert_array_equal(labels[:3], first_labels)
    assert not np.array_equal(piano_dataset(3, 0.5, seed=2)[0], first)


def test_partials_follow_the_inharmonicity_formula():
    pitch = 60  # B = 8.3e-4: the 6th partial sits 1.5% above 6 f0, the 12th 6% above
    audio = render_notes([Note(pitch, 0.0, 3.0, 0.9)], 2.0, RATE, seed=0)
    f0, b = midi_to_hz(pitch), inharmonicity(pitch)
    assert b == pytest.approx(8.3e-4, rel=0.02)
    for n in (1, 2, 3, 4, 5, 6, 10, 11, 12):
        expected = n * f0 * np.sqrt(1 + b * n**2)
        assert partial_frequencies(pitch, n)[-1] == pytest.approx(expected)
        found = spectrum_peak(audio, expected, 0.02 * expected)
        tolerance = max(1.0, 6e-4 * expected)  # the unison string is detuned by at most 1.5 cents
        assert abs(found - expected) < tolerance, (n, found, expected)
        if n >= 4:
            assert abs(found - n * f0) > 5 * tolerance  # clearly not harmonic


def test_two_stage_decay_faster_for_high_partials():
    pitch = 57  # A3, held for the whole clip: no damper
    audio = render_notes([Note(pitch, 0.0, 4.0, 0.8)], 3.0, RATE, seed=1)
    frame = 1024
    frames = audio[: audio.size // frame * frame].reshape(-1, frame) * np.hanning(frame)
    spectrum = np.abs(np.fft.rfft(frames, axis=1))
    seconds = (np.arange(len(frames)) + 0.5) * frame / RATE

    def slope_db_per_s(freq: float, t0: float, t1: float) -> float:
        row = 20 * np.log10(spectrum[:, int(round(freq * frame / RATE))] + 1e-12)
        keep = (seconds > t0) & (seconds < t1)
        return float(np.polyfit(seconds[keep], row[keep], 1)[0])

    low, high = partial_frequencies(pitch, 8)[[0, 7]]
    assert slope_db_per_s(high, 0.8, 2.8) < slope_db_per_s(low, 0.8, 2.8) - 10  # treble partials die first
    # Two stages: the prompt sound falls fast, the aftersound slowly.
    assert slope_db_per_s(low, 0.05, 0.4) < 2 * slope_db_per_s(low, 1.2, 2.8) < 0


def test_velocity_makes_it_louder_and_brighter():
    def treble_share_and_rms(velocity: float) -> tuple[float, float]:
        audio = render_notes([Note(48, 0.0, 1.0, velocity)], 1.0, RATE, seed=0)[: RATE // 5]  # the attack
        power = np.abs(np.fft.rfft(audio)) ** 2
        hz = np.fft.rfftfreq(audio.size, 1 / RATE)
        return float(power[hz > 1000].sum() / power.sum()), float(np.sqrt(np.mean(audio**2)))

    soft, hard = treble_share_and_rms(0.25), treble_share_and_rms(1.0)
    assert hard[0] > 4 * soft[0]  # a harder blow puts more of the energy above 1 kHz
    assert hard[1] > 3 * soft[1]


def test_labels_are_the_first_note_and_the_sound_agrees():
    audio, labels = piano_dataset(8, 1.0, seed=0, kinds=("note",))
    assert audio.shape == (8, RATE) and audio.dtype == np.float32 and labels.dtype == np.int64
    for clip, label in zip(audio, labels):
        # The strongest peak of a single note is one of its partials.
        size = 4 * clip.size
        spectrum = np.abs(np.fft.rfft(clip * np.hanning(clip.size), size))
        peak = np.argmax(spectrum) * RATE / size
        partials = partial_frequencies(int(label), 40)
        assert np.min(np.abs(partials - peak) / partials) < 0.01, (label, peak)
    for kind in PHRASE_KINDS:
        clip_audio, clip_labels = piano_dataset(2, 2.0, seed=5, kinds=(kind,))
        for i in range(2):
            seed = int(np.random.default_rng([5, i]).integers(2**32))
            _, notes = render_phrase(2.0, kind, seed=seed)
            assert clip_labels[i] == notes[0].pitch


@pytest.mark.parametrize("kind", PHRASE_KINDS)
def test_phrases_stay_on_the_keyboard_and_in_range(kind):
    for seed in range(4):
        rng = np.random.default_rng(seed)
        notes = compose_phrase(kind, 4.0, rng)
        assert all(LOWEST <= n.pitch <= HIGHEST and 0 < n.velocity <= 1 and n.duration > 0 for n in notes)
        assert all(0 <= n.onset < 4.0 for n in notes)
        onsets = [n.onset for n in notes[1:]]
        assert onsets == sorted(onsets) and notes[0].onset <= min(onsets or [np.inf]) + 0.02
        if kind == "chord":  # the first chord: three or four notes, the root the lowest
            first = [n for n in notes if n.onset < notes[0].onset + 0.02]
            assert len(first) >= 3 and notes[0].pitch == min(n.pitch for n in first)
        if kind == "note":
            assert len(notes) == 1
        if kind in ("arpeggio", "melody"):
            assert len(notes) >= 4
    audio, _ = piano_dataset(4, 4.0, seed=7, kinds=(kind,))
    assert np.all(np.isfinite(audio)) and np.abs(audio).max() <= 1.0
    assert np.sqrt(np.mean(audio**2, axis=1)).min() > 1e-3  # never silent


def test_extremes_of_the_keyboard_render():
    audio = render_notes([Note(LOWEST, 0.0, 0.5, 1.0), Note(HIGHEST, 0.2, 0.5, 1.0)], 1.0, RATE)
    assert np.all(np.isfinite(audio)) and np.abs(audio).max() <= 0.9 + 1e-6


def test_bad_arguments():
    with pytest.raises(ValueError, match="pitch 20 is outside the piano's 21..108"):
        render_notes([Note(20, 0.0, 1.0, 0.5)], 1.0)
    with pytest.raises(ValueError, match="kind must be one of"):
        render_phrase(1.0, kind="glissando")
    with pytest.raises(ValueError, match="n_clips must be a positive integer"):
        piano_dataset(0, 1.0)
    with pytest.raises(ValueError, match="kinds must be a non-empty subset"):
        piano_dataset(2, 1.0, kinds=("waltz",))


def test_spectral_statistics_by_hand():
    from pgsound.audio_stats import compare_spectra, spectral_statistics
    from pgsound.spectrogram import SpectrogramConfig, pieces_to_magnitude

    config = SpectrogramConfig(n_fft=256, hop_length=32, n_bins=128, n_frames=256)
    t = np.arange(config.segment_length) / RATE
    decaying = (0.5 * np.sin(2 * np.pi * 1000.0 * t) * np.exp(-t / 0.5)).astype(np.float32)  # -17.4 dB/s
    stats = spectral_statistics(pieces_to_magnitude(decaying[None], config), config)
    assert stats["centroid_median_hz"] == pytest.approx(1000.0, rel=0.02)
    assert stats["decay_db_per_s"]["mid"] == pytest.approx(-20 * np.log10(np.e) / 0.5, rel=0.05)
    assert np.argmax(stats["mean_log_spectrum_db"]) == round(1000 * 256 / RATE)
    assert stats["band_db"]["1000-4000"] > stats["band_db"]["0-250"] + 20
    assert compare_spectra(stats, stats)["rms_difference_db"] == 0.0
    louder = dict(stats, mean_log_spectrum_db=stats["mean_log_spectrum_db"] + 3.0)  # 3 dB more in every bin
    assert compare_spectra(stats, louder) == pytest.approx({"correlation": 1.0, "rms_difference_db": 3.0})
    outside = stats["mean_log_spectrum_db"].copy()
    freqs = stats["frequencies_hz"]
    outside[(freqs < 50) | (freqs > 7000)] -= 40.0  # only outside the compared band
    changed = compare_spectra(stats, dict(stats, mean_log_spectrum_db=outside))
    assert changed == pytest.approx({"correlation": 1.0, "rms_difference_db": 0.0})
    assert (freqs > 7000).any() and (freqs < 50).any()
    with pytest.raises(ValueError, match=r"expected magnitudes \(N, 128, frames\)"):
        spectral_statistics(np.ones((1, 129, 10)), config)


@pytest.mark.parametrize("seconds", [0.5, 1.8])
def test_the_room_has_unit_energy_and_falls_60_db_in_its_stated_time(seconds):
    """Schroeder's backward integration of the response; the fall from -5 to -25 dB, extrapolated to 60 dB."""
    response = room_response(16000, np.random.default_rng(0), seconds)
    assert np.sum(response**2) == pytest.approx(1.0)
    remaining = np.cumsum(response[::-1] ** 2)[::-1]
    decay_db = 10 * np.log10(remaining / remaining[0])
    t5, t25 = np.argmax(decay_db < -5) / 16000, np.argmax(decay_db < -25) / 16000
    assert 3 * (t25 - t5) == pytest.approx(seconds, rel=0.1)


def test_the_room_keeps_a_dry_clip_at_level_0_and_scales_a_loud_one_to_0_9():
    clip = np.random.default_rng(1).uniform(-0.5, 0.5, 4000).astype(np.float32)
    np.testing.assert_array_equal(in_room(clip, 16000, np.random.default_rng(0), level=0), clip)
    loud = in_room(4 * clip, 16000, np.random.default_rng(0), level=0)
    assert np.abs(loud).max() == pytest.approx(0.9)
    np.testing.assert_allclose(loud, 4 * clip * (0.9 / np.abs(4 * clip).max()), rtol=1e-6)
