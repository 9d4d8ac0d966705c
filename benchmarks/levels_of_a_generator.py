"""Where a run loses diversity or consistency: each checkpoint's pictures at its own level against the reals'.

    .venv/bin/python benchmarks/levels_of_a_generator.py DATA.h5 RUN_OR_CHECKPOINT... [--n 32] [--iters 30]

For shipped runs (``pgsound.pretrained`` names), run folders (their newest checkpoint) or checkpoint files, and
the prepared data they were trained on: Gs's pictures at the level and alpha the checkpoint was training, and
the reals at that level faded by the same alpha, side by side: mean pairwise MS-SSIM (diversity: higher is less
varied), the median spectral consistency after PGHI and ``iters`` fast Griffin-Lim iterations (pictures below
full size are scaled up, so compare a row's two columns, not rows), and the spread of each pixel over the batch.
Give checkpoints taken at several levels of one run: the first whose fakes part from the reals is where the run
went wrong.

Only the level a checkpoint was training is measured: once a level above it has faded in, a lower level's
toRGB receives no gradient while the blocks beneath it go on changing, so G's pictures at that lower level are
no longer the ones it drew there.
"""

from __future__ import annotations

import argparse
import platform

import numpy as np
import torch

from pgsound import pretrained
from pgsound.datasets import open_dataset
from pgsound.datasets.loader import fade_reals
from pgsound.metrics.audio import consistency_db
from pgsound.metrics.ms_ssim import mean_pairwise_ms_ssim
from pgsound.runs import load_generator
from pgsound.schedule import level_resolution
from pgsound.spectrogram import SpectrogramConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", help="the prepared data the runs were trained on")
    parser.add_argument("runs", nargs="+", help="shipped run names, run folders or checkpoint files")
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--iters", type=int, default=30)
    args = parser.parse_args()
    dataset = open_dataset(args.data)
    config = SpectrogramConfig.from_dict(dataset.metadata["spectrogram"])
    print(f"# on {args.data}, n = {args.n}, {platform.machine()}, torch {torch.__version__}")
    print("| checkpoint | kimg | level | alpha | MS-SSIM fakes | reals | consistency fakes (dB) | reals "
          "| pixel spread fakes | reals |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for run in args.runs:
        generator, record = pretrained.load(run) if run in pretrained.names() else load_generator(run)
        phase = record.phase
        h, w = level_resolution(phase.level, generator.base_shape)
        z = torch.randn(args.n, generator.latent_size, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            fakes = generator(z, phase.level, phase.alpha).float().clamp(-1, 1)
        reals = fade_reals(torch.from_numpy(dataset.to_float(dataset.images(h, w)[: args.n])), phase.alpha)
        consistency = [np.median(consistency_db(x[:8, 0], config, n_iter=args.iters)) for x in (fakes, reals)]
        print(f"| {run} | {record.images_shown / 1000:g} | {h}x{w} | {phase.alpha:.2f} "
              f"| {mean_pairwise_ms_ssim(fakes):.2f} | {mean_pairwise_ms_ssim(reals):.2f} "
              f"| {consistency[0]:.1f} | {consistency[1]:.1f} "
              f"| {fakes.std(0).mean():.3f} | {reals.std(0).mean():.3f} |")


if __name__ == "__main__":
    main()
