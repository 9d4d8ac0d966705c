"""A synthetic piano: seeded, NumPy only, the embedded data source of the book (book: chapter 1).

Every chapter must run without a download, so the book plays its own piano. Each note is a sum of string
partials with the physics that makes a piano sound like one:

- **inharmonic partials**: a stiff string's n-th partial sits at ``f_n = n f0 sqrt(1 + B n^2)``, with the
  inharmonicity ``B`` rising from about 1.6e-4 in the bass to 6e-3 in the treble;
- **two-stage decay**: each partial is two slightly detuned strings (unison strings beat), a prompt sound that
  dies fast and an aftersound that lingers, with decay times that shrink as the partial's frequency grows;
- **the hammer**: it strikes at 1/7 to 1/9 of the string (partials near multiples of that number are weak), a
  harder blow is brighter (more high partials) and louder, and leaves a short burst of filtered noise;
- **dampers**: releasing a key below F6 damps the note in about 0.1 s.

Phrases (:data:`PHRASE_KINDS`): single notes anywhere on the keyboard, chords, arpeggios and melodies with a
bass line, in major and minor keys, at random tempi and loudness. :func:`piano_dataset` makes a labelled set:
the label of a clip is the MIDI pitch of its phrase's root, the first note played (the lowest of the first
chord). A 4 s clip renders in about 0.1 s on one core.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import fftconvolve, lfilter

PHRASE_KINDS: tuple[str, ...] = ("note", "chord", "arpeggio", "melody")
LOWEST, HIGHEST = 21, 108  # A0 .. C8, the 88 keys
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 11)  # harmonic minor: the leading tone makes the V chord major
MAX_PARTIALS = 48
SILENCE = 1e-4  # a partial or a note tail below -80 dB of the note is not rendered
ROOM_SECONDS = 1.2  # reverberation time of the room the piano stands in
ROOM_LEVEL = 0.3  # the reverberant sound's amplitude relative to the direct sound


@dataclass(frozen=True)
class Note:
    """One key press: MIDI ``pitch`` (21..108), ``onset`` and ``duration`` (key held) in seconds, ``velocity``
    in (0, 1]."""

    pitch: int
    onset: float
    duration: float
    velocity: float


def midi_to_hz(pitch: float) -> float:
    """Equal temperament, A4 (MIDI 69) = 440 Hz."""
    return 440.0 * 2.0 ** ((pitch - 69) / 12.0)


def inharmonicity(pitch: float) -> float:
    """The stiffness coefficient ``B`` of the string for ``pitch``: 1.6e-4 at A0 rising to 6.3e-3 at C8."""
    return 10.0 ** (-3.8 + 1.6 * (pitch - LOWEST) / (HIGHEST - LOWEST))


def partial_frequencies(pitch: float, count: int) -> np.ndarray:
    """``f_n = n f0 sqrt(1 + B n^2)`` for n = 1..count (book: chapter 1, "A synthetic piano")."""
    n = np.arange(1, count + 1, dtype=np.float64)
    return n * midi_to_hz(pitch) * np.sqrt(1.0 + inharmonicity(pitch) * n**2)


def decay_times(frequencies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude time constants (seconds) of the prompt sound and the aftersound of partials at ``frequencies``.

    Both shrink with frequency: an A4 fundamental's aftersound lasts about 2.4 s (-60 dB after 16 s), its
    10th partial about 0.5 s; the prompt sound dies about 7 times faster.
    """
    after = np.clip(3.0 * (frequencies / 220.0) ** -0.9, 0.05, 12.0)
    return after / 7.0, after


