"""Piano music: public-domain scores played as a pianist would, on the sampled piano (book: chapter 9).

The additive piano's phrases (:mod:`pgsound.synth_piano`) are isolated: a chord or a melody, then silence, no
pedal. Piano music is continuous, polyphonic and pedalled, and a GAN trained on phrases learns pictures with
far more empty space than real music has. This module plays real music instead:

- **the scores** come from the corpus inside the ``music21`` wheel (:data:`WORKS`): Bach's four-part chorales,
  the keyboard pieces (Joplin, Chopin, Clara Schumann, Mozart, C. P. E. Bach, Beach) and string
  quartet movements by Haydn, Mozart and Beethoven played as piano reductions, as pianists play them;
- **the performance** (:func:`perform`): a tempo from the score's metronome mark or one drawn for it, slow
  rubato and a slowing at the end, fermatas held; velocity shaped by the phrase (an arch over every four bars),
  the metre (downbeats and beats accented) and the voicing (the top note of a chord leads); onsets spread by a
  few milliseconds, the melody a little ahead of the chord under it; the sustain pedal changed on the beats
  the harmony moves on (pressed just after the new notes, "legato pedalling");
- **the room**: the same exponentially decaying reverberation as the additive piano's, longer: 60 dB down in
  :data:`ROOM_SECONDS` seconds, a small hall.

Everything is seeded: the same seed picks the same works, excerpts and performance.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pgsound.synth_piano import HIGHEST, LOWEST, Note

ROOM_SECONDS = 1.8  # a small hall: the reverberation falls 60 dB in this time
ROOM_LEVEL = 0.35  # the reverberation's amplitude relative to the direct sound
TAIL_SECONDS = 2.0  # rendered after the last note ends: the release and the room's decay
CHORALES = "bach/bwv"  # every chorale in the corpus: music21 paths starting with this
KEYBOARD = (
    "joplin/maple_leaf_rag", "chopin/mazurka06-2.krn", "mozart/k545/movement1_exposition", "cpebach/h186",
    "schumann_clara/polonaise_op1n1", "schumann_clara/polonaise_op1n2", "schumann_clara/polonaise_op1n3",
    "schumann_clara/polonaise_op1n4", "beach/prayer_of_a_tired_child",
)
CHAMBER = tuple(
    [f"haydn/opus1no1/movement{i}" for i in range(1, 6)] + [f"haydn/opus74no1/movement{i}" for i in range(1, 5)]
    + [f"mozart/{k}/movement{i}" for k, n in (("k80", 4), ("k155", 3), ("k156", 4), ("k458", 4))
       for i in range(1, n + 1)]
    + [f"beethoven/opus18no1/movement{i}.mxl" for i in range(1, 5)]
    + [f"beethoven/opus59no{k}/movement{i}" for k in (1, 2, 3) for i in range(1, 5)]
)
GROUPS = ("chorales", "keyboard", "chamber")


@dataclass(frozen=True)
class Performance:
    """One performed excerpt: its notes and pedal (seconds from 0), length, and how it was played."""

    work: str
    notes: list[Note]
    pedal: list[tuple[float, float]]
    seconds: float
    settings: dict[str, Any] = field(default_factory=dict)

    def entry(self) -> dict[str, Any]:
        """The provenance of the pictures cut from it (a dataset's recording entry)."""
        return {"work": self.work, "source": "music21 corpus", **self.settings}


def works(group: str) -> list[str]:
    """The corpus paths of one of :data:`GROUPS`, in a fixed order."""
    if group == "chorales":
        from music21 import corpus

        return sorted({_corpus_name(p) for p in corpus.getComposer("bach") if _corpus_name(p).startswith(CHORALES)})
    if group == "keyboard":
        return list(KEYBOARD)
    if group == "chamber":
        return list(CHAMBER)
    raise ValueError(f"group must be one of {GROUPS}, got {group!r}")


def _corpus_name(path: Any) -> str:
    """``.../music21/corpus/bach/bwv1.6.mxl`` -> ``bach/bwv1.6.mxl``."""
    parts = str(path).replace("\\", "/").split("/corpus/")
    return parts[-1]


@dataclass(frozen=True)
class ScoreNote:
    """A note of the score in quarter notes: pitch, onset, length, and its marks."""

    pitch: int
    onset: float
    length: float
    staccato: bool
    fermata: bool


@dataclass(frozen=True)
class Score:
    """What a performance needs of a parsed score: notes, bar lines, beat length, tempo mark (quarters/min)."""

    name: str
    notes: list[ScoreNote]
    bars: np.ndarray  # onsets of the bars, in quarter notes
    beat: float  # the beat in quarter notes (1 in 4/4, 1.5 in 6/8)
    tempo: float | None
    end: float


def read_score(name: str) -> Score:
    """Parse a corpus work with music21: ties merged, chords split into notes, grace notes given a moment."""
    from music21 import corpus, expressions, meter, tempo

    score = corpus.parse(name)
    flat = score.stripTies().flatten()
    notes = []
    for element in flat.notes:
        length = float(element.quarterLength) or 0.125  # grace notes: a 32nd
        staccato = any("Staccat" in type(a).__name__ for a in element.articulations)
        fermata = any(isinstance(e, expressions.Fermata) for e in element.expressions)
        for pitch in getattr(element, "pitches", ()):
            midi = int(pitch.midi)
            while midi < LOWEST:
                midi += 12
            while midi > HIGHEST:
                midi -= 12
            notes.append(ScoreNote(midi, float(element.offset), length, staccato, fermata))
    if not notes:
        raise ValueError(f"{name}: the score holds no notes")
    parts = score.parts if len(score.parts) else [score]
    bars = np.array(sorted({float(m.offset) for m in parts[0].getElementsByClass("Measure")}) or [0.0])
    signatures = flat.getElementsByClass(meter.TimeSignature)
    beat = float(signatures[0].beatDuration.quarterLength) if len(signatures) else 1.0
    marks = [m.getQuarterBPM() for m in flat.getElementsByClass(tempo.MetronomeMark)]
    marks = [float(m) for m in marks if m]
    end = max(n.onset + n.length for n in notes)
    return Score(name, sorted(notes, key=lambda n: (n.onset, n.pitch)), bars, beat, marks[0] if marks else None, end)


def perform(
    score: Score, rng: np.random.Generator, max_seconds: float | None = None, transpose: int = 0
) -> Performance:
    """Play ``score`` as a pianist would (see the module's docstring); at most ``max_seconds`` of it.

    An excerpt longer than ``max_seconds`` starts at a bar drawn by ``rng`` and ends at the last note that
    starts within ``max_seconds``. ``transpose`` moves every note by semitones (kept on the keyboard).
    (book: chapter 1, "Music, not phrases")
    """
    chorale = score.name.startswith(CHORALES)
    quarter_bpm = score.tempo if score.tempo else float(rng.uniform(60, 84) if chorale else rng.uniform(72, 126))
    quarter_bpm = float(np.clip(quarter_bpm, 40.0, 200.0))
    # The time map: seconds at each point of a grid of 1/8 quarter, from a slowly drifting tempo, a slowing over
    # the last two bars, and a held fermata (its note lasts 1.6 times as long, the music waits).
    grid = np.arange(0.0, score.end + 0.125, 0.125)
    phase = rng.uniform(0, 2 * np.pi, 2)
    drift = 1.0 + 0.04 * np.sin(2 * np.pi * grid / 16 + phase[0]) + 0.02 * np.sin(2 * np.pi * grid / 5 + phase[1])
    last_bars = score.bars[-2] if len(score.bars) > 2 else 0.0
    drift = drift * np.where(grid > last_bars, 1.0 - 0.25 * (grid - last_bars) / max(score.end - last_bars, 1), 1.0)
    step = np.diff(grid, prepend=0.0) * 60.0 / (quarter_bpm * drift)
    held = np.zeros(grid.size, dtype=bool)  # under a fermata: once, however many voices carry the sign
    for note in score.notes:
        if note.fermata:
            held |= (grid > note.onset) & (grid <= note.onset + note.length)
    step[held] *= 1.6
    clock = np.cumsum(step)

    def seconds(q: float | np.ndarray) -> np.ndarray:
        return np.interp(q, grid, clock)

    # Where the excerpt starts and ends, in quarters.
    start_q, stop_q = 0.0, score.end
    if max_seconds is not None and seconds(score.end) > max_seconds:
        starts = score.bars[seconds(score.end) - seconds(score.bars) > max_seconds]
        start_q = float(rng.choice(starts)) if len(starts) else 0.0
        stop_q = float(np.interp(seconds(start_q) + max_seconds, clock, grid))
    origin = float(seconds(start_q))
    dynamic = float(rng.uniform(0.45, 0.75))  # the piece's level, mezzo-piano to forte
    timing_sd = 0.008  # onsets spread by about 8 ms
    sounding = [n for n in score.notes if start_q <= n.onset < stop_q]
    tops = {}
    for n in sounding:
        tops[n.onset] = max(tops.get(n.onset, LOWEST), n.pitch)
    notes = []
    for n in sounding:
        bar_index = max(0, int(np.searchsorted(score.bars, n.onset, side="right")) - 1)
        in_bar = n.onset - score.bars[bar_index]
        phrase = ((bar_index % 4) + in_bar / max(4 * score.beat, 1e-9)) / 4  # 0..1 over four bars
        accent = 0.06 if in_bar < 1e-6 else 0.03 if abs(in_bar / score.beat - round(in_bar / score.beat)) < 1e-6 else 0
        lead = n.pitch == tops[n.onset]
        velocity = dynamic + 0.12 * np.sin(np.pi * phrase) - 0.06 + accent + (0.08 if lead else -0.03)
        velocity = float(np.clip(velocity + rng.normal(0, 0.04), 0.08, 1.0))
        onset = float(seconds(n.onset)) - origin + rng.normal(0, timing_sd) + (0.0 if lead else 0.012)
        end = float(seconds(n.onset + n.length)) - origin
        held = (end - onset) * (0.45 if n.staccato else rng.uniform(0.92, 1.0))
        pitch = int(np.clip(n.pitch + transpose, LOWEST, HIGHEST))
        notes.append(Note(pitch, max(onset, 0.0), max(held, 0.04), velocity))
    notes.sort(key=lambda n: (n.onset, n.pitch))
    # The pedal: changed every beat or every bar, whichever is nearer one second, pressed 60-120 ms after the
    # change point and lifted 10 ms after the next one (the new notes are struck with the old pedal still down).
    beat_s = 60.0 / quarter_bpm * score.beat
    every = score.beat * max(1, round(1.0 / max(beat_s, 1e-3)))
    changes = np.arange(start_q, stop_q, every)
    pedal = []
    for a, b in zip(changes[:-1], changes[1:]):
        press = float(seconds(a)) - origin + rng.uniform(0.06, 0.12)
        lift = float(seconds(b)) - origin + 0.01
        pedal.append((press, lift))
    length = (max(n.onset + n.duration for n in notes) if notes else 0.0) + TAIL_SECONDS
    settings = {"start_quarter": start_q, "quarter_bpm": round(quarter_bpm, 2), "transpose": transpose,
                "dynamic": round(dynamic, 3)}
    return Performance(score.name, notes, pedal, float(length), settings)


def programme(seed: int) -> Iterator[str]:
    """The works to play, endlessly: the three groups take turns, each in its own seeded order."""
    rng = np.random.default_rng([seed, 7])
    orders = {g: list(rng.permutation(works(g))) for g in GROUPS}
    turn = 0
    while True:
        for g in GROUPS:
            yield orders[g][turn % len(orders[g])]
        turn += 1


def performances(seed: int = 0, max_seconds: float = 60.0) -> Iterator[Performance]:
    """Performed excerpts of the corpus, one after another (each at most ``max_seconds``), seeded.

    Excerpt ``i`` depends only on ``seed`` and ``i``: its work comes from :func:`programme`, its performance
    from a generator seeded with ``(seed, i)``. A work that music21 cannot read is passed over.
    """
    from music21.exceptions21 import Music21Exception

    for i, name in enumerate(programme(seed)):
        rng = np.random.default_rng([seed, i])
        try:
            score = read_score(name)
        except (Music21Exception, ValueError):  # a score this music21 cannot read: the programme goes on
            continue
        yield perform(score, rng, max_seconds, transpose=int(rng.integers(-2, 3)))


def render_performance(
    performance: Performance, sample_rate: int = 16000, soundfont: Any = None, seed: int = 0
) -> np.ndarray:
    """A performance played on the sampled piano in the hall (:data:`ROOM_SECONDS`): float32 mono."""
    from pgsound.sampled_piano import render_notes

    return render_notes(performance.notes, performance.seconds, sample_rate, seed=seed, soundfont=soundfont,
                        pedal=performance.pedal, room_seconds=ROOM_SECONDS, room_level=ROOM_LEVEL)
