"""Where a trained generator loses diversity or consistency: its pictures at every level against the reals'.

    .venv/bin/python benchmarks/levels_of_a_generator.py piano512-cpu DATA.h5 [--n 32] [--iters 30]

For a shipped run (``pgsound.pretrained`` name) or a run folder, and the prepared data of its recipe: at each
level from 64x64 up, Gs's pictures (alpha 1) and the reals at that level, side by side: mean pairwise MS-SSIM
(diversity: higher is less varied), the median spectral consistency after PGHI and ``iters`` fast Griffin-Lim
iterations (pictures below full size are scaled up, so compare a level's two columns, not levels), and the
spread of each pixel over the batch. A level where the fakes part from the reals is where the run went wrong.
"""

from __future__ import annotations

import argparse
import platform

import numpy as np
import torch

from pgsound import pretrained
from pgsound.datasets import open_dataset
from pgsound.metrics.audio import consistency_db
from pgsound.metrics.ms_ssim import mean_pairwise_ms_ssim
from pgsound.runs import load_generator
from pgsound.spectrogram import SpectrogramConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a shipped run's name or a run folder")
    parser.add_argument("data", help="the prepared data it was trained on")
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--iters", type=int, default=30)
    args = parser.parse_args()
    generator, record = (pretrained.load(args.run) if args.run in pretrained.names() else load_generator(args.run))
    dataset = open_dataset(args.data)
    config = SpectrogramConfig.from_dict(dataset.metadata["spectrogram"])
    z = torch.randn(args.n, generator.latent_size, generator=torch.Generator().manual_seed(0))
    print(f"# {args.run} on {args.data}, n = {args.n}, {platform.machine()}, torch {torch.__version__}")
    print("| level | MS-SSIM fakes | reals | consistency fakes (dB) | reals | pixel spread fakes | reals |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    top = record.phase.level  # the level the run had reached: the levels above it are untrained
    for level in range(max(0, top - 3), top + 1):
        h, w = (s * 2**level for s in generator.base_shape)
        with torch.no_grad():
            fakes = generator(z, level, 1.0).float().clamp(-1, 1)
        reals = torch.from_numpy(dataset.to_float(dataset.images(h, w)[: args.n]))
        consistency = [np.median(consistency_db(x[:8, 0], config, n_iter=args.iters)) for x in (fakes, reals)]
        print(f"| {h}x{w} | {mean_pairwise_ms_ssim(fakes):.2f} | {mean_pairwise_ms_ssim(reals):.2f} | "
              f"{consistency[0]:.1f} | {consistency[1]:.1f} | {fakes.std(0).mean():.3f} | {reals.std(0).mean():.3f} |")


if __name__ == "__main__":
    main()