def _damped_sinusoids(
    weight: np.ndarray, frequency: np.ndarray, decay: np.ndarray, sample_rate: int, length: int, block: int = 256
) -> np.ndarray:
    """``sum_p Re(weight_p z_p^k)`` for k < length, with ``z_p = exp((-decay_p + 2 pi i frequency_p) / sr)``.

    Block by block: ``z^(j block + k) = z^(j block) z^k``, so the whole note is one complex matrix product
    (blocks x partials) @ (partials x block) instead of a cosine and an exponential per partial and sample.
    """
    log_z = (-decay + 2j * np.pi * frequency) / sample_rate
    blocks = -(-length // block)
    within = np.exp(np.outer(log_z, np.arange(block))).astype(np.complex64)  # (partials, block)
    starts = (weight[None, :] * np.exp(np.outer(np.arange(blocks) * block, log_z))).astype(np.complex64)
    return (starts @ within).real.reshape(-1)[:length].astype(np.float32)


def render_note(note: Note, sample_rate: int, rng: np.random.Generator, max_seconds: float) -> np.ndarray:
    """One note as float32 samples from its onset, at most ``max_seconds`` long (peak about ``velocity**1.5``)."""
    if not LOWEST <= note.pitch <= HIGHEST:
        raise ValueError(f"pitch {note.pitch} is outside the piano's {LOWEST}..{HIGHEST}")
    v = float(np.clip(note.velocity, 0.05, 1.0))
    nyquist = 0.45 * sample_rate
    count = int(min(MAX_PARTIALS, max(1, nyquist // midi_to_hz(note.pitch))))
    freqs = partial_frequencies(note.pitch, count)
    freqs = freqs[freqs < nyquist]
    n = np.arange(1, freqs.size + 1)
    # The hammer: striking point (comb), brightness rising with velocity, a gentle 1/n roll-off.
    strike = rng.uniform(1 / 9, 1 / 7)
    brightness = 500.0 + 5500.0 * v**2
    amps = np.abs(np.sin(np.pi * n * strike)) / n**0.8 * np.exp(-freqs / brightness)
    amps = amps * freqs**2 / (freqs**2 + 100.0**2)  # the soundboard radiates low partials poorly
    amps = amps / amps.max()
    keep = amps > SILENCE
    freqs, amps = freqs[keep], amps[keep]
    prompt, after = decay_times(freqs)
    damped = note.pitch < 89  # no dampers above F6
    release = max(note.duration, 0.02)
    length_s = min(max_seconds, (release + 0.6) if damped else np.inf, 7.0 * after.max())
    length = max(1, int(length_s * sample_rate))
    # Unison strings: the aftersound string is detuned by a fraction of a cent, so partials beat slowly.
    detune = 2.0 ** (rng.uniform(0.2, 1.5) / 1200.0)
    mix = 0.8  # the prompt sound's share of each partial's initial amplitude
    frequency = np.concatenate([freqs, freqs * detune])
    decay = np.concatenate([1.0 / prompt, 1.0 / after])
    # The hammer strikes the unison strings together: each partial starts in the same phase on both.
    start_phase = np.tile(rng.uniform(0, 2 * np.pi, freqs.size), 2)
    weight = np.concatenate([mix * amps, (1.0 - mix) * amps]) * np.exp(1j * start_phase)
    audio = _damped_sinusoids(weight, frequency, decay, sample_rate, length)
    # A 1 ms attack ramp: the hammer is fast but not a click.
    ramp = min(length, int(0.001 * sample_rate) + 1)
    audio[:ramp] *= np.linspace(0.0, 1.0, ramp, dtype=np.float32)
    # Hammer noise: a few milliseconds of noise, brighter for harder blows (a one-pole low-pass).
    burst = min(length, int(0.02 * sample_rate))
    noise = rng.standard_normal(burst).astype(np.float32) * np.exp(-np.arange(burst) / (0.004 * sample_rate))
    pole = float(np.exp(-2 * np.pi * (800.0 + 5000.0 * v) / sample_rate))
    filtered = lfilter([1.0 - pole], [1.0, -pole], noise)
    audio[:burst] += 0.3 * v * filtered / max(float(np.abs(filtered).max()), 1e-9)
    if damped and release * sample_rate < length:
        start = int(release * sample_rate)
        audio[start:] *= np.exp(-np.arange(length - start, dtype=np.float32) / (0.08 * sample_rate))
    audio /= max(float(np.abs(audio).max()), 1e-9)
    return (v**1.5 * audio).astype(np.float32)


def render_notes(notes: list[Note], seconds: float, sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """Mix ``notes`` into a clip of ``seconds`` (float32, peak at most 0.9, as loud as the notes' velocities)."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(seed)
    total = int(round(seconds * sample_rate))
    clip = np.zeros(total, np.float32)
    # Small matrix products: one BLAS thread is fastest, and 10-20x faster than two on a busy machine.
    with threadpool_limits(1, user_api="blas"):
        for note in notes:
            start = int(round(note.onset * sample_rate))
            if start >= total:
                continue
            sound = render_note(note, sample_rate, rng, (total - start) / sample_rate)
            clip[start : start + sound.size] += 0.35 * sound[: total - start]
    return in_room(clip, sample_rate, rng)


def in_room(
    clip: np.ndarray, sample_rate: int, rng: np.random.Generator, seconds: float = ROOM_SECONDS,
    level: float = ROOM_LEVEL,
) -> np.ndarray:
    """``clip`` plus its reverberation in a room (``level`` of the direct sound's amplitude, 60 dB down after
    ``seconds``; none at level 0), scaled down only where it would peak above 0.9 (book: chapter 1)."""
    if level > 0 and seconds > 0:
        clip = clip + level * fftconvolve(clip, room_response(sample_rate, rng, seconds))[: clip.size].astype(
            np.float32)
    peak = float(np.abs(clip).max())
    return clip * (0.9 / peak) if peak > 0.9 else clip


def room_response(sample_rate: int, rng: np.random.Generator, seconds: float = ROOM_SECONDS) -> np.ndarray:
    """A small room: exponentially decaying, darkening noise, unit energy, 60 dB down after ``seconds``."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    tail = rng.standard_normal(t.size) * np.exp(-6.9 * t / seconds)
    pole = float(np.exp(-2 * np.pi * 3000.0 / sample_rate))
    tail = lfilter([1.0 - pole], [1.0, -pole], tail)
    return tail / np.sqrt(np.sum(tail**2))


# ---- phrases -----------------------------------------------------------------------------------------------------
def _scale(root: int, minor: bool, low: int = LOWEST, high: int = HIGHEST) -> np.ndarray:
    steps = MINOR if minor else MAJOR
    pitches = [root + 12 * octave + s for octave in range(-8, 9) for s in steps]
    return np.array(sorted(p for p in pitches if low <= p <= high))


def _triad(scale: np.ndarray, degree_index: int, size: int = 3) -> list[int]:
    """Stacked thirds from scale position ``degree_index``: a triad, or a seventh chord with ``size=4``."""
    return [int(scale[min(degree_index + 2 * i, scale.size - 1)]) for i in range(size)]


def compose_phrase(kind: str, seconds: float, rng: np.random.Generator, root: int | None = None) -> list[Note]:
    """The notes of one phrase of ``kind`` (see :data:`PHRASE_KINDS`), sorted by onset then pitch.

    The first note is the ``root`` (random when ``None``): the lowest note of the first chord, the first note of
    an arpeggio or melody. (book: chapter 1, "A synthetic piano")
    """
    if kind not in PHRASE_KINDS:
        raise ValueError(f"kind must be one of {PHRASE_KINDS}, got {kind!r}")
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    beat = 60.0 / rng.uniform(60, 140)
    loudness = rng.uniform(0.3, 0.95)
    minor = bool(rng.random() < 0.4)

    def velocity(accent: float = 0.0) -> float:
        return float(np.clip(loudness + accent + rng.normal(0, 0.07), 0.1, 1.0))

    notes: list[Note] = []
    start = float(rng.uniform(0.0, min(0.1, 0.25 * seconds)))  # short clips still start with a note
    if kind == "note":
        root = int(rng.integers(LOWEST, HIGHEST + 1)) if root is None else root
        notes.append(Note(root, start, float(rng.uniform(0.3, 0.9) * seconds), velocity()))
    elif kind == "chord":
        root = int(rng.integers(28, 80)) if root is None else root
        scale = _scale(root, minor, root)
        progression = [0, [3, 4, 5][rng.integers(3)], 4, 0]
        t = start
        for bar, degree in enumerate(progression):
            if t >= seconds:
                break
            size = 4 if rng.random() < 0.3 else 3
            chord = _triad(scale, degree, size)
            if bar > 0 and rng.random() < 0.5:  # an inversion: the lowest note up an octave
                chord = chord[1:] + [min(chord[0] + 12, HIGHEST)]
            held = float(beat * rng.choice([1.0, 2.0, 2.0, 4.0]))
            for pitch in sorted(set(chord)):
                notes.append(Note(pitch, t + rng.uniform(0, 0.015) * (pitch != chord[0]), held * 0.95, velocity()))
            t += held
    elif kind == "arpeggio":
        root = int(rng.integers(28, 80)) if root is None else root
        scale = _scale(root, minor, root)
        chord = [p for octave in range(3) for p in (np.array(_triad(scale, 0)) + 12 * octave) if p <= HIGHEST]
        pattern = chord + chord[-2:0:-1] if rng.random() < 0.6 else chord
        unit = beat / float(rng.choice([2, 3, 4]))
        pedal = float(rng.uniform(0.5, 1.0)) * seconds  # the sustain pedal: notes ring on
        t, i = start, 0
        while t < seconds:
            notes.append(Note(int(pattern[i % len(pattern)]), t, pedal, velocity(0.1 * (i % 4 == 0))))
            t += unit
            i += 1
    else:  # melody over a bass line
        root = int(rng.integers(48, 84)) if root is None else root
        scale = _scale(root, minor)
        position = int(np.searchsorted(scale, root))
        t = start
        while t < seconds:
            length = beat * float(rng.choice([0.5, 1.0, 1.0, 1.5, 2.0]))
            notes.append(Note(int(scale[position]), t, length * rng.uniform(0.7, 1.0), velocity(0.05)))
            position = int(np.clip(position + rng.choice([-2, -1, -1, 1, 1, 2, 0, 3, -3]), 0, scale.size - 1))
            t += length
        bass_root = root - 12 if root - 12 >= LOWEST else root
        for bar in range(int(np.ceil(seconds / (4 * beat)))):
            pitch = bass_root if bar % 2 == 0 else min(bass_root + 7, HIGHEST)
            onset = start + bar * 4 * beat
            if onset < seconds and bar > 0:
                notes.append(Note(int(pitch), onset, 3.5 * beat, velocity(-0.15)))
        if rng.random() < 0.7:  # the first bass note, struck with the first melody note
            notes.append(Note(int(bass_root), start, 3.5 * beat, velocity(-0.15)))
            notes[0], notes[-1] = notes[-1], notes[0]
    notes = [Note(int(np.clip(n.pitch, LOWEST, HIGHEST)), n.onset, n.duration, n.velocity) for n in notes]
    first = notes[0]
    notes.sort(key=lambda n: (round(n.onset, 3), n.pitch))
    if notes[0] != first:  # keep the root first even when a chord's notes are spread by a few milliseconds
        notes.remove(first)
        notes.insert(0, first)
    return notes


def render_phrase(
    seconds: float = 4.0, kind: str | None = None, root: int | None = None, sample_rate: int = 16000, seed: int = 0
) -> tuple[np.ndarray, list[Note]]:
    """One seeded phrase: ``(audio (samples,) float32 in [-1, 1], notes)`` (book: chapter 1, "A synthetic piano").

    ``kind`` is one of :data:`PHRASE_KINDS` (random when ``None``); the same arguments give the same samples.
    """
    rng = np.random.default_rng(seed)
    kind = PHRASE_KINDS[int(rng.integers(len(PHRASE_KINDS)))] if kind is None else kind
    notes = compose_phrase(kind, seconds, rng, root)
    return render_notes(notes, seconds, sample_rate, seed=int(rng.integers(2**32))), notes


def piano_dataset(
    n_clips: int,
    seconds: float,
    sample_rate: int = 16000,
    seed: int = 0,
    kinds: tuple[str, ...] = PHRASE_KINDS,
) -> tuple[np.ndarray, np.ndarray]:
    """``n_clips`` phrases: ``(audio (n_clips, samples) float32, labels (n_clips,) int64)`` (book: chapter 1).

    The label is the MIDI pitch (21..108) of each phrase's root (its first note). Clip ``i`` depends only on
    ``seed`` and ``i`` (so a larger set starts with the clips of a smaller one); kinds take turns.
    """
    if isinstance(n_clips, bool) or not isinstance(n_clips, (int, np.integer)) or n_clips < 1:
        raise ValueError(f"n_clips must be a positive integer, got {n_clips!r}")
    unknown = [k for k in kinds if k not in PHRASE_KINDS]
    if not kinds or unknown:
        raise ValueError(f"kinds must be a non-empty subset of {PHRASE_KINDS}, got {kinds!r}")
    samples = int(round(seconds * sample_rate))
    audio = np.zeros((n_clips, samples), np.float32)
    labels = np.zeros(n_clips, np.int64)
    for i in range(n_clips):
        clip_seed = int(np.random.default_rng([seed, i]).integers(2**32))
        clip, notes = render_phrase(seconds, kinds[i % len(kinds)], sample_rate=sample_rate, seed=clip_seed)
        audio[i] = clip
        labels[i] = notes[0].pitch
    return audio, labels
