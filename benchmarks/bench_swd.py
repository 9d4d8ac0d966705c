"""Time of one SWD evaluation (Laplacian pyramids, the paper's parameters) on N images per side (issue: metrics).

Ours: ``pgsound.metrics.swd.sliced_wasserstein_distance`` (torch, chunks of images, on the GPU when there is
one). Anchor, measured in the same run: the procedure as NVIDIA's 2018 metric code runs it, in NumPy/SciPy
(``scipy.ndimage.convolve`` pyramids in float32, descriptors by indexing, ``np.sort`` of each projection along
the descriptor axis). Both get the same neighbourhood positions and directions, so the table also prints how
far apart their SWD values are. The images are smooth random fields plus noise, stored as float16 in memory
(4096 pictures of 512x512 are 2 GiB per side) and converted chunk by chunk, as an HDF5 file would be read.

    .venv/bin/python benchmarks/bench_swd.py [--n 4096] [--sizes 32,512] [--threads 1] [--no-anchor]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import scipy.ndimage
import threadpoolctl
import torch
import torch.nn.functional as F

from pgsound.device import default_device
from pgsound.metrics import swd as S

KERNEL = (np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256.0).astype(np.float32)[None, None]


def smooth_fields(n: int, size: int, seed: int, chunk: int = 256) -> np.ndarray:
    """(n, 1, size, size) float16: bilinear upsampling of 8x8 Gaussian noise, plus a little white noise."""
    g = torch.Generator().manual_seed(seed)
    out = np.empty((n, 1, size, size), dtype=np.float16)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        coarse = torch.randn(stop - start, 1, 8, 8, generator=g)
        field = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
        out[start:stop] = (field + 0.1 * torch.randn(field.shape, generator=g)).numpy()
    return out


# ---------------------------------------------------------------- the anchor: NumPy/SciPy, as in 2018
def anchor_pyramid(x: np.ndarray, num_levels: int) -> list[np.ndarray]:
    levels = [x]
    for _ in range(1, num_levels):
        low = scipy.ndimage.convolve(levels[-1], KERNEL, mode="mirror")[:, :, ::2, ::2]
        spread = np.zeros_like(levels[-1])
        spread[:, :, ::2, ::2] = low
        levels[-1] = levels[-1] - scipy.ndimage.convolve(spread, 4 * KERNEL, mode="mirror")
        levels.append(low)
    return levels


def anchor_swd(reals: np.ndarray, fakes: np.ndarray, seed: int, batch: int = 64) -> dict[str, float]:
    generator = torch.Generator().manual_seed(seed)  # the same draws, in the same order, as ours
    shapes = S.pyramid_shapes(reals.shape)
    per_image, half = S.NHOODS_PER_IMAGE, S.NHOOD_SIZE // 2
    descriptors = []
    for images in (reals, fakes):
        positions = [S.random_positions(len(images), s, per_image, generator).numpy() for s in shapes]
        parts: list[list[np.ndarray]] = [[] for _ in shapes]
        for start in range(0, len(images), batch):
            stop = min(start + batch, len(images))
            for index, level in enumerate(anchor_pyramid(images[start:stop].astype(np.float32), len(shapes))):
                pos = positions[index][start * per_image:stop * per_image]
                image = np.arange(stop - start).repeat(per_image)
                parts[index].append(np.stack([
                    level[i, :, r - half:r + half + 1, c - half:c + half + 1] for i, (r, c) in zip(image, pos)
                ]))
        level_descriptors = []
        for p in parts:
            d = np.concatenate(p)
            d = d - d.mean(axis=(0, 2, 3), keepdims=True, dtype=np.float64).astype(np.float32)
            d = d / d.std(axis=(0, 2, 3), keepdims=True, dtype=np.float64).astype(np.float32)
            level_descriptors.append(d.reshape(len(d), -1))
        descriptors.append(level_descriptors)
    result = {}
    for shape, a, b in zip(shapes, *descriptors):
        directions = S.random_directions(a.shape[1], generator).numpy()
        per_repeat = [np.mean(np.abs(np.sort(a @ d, axis=0) - np.sort(b @ d, axis=0))) for d in directions]
        result[f"swd_{S.level_name(shape)}"] = 1e3 * float(np.mean(per_repeat))
    result["swd_avg"] = float(np.mean(list(result.values())))
    return result


def timed(fn, *args, **kwargs) -> tuple[float, dict[str, float]]:
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=4096, help="images per side")
    parser.add_argument("--sizes", default="32,512")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch, NumPy and SciPy")
    parser.add_argument("--no-anchor", action="store_true", help="skip the NumPy anchor (minutes at 512x512)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    threadpoolctl.threadpool_limits(args.threads)
    device = default_device()
    print(f"# {platform.machine()}, {args.threads} CPU threads, torch {torch.__version__}, device {device}, "
          f"{args.n} images per side, one channel")
    print(f"{'size':>5} | {'levels':>6} | {'ours (s)':>9} | {'anchor (s)':>10} | {'speed-up':>8} | "
          f"{'SWD avg ours':>12} | {'SWD avg anchor':>14} | {'max rel diff':>12}")
    print("-" * 97)
    for size in (int(s) for s in args.sizes.split(",")):
        reals = smooth_fields(args.n, size, seed=1)
        fakes = smooth_fields(args.n, size, seed=2)
        fakes[: args.n // 2] *= 1.5  # a different set: half the fakes have sharper, stronger fields
        ours_s, ours = timed(S.sliced_wasserstein_distance, reals, fakes, seed=0, device=device)
        levels = len(ours) - 1
        if args.no_anchor:
            print(f"{size:>5} | {levels:>6} | {ours_s:>9.1f} | {'-':>10} | {'-':>8} | {ours['swd_avg']:>12.2f} | "
                  f"{'-':>14} | {'-':>12}")
            continue
        anchor_s, anchor = timed(anchor_swd, reals, fakes, seed=0)
        diff = max(abs(ours[k] - anchor[k]) / max(abs(anchor[k]), 1e-12) for k in anchor)
        print(f"{size:>5} | {levels:>6} | {ours_s:>9.1f} | {anchor_s:>10.1f} | {anchor_s / ours_s:>7.1f}x | "
              f"{ours['swd_avg']:>12.2f} | {anchor['swd_avg']:>14.2f} | {diff:>12.1e}")


if __name__ == "__main__":
    main()
