"""How far each embedded piano source is from a folder of piano music, by SWD (book: chapters 1 and 9).

    .venv/bin/python benchmarks/compare_sources.py FOLDER [--size 128x128] [--n 256] [--minutes 10]

Prepares FOLDER (``prepare audio``), ``prepare synthetic-piano`` and ``prepare sampled-piano`` at one geometry in
a temporary folder, then prints SWD x1000 (the paper's, per pyramid level and averaged) of ``n`` pictures of
each source against ``n`` pictures of FOLDER, beside FOLDER against another ``n`` of its own pictures (the
floor; FOLDER needs ``2 n`` pictures). Pictures are drawn at random, seeded.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pgsound.datasets import open_dataset, prepare_audio, prepare_sampled_piano, prepare_synthetic_piano
from pgsound.metrics.swd import sliced_wasserstein_distances
from pgsound.spectrogram import SpectrogramConfig


def pictures(path: Path, n: int, rng: np.random.Generator, skip: int = 0) -> torch.Tensor:
    dataset = open_dataset(path)
    level = dataset.levels[max(dataset.levels)]
    order = rng.permutation(len(level))[skip : skip + n]
    if len(order) < n:
        raise SystemExit(f"{path}: {len(level)} pictures, need {skip + n}")
    return torch.from_numpy(np.stack([level[int(i)] for i in order]).astype(np.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder")
    parser.add_argument("--size", default="128x128")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--soundfont", help="the sampled piano's SoundFont (default: the one in pretty_midi)")
    args = parser.parse_args()
    bins, frames = (int(v) for v in args.size.split("x"))
    config = SpectrogramConfig(n_fft=2 * bins, hop_length=min(128, bins), n_bins=bins, n_frames=frames)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        prepare_audio(tmp / "real.h5", args.folder, config)
        timings = {}
        t = time.perf_counter()
        prepare_synthetic_piano(tmp / "synthetic-piano.h5", config, minutes=args.minutes, seed=args.seed)
        timings["synthetic-piano"] = time.perf_counter() - t
        t = time.perf_counter()
        prepare_sampled_piano(tmp / "sampled-piano.h5", config, minutes=args.minutes, seed=args.seed,
                              soundfont=args.soundfont)
        timings["sampled-piano"] = time.perf_counter() - t
        rng = np.random.default_rng(args.seed)
        reals = pictures(tmp / "real.h5", 2 * args.n, rng)
        others = {"real (floor)": reals[args.n :]}
        for name in timings:
            others[name] = pictures(tmp / f"{name}.h5", args.n, np.random.default_rng(args.seed))
        results = sliced_wasserstein_distances(reals[: args.n], list(others.values()), seed=args.seed)
    keys = list(results[0])
    print(f"# {platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, {args.size}, "
          f"n = {args.n} a side, {time.perf_counter() - started:.0f} s")
    print("| against FOLDER | " + " | ".join(keys) + " |")
    print("|---|" + "---:|" * len(keys))
    for name, result in zip(others, results):
        print(f"| {name} | " + " | ".join(f"{result[k]:.1f}" for k in keys) + " |")
    for name, seconds in timings.items():
        print(f"prepare {name}, {args.minutes:g} min: {seconds:.1f} s")


if __name__ == "__main__":
    main()
