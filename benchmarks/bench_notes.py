"""Time of the note classifier's metrics (``evaluate --metrics notes``) on N pictures per side (issue: note
classifier).

The work is two parts: the pictures become sound through the representation's decoder (PGHI and 32 Griffin-Lim
iterations, :data:`pgsound.metrics.NOTES_DECODE_ITERS`), then the classifier embeds each clip. An evaluation
with its floor decodes and embeds three sets (reals, fakes, held-out reals), so the table gives the time of one
set and of the three. Anchor, measured in the same run: SWD on the same pictures (the metric every evaluation
already pays for). The pictures are samples of the shipped generators (``piano-cpu``: 128x128, 1.024 s;
``piano512-cpu``: 512x512, 4.1 s).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_notes.py [--n 1024] [--runs piano-cpu,piano512-cpu]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from pgsound import pretrained
from pgsound.device import cpu_model
from pgsound.generate import sample
from pgsound.metrics import NOTES_DECODE_ITERS
from pgsound.metrics.notes import embeddings
from pgsound.metrics.swd import sliced_wasserstein_distance
from pgsound.representations import decode
from pgsound.spectrogram import SpectrogramConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--runs", default="piano-cpu,piano512-cpu")
    args = parser.parse_args()
    print(f"{cpu_model()}, {torch.get_num_threads()} threads, torch {torch.__version__}, {platform.system()}; "
          f"n = {args.n} pictures per set")
    print(f"{'run':<14}{'picture':>10}{'decode s':>10}{'embed s':>10}{'one set s':>11}{'three sets s':>14}"
          f"{'SWD s':>8}{'ratio':>7}")
    for name in args.runs.split(","):
        G, run = pretrained.load(name, device="cpu")
        config = SpectrogramConfig.from_dict(run.data.metadata["spectrogram"])
        pictures = []
        for first in range(0, args.n, 64):
            seeded = torch.Generator().manual_seed(first)
            latents = torch.randn(min(64, args.n - first), G.latent_size, generator=seeded)
            pictures.append(sample(G, latents, run.phase.level, run.phase.alpha))
        pictures = torch.cat(pictures)
        started = time.perf_counter()
        audio = decode(pictures, config, n_iter=NOTES_DECODE_ITERS)
        decoded = time.perf_counter() - started
        embeddings(audio)
        embedded = time.perf_counter() - started - decoded
        started = time.perf_counter()
        sliced_wasserstein_distance(pictures, pictures.flip(0), seed=0)
        swd = time.perf_counter() - started
        one = decoded + embedded
        print(f"{name:<14}{config.n_bins:>6}x{config.n_frames:<3}{decoded:>10.1f}{embedded:>10.1f}{one:>11.1f}"
              f"{3 * one:>14.1f}{swd:>8.1f}{3 * one / swd:>7.1f}")


if __name__ == "__main__":
    main()
