"""Measuring sound with the shipped note classifier, as the audio GAN papers measure (book: chapter 8,
"Measuring with a classifier").

GANSynth judged its samples through a pitch classifier trained on NSynth; pgsound's classifier
(:mod:`pgsound.note_classifier`) hears 16 kHz audio and says which of the 88 keys sound. Its penultimate
features (the embedding) and its key probabilities give:

- :func:`frechet_distance` and :func:`kernel_distance` between two sets of clips (FID and KID on the
  embedding, :mod:`pgsound.metrics.feature_distances`);
- :func:`inception_score` over keys: high when each clip is clearly some keys and the set covers many;
- :func:`pitch_accuracy`: how often the loudest key the classifier hears is the key a conditional G was asked
  for.

:func:`note_metrics` computes them all from the features of each set once; ``pgsound evaluate --metrics notes``
calls it on decoded pictures. Every function takes ``audio`` as a float32 array ``(n, samples)`` at 16 kHz with
at least :data:`MIN_SAMPLES` samples (half an analysis window, 64 ms); a clip shorter than :data:`CLIP_SAMPLES`
(1.024 s, the length the classifier was trained on) is padded with silence to that length, as a note that ends
early in a clip is something the classifier has heard. The shorter the clip, the less the classifier hears:
compare figures only between clips of one length.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from pgsound.metrics import feature_distances
from pgsound.note_classifier import LOWEST_KEY, SAMPLE_RATE, NoteClassifier, shipped

MIN_SAMPLES = 1024  # 64 ms, half a window of the classifier's analysis: shorter clips are mostly padding
CLIP_SAMPLES = 16384  # 1.024 s: the length of the classifier's training clips


def _audio(audio: np.ndarray, name: str = "audio") -> np.ndarray:
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] < MIN_SAMPLES:
        raise ValueError(f"{name} must be (n, samples) at {SAMPLE_RATE} Hz with at least {MIN_SAMPLES} samples "
                         f"(64 ms), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} holds NaN or infinite samples")
    if x.shape[1] < CLIP_SAMPLES:
        x = np.pad(x, ((0, 0), (0, CLIP_SAMPLES - x.shape[1])))
    return x


@torch.no_grad()
def _outputs(audio: np.ndarray, classifier: NoteClassifier | None, batch_size: int,
             device: torch.device | str | None) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings (n, d), key probabilities (n, 88)) of ``audio``."""
    x = _audio(audio)
    model = classifier if classifier is not None else shipped(str(device or "cpu"))
    target = next(model.parameters()).device
    features, probabilities = [], []
    for first in range(0, len(x), batch_size):
        embedded, logits = model.outputs(torch.from_numpy(x[first : first + batch_size]).to(target))
        features.append(embedded.cpu().double().numpy())
        probabilities.append(torch.sigmoid(logits).cpu().double().numpy())
    return np.concatenate(features), np.concatenate(probabilities)


def note_probabilities(audio: np.ndarray, classifier: NoteClassifier | None = None, batch_size: int = 64,
                       device: torch.device | str | None = None) -> np.ndarray:
    """(n, 88) probability that each key sounds in each clip; column 0 is A0 (MIDI 21)."""
    return _outputs(audio, classifier, batch_size, device)[1]


def embeddings(audio: np.ndarray, classifier: NoteClassifier | None = None, batch_size: int = 64,
               device: torch.device | str | None = None) -> np.ndarray:
    """(n, d) penultimate features of each clip: what the Fréchet and kernel distances compare."""
    return _outputs(audio, classifier, batch_size, device)[0]


def frechet_distance(a: np.ndarray, b: np.ndarray, classifier: NoteClassifier | None = None) -> float:
    """The Fréchet distance between the embeddings of two sets of clips; biased at small n (compare at one n)."""
    return feature_distances.frechet_distance(embeddings(a, classifier), embeddings(b, classifier))


def kernel_distance(a: np.ndarray, b: np.ndarray, classifier: NoteClassifier | None = None, seed: int = 0) -> float:
    """The unbiased kernel distance (KID) between the embeddings of two sets of clips; near 0 at any n for one
    distribution, so usable on a few hundred clips."""
    return feature_distances.kernel_distance(embeddings(a, classifier), embeddings(b, classifier), seed=seed)


def inception_score(audio: np.ndarray, classifier: NoteClassifier | None = None) -> float:
    """The Inception Score over the 88 keys (each clip's key probabilities normalised to sum to 1)."""
    return feature_distances.inception_score(note_probabilities(audio, classifier) + 1e-12)


def pitch_accuracy(audio: np.ndarray, pitches: Sequence[int] | np.ndarray,
                   classifier: NoteClassifier | None = None) -> float:
    """The share of clips whose most probable key is the MIDI pitch asked for (``pitches``, one per clip)."""
    asked = np.asarray(pitches, dtype=np.int64)
    if asked.shape != (len(audio),):
        raise ValueError(f"pitches must hold one MIDI pitch per clip ({len(audio)}), got shape {asked.shape}")
    heard = note_probabilities(audio, classifier).argmax(axis=1) + LOWEST_KEY
    return float(np.mean(heard == asked))


def note_metrics(reals: np.ndarray, fakes: np.ndarray, held_out: np.ndarray | None = None,
                 pitches: Sequence[int] | np.ndarray | None = None, classifier: NoteClassifier | None = None,
                 seed: int = 0, device: torch.device | str | None = None) -> dict[str, float]:
    """``fid_notes``, ``kid_notes`` and ``is_notes`` of ``fakes`` against ``reals``; with ``held_out`` reals,
    their floors ``fid_notes_real`` and ``kid_notes_real`` (reals against held-out reals at the same count) and
    ``is_notes_real``; with the MIDI ``pitches`` the fakes were asked for, ``pitch_accuracy`` (book: chapter 8)."""
    if pitches is not None and np.shape(pitches) != (len(fakes),):
        raise ValueError(f"pitches must hold one MIDI pitch per generated clip ({len(fakes)}), "
                         f"got shape {np.shape(pitches)}")
    real_features, real_probs = _outputs(reals, classifier, 64, device)
    fake_features, fake_probs = _outputs(fakes, classifier, 64, device)
    values = {
        "fid_notes": feature_distances.frechet_distance(real_features, fake_features),
        "kid_notes": feature_distances.kernel_distance(real_features, fake_features, seed=seed),
        "is_notes": feature_distances.inception_score(fake_probs + 1e-12),
    }
    if held_out is not None:
        held_features, _ = _outputs(held_out, classifier, 64, device)
        values["fid_notes_real"] = feature_distances.frechet_distance(real_features, held_features)
        values["kid_notes_real"] = feature_distances.kernel_distance(real_features, held_features, seed=seed)
        values["is_notes_real"] = feature_distances.inception_score(real_probs + 1e-12)
    if pitches is not None:
        asked = np.asarray(pitches, dtype=np.int64)
        values["pitch_accuracy"] = float(np.mean(fake_probs.argmax(axis=1) + LOWEST_KEY == asked))
        values["pitch_accuracy_real"] = float(np.mean(real_probs.argmax(axis=1) + LOWEST_KEY == asked))
    return values
