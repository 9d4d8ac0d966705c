"""Does the note classifier's Fréchet distance order what it should, on piano it never heard? (issue: note
classifier)

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/notes_order.py FOLDER [--runs piano-cpu,piano-cpu-long]

FOLDER holds recordings of piano music (any format ``pgsound prepare audio`` reads) that are not the project's
own renders. They are cut into 1.024 s clips; files alternate between two halves, so that the halves hold
different pieces. Rows, each against the first half (n clips a side, n = the smaller half):

- the other half (the floor), and the other half turned into 128x128 pictures (n_fft 256, hop 128) and back
  through the metric's phase reconstruction (what decoding alone costs);
- each shipped generator's samples, decoded the same way;
- white noise at the music's loudness.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from pgsound import pretrained
from pgsound.audio_io import load_audio
from pgsound.generate import sample
from pgsound.metrics import NOTES_DECODE_ITERS
from pgsound.metrics.feature_distances import frechet_distance, kernel_distance
from pgsound.metrics.notes import CLIP_SAMPLES, embeddings
from pgsound.representations import decode, encode
from pgsound.spectrogram import SpectrogramConfig

PICTURES = SpectrogramConfig(n_fft=256, hop_length=128, n_bins=128, n_frames=128)


def clips_of(path: Path) -> np.ndarray:
    audio = np.asarray(load_audio(path, 16000), dtype=np.float32)
    count = audio.size // CLIP_SAMPLES
    return audio[: count * CLIP_SAMPLES].reshape(count, CLIP_SAMPLES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--runs", default="piano-cpu,piano-cpu-long")
    args = parser.parse_args()
    files = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in (".flac", ".wav", ".mp3", ".ogg"))
    halves = [np.concatenate([clips_of(f) for f in files[i::2]]) for i in (0, 1)]
    n = min(len(h) for h in halves)
    first, second = halves[0][:n], halves[1][:n]
    started = time.perf_counter()
    reference = embeddings(first)
    rows = {"other half (floor)": second,
            "other half, decoded": decode(torch.from_numpy(encode(second, PICTURES)), PICTURES,
                                          n_iter=NOTES_DECODE_ITERS)}
    for name in args.runs.split(","):
        G, run = pretrained.load(name, device="cpu")
        config = SpectrogramConfig.from_dict(run.data.metadata["spectrogram"])
        latents = torch.randn(n, G.latent_size, generator=torch.Generator().manual_seed(1))
        rows[f"{name} samples"] = decode(sample(G, latents, run.phase.level, run.phase.alpha), config,
                                         n_iter=NOTES_DECODE_ITERS)[:, :CLIP_SAMPLES]
    loudness = np.sqrt(np.mean(second**2, axis=1, keepdims=True))
    rows["white noise"] = (loudness * np.random.default_rng(0).standard_normal(second.shape)).astype(np.float32)
    print(f"{len(files)} files from {args.folder}, {n} clips of 1.024 s per side")
    print(f"{'against the first half':<28}{'FD notes':>10}{'KID notes':>11}")
    for name, audio in rows.items():
        features = embeddings(np.asarray(audio, dtype=np.float32))
        print(f"{name:<28}{frechet_distance(reference, features):>10.2f}"
              f"{kernel_distance(reference, features):>11.4f}")
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
