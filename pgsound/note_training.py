"""Training the note classifier on rendered piano whose notes are known (book: chapter 8, "Measuring with a
classifier").

The classifier of :mod:`pgsound.note_classifier` learns from clips of :data:`CLIP_SECONDS` whose sounding keys
are known because pgsound played them:

- **single notes**: every key from A0 to C8 at :data:`VELOCITIES`, on the sampled piano
  (:mod:`pgsound.sampled_piano`) and on the additive one (:mod:`pgsound.synth_piano`), struck at a random time
  and held for a random length;
- **chords**: two to six keys within two octaves, on both pianos;
- **phrases** of the additive piano (:func:`pgsound.synth_piano.render_phrase`);
- **music**: excerpts of the corpus performed and played on the sampled piano (:mod:`pgsound.piano_music`),
  cut at random times.

A key counts as sounding in a clip when it is struck before the clip's last 30 ms and still rings 50 ms into
it: until its release, or until the pedal lifts when the pedal is down at the release, plus
:data:`RELEASE_SECONDS` of the damper's fall. Each clip gets a random tilt of its spectrum and a little noise,
so that the classifier learns the keys and not one piano's colour. Everything is seeded: the same arguments
give the same clips and the same weights.

``python benchmarks/train_note_classifier.py`` runs :func:`build_set` and :func:`train` at the shipped sizes and
writes the package's weights and manifest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from pgsound.note_classifier import KEYS, LOWEST_KEY, SAMPLE_RATE, NoteClassifier
from pgsound.synth_piano import Note

CLIP_SECONDS = 1.024  # 16,384 samples: the length of a 128-frame picture at hop 128, the shortest evaluated
VELOCITIES = (0.3, 0.55, 0.8, 1.0)
RELEASE_SECONDS = 0.15
PIANOS = ("sampled", "additive")
KINDS = ("note", "chord", "phrase", "music")


@dataclass
class Clips:
    """Audio clips with the keys that sound in them."""

    audio: np.ndarray  # (n, samples) float32 at 16 kHz
    keys: np.ndarray  # (n, 88) float32, 1 where a key sounds
    kind: np.ndarray  # (n,) one of KINDS
    pitch: np.ndarray  # (n,) the MIDI pitch of a single note, -1 for the other kinds

    def __len__(self) -> int:
        return len(self.audio)

    @staticmethod
    def join(parts: Sequence[Clips]) -> Clips:
        return Clips(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("audio", "keys", "kind", "pitch")))


def sounding_keys(notes: Sequence[Note], start: float, end: float, pedal: Sequence[tuple[float, float]] = ()
                  ) -> np.ndarray:
    """(88,) float32: 1 for each key that sounds between ``start`` and ``end`` seconds (see the module's rule)."""
    keys = np.zeros(KEYS, np.float32)
    for note in notes:
        release = note.onset + note.duration
        for press, lift in pedal:
            if press <= release < lift:
                release = lift
        if note.onset < end - 0.03 and release + RELEASE_SECONDS > start + 0.05:
            keys[note.pitch - LOWEST_KEY] = 1.0
    return keys


def _player(piano: str, soundfont: Any = None) -> Callable[..., np.ndarray]:
    if piano == "sampled":
        from pgsound.sampled_piano import render_notes

        return lambda notes, seconds, seed: render_notes(notes, seconds, SAMPLE_RATE, seed=seed, soundfont=soundfont)
    if piano == "additive":
        from pgsound.synth_piano import render_notes

        return lambda notes, seconds, seed: render_notes(notes, seconds, SAMPLE_RATE, seed=seed)
    raise ValueError(f"piano must be one of {PIANOS}, got {piano!r}")


def _clips(audio: list[np.ndarray], keys: list[np.ndarray], kind: str, pitch: list[int] | None = None) -> Clips:
    n = len(audio)
    return Clips(np.stack(audio).astype(np.float32), np.stack(keys).astype(np.float32), np.array([kind] * n),
                 np.array(pitch if pitch is not None else [-1] * n, np.int64))


def single_notes(piano: str, seed: int, pitches: Sequence[int] = range(LOWEST_KEY, LOWEST_KEY + KEYS),
                 velocities: Sequence[float] = VELOCITIES, soundfont: Any = None) -> Clips:
    """Each of ``pitches`` at each of ``velocities``: struck in the clip's first quarter, held 0.15-0.9 s."""
    play, rng = _player(piano, soundfont), np.random.default_rng([seed, 1])
    audio, keys, labels = [], [], []
    for pitch in pitches:
        for velocity in velocities:
            note = Note(int(pitch), float(rng.uniform(0, 0.25)), float(rng.uniform(0.15, 0.9)), float(velocity))
            audio.append(play([note], CLIP_SECONDS, int(rng.integers(2**31))))
            keys.append(sounding_keys([note], 0.0, CLIP_SECONDS))
            labels.append(int(pitch))
    return _clips(audio, keys, "note", labels)


def chords(piano: str, n: int, seed: int, soundfont: Any = None) -> Clips:
    """``n`` clips of two to six keys within two octaves, struck within 0.3 s, at one loudness."""
    play, rng = _player(piano, soundfont), np.random.default_rng([seed, 2])
    audio, keys = [], []
    for _ in range(n):
        low = int(rng.integers(LOWEST_KEY, LOWEST_KEY + KEYS - 24))
        pitches = rng.choice(np.arange(low, low + 25), size=int(rng.integers(2, 7)), replace=False)
        loud = float(rng.uniform(0.25, 1.0))
        notes = [Note(int(p), float(rng.uniform(0, 0.3)), float(rng.uniform(0.2, 1.0)),
                      float(np.clip(loud + rng.normal(0, 0.08), 0.1, 1.0))) for p in pitches]
        audio.append(play(notes, CLIP_SECONDS, int(rng.integers(2**31))))
        keys.append(sounding_keys(notes, 0.0, CLIP_SECONDS))
    return _clips(audio, keys, "chord")


def phrases(n: int, seed: int) -> Clips:
    """``n`` clips cut at random times from phrases of the additive piano."""
    from pgsound.synth_piano import render_phrase

    rng = np.random.default_rng([seed, 3])
    audio, keys = [], []
    samples = int(round(CLIP_SECONDS * SAMPLE_RATE))
    for _ in range(n):
        sound, notes = render_phrase(2 * CLIP_SECONDS, sample_rate=SAMPLE_RATE, seed=int(rng.integers(2**31)))
        start = int(rng.integers(0, sound.size - samples + 1))
        audio.append(sound[start : start + samples])
        keys.append(sounding_keys(notes, start / SAMPLE_RATE, start / SAMPLE_RATE + CLIP_SECONDS))
    return _clips(audio, keys, "phrase")


def music(n: int, seed: int, soundfont: Any = None, per_excerpt: int = 16, max_seconds: float = 30.0) -> Clips:
    """``n`` clips cut at random times from performed excerpts of the corpus, ``per_excerpt`` from each."""
    from pgsound.piano_music import performances, render_performance

    rng = np.random.default_rng([seed, 4])
    audio, keys = [], []
    samples = int(round(CLIP_SECONDS * SAMPLE_RATE))
    for performance in performances(seed, max_seconds):
        sound = render_performance(performance, SAMPLE_RATE, soundfont=soundfont, seed=int(rng.integers(2**31)))
        for _ in range(min(per_excerpt, n - len(audio))):
            start = int(rng.integers(0, max(sound.size - samples, 0) + 1))
            clip = np.zeros(samples, np.float32)
            piece = sound[start : start + samples]
            clip[: piece.size] = piece
            keys.append(sounding_keys(performance.notes, start / SAMPLE_RATE, start / SAMPLE_RATE + CLIP_SECONDS,
                                      performance.pedal))
            audio.append(clip)
        if len(audio) >= n:
            break
    return _clips(audio, keys, "music")


def colour(clips: Clips, seed: int) -> Clips:
    """Each clip with a random spectral tilt (up to 6 dB per octave either way) and noise 35-70 dB below it."""
    rng = np.random.default_rng([seed, 5])
    spectra = np.fft.rfft(clips.audio, axis=1)
    freqs = np.fft.rfftfreq(clips.audio.shape[1], 1 / SAMPLE_RATE)
    octaves = np.log2(np.maximum(freqs, 20.0) / 1000.0)
    tilt = rng.uniform(-6, 6, size=(len(clips), 1))
    audio = np.fft.irfft(spectra * 10 ** (tilt * octaves / 20), n=clips.audio.shape[1], axis=1)
    rms = np.sqrt(np.mean(audio**2, axis=1, keepdims=True)) + 1e-9
    noise = rng.standard_normal(audio.shape) * rms * 10 ** (-rng.uniform(35, 70, size=(len(clips), 1)) / 20)
    return Clips((audio + noise).astype(np.float32), clips.keys, clips.kind, clips.pitch)


def build_set(seed: int, notes_per_key: int = 1, chords_per_piano: int = 500, n_phrases: int = 800,
              n_music: int = 1600, soundfont: Any = None, progress: Callable[[str], None] | None = None) -> Clips:
    """A coloured training (or validation) set: ``notes_per_key`` rounds of single notes on each piano, chords,
    additive phrases and sampled music. Other seeds give other clips of the same recipe."""
    say = progress or (lambda message: None)
    parts = []
    for piano in PIANOS:
        for round_ in range(notes_per_key):
            say(f"single notes, {piano} piano, round {round_ + 1}")
            parts.append(single_notes(piano, seed * 100 + round_, soundfont=soundfont))
        say(f"chords, {piano} piano")
        parts.append(chords(piano, chords_per_piano, seed + PIANOS.index(piano), soundfont))
    say("additive phrases")
    parts.append(phrases(n_phrases, seed))
    say("sampled music")
    parts.append(music(n_music, seed, soundfont))
    return colour(Clips.join([p for p in parts if len(p)]), seed)


def train(clips: Clips, epochs: int = 12, seed: int = 0, batch_size: int = 32, lr: float = 2e-3, width: int = 16,
          progress: Callable[[str], None] | None = None) -> NoteClassifier:
    """A :class:`NoteClassifier` trained on ``clips`` by binary cross-entropy per key with Adam, the rate
    falling by a cosine to 0; seeded and deterministic on the CPU."""
    say = progress or (lambda message: None)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = NoteClassifier(width)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * int(np.ceil(len(clips) / batch_size))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + np.cos(np.pi * s / steps)))
    audio, keys = torch.from_numpy(clips.audio), torch.from_numpy(clips.keys)
    started = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(clips), generator=generator)
        total = torch.zeros(())
        for first in range(0, len(clips), batch_size):
            batch = order[first : first + batch_size]
            loss = F.binary_cross_entropy_with_logits(model(audio[batch]), keys[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.detach() * len(batch)
        say(f"epoch {epoch + 1}/{epochs}: loss {float(total) / len(clips):.4f} "
            f"({time.perf_counter() - started:.0f} s)")
    return set_embedding_scale(model.eval(), clips.audio)


@torch.no_grad()
def set_embedding_scale(model: NoteClassifier, audio: np.ndarray, batch_size: int = 64) -> NoteClassifier:
    """Fix the embedding's scale so that its root-mean-square over ``audio`` (the training clips) is 1."""
    model.embedding_scale.fill_(1.0)
    squares = sum(float(torch.sum(model.embeddings(torch.from_numpy(audio[i : i + batch_size])) ** 2))
                  for i in range(0, len(audio), batch_size))
    model.embedding_scale.fill_((squares / (len(audio) * model.keys.in_features)) ** -0.5)
    return model


@torch.no_grad()
def probabilities(model: NoteClassifier, audio: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """(n, 88) key probabilities of ``audio`` (n, samples)."""
    model.eval()
    out = [torch.sigmoid(model(torch.from_numpy(np.ascontiguousarray(audio[i : i + batch_size])))).numpy()
           for i in range(0, len(audio), batch_size)]
    return np.concatenate(out)


def scores(model: NoteClassifier, clips: Clips) -> dict[str, float]:
    """Top-1 pitch accuracy on the single notes (``pitch_accuracy``) and, per kind of many notes, the F1 of the
    keys at probability 0.5 pooled over clips and keys (``f1_chord``, ``f1_phrase``, ``f1_music``)."""
    p = probabilities(model, clips.audio)
    result: dict[str, float] = {}
    single = clips.pitch >= 0
    if single.any():
        result["pitch_accuracy"] = float(np.mean(p[single].argmax(1) + LOWEST_KEY == clips.pitch[single]))
    for kind in KINDS[1:]:
        rows = clips.kind == kind
        if rows.any():
            guess, truth = p[rows] >= 0.5, clips.keys[rows] > 0.5
            tp = float(np.sum(guess & truth))
            result[f"f1_{kind}"] = 2 * tp / max(float(guess.sum() + truth.sum()), 1.0)
    return result
