"""Loader throughput: faded real minibatches per second at 32, 128 and 512 (issue: datasets).

Ours: ``LevelLoader.batch`` with the level held in memory and, separately, streamed from the HDF5 file
(``memory_budget=0``). Anchor, measured in the same run: the way older ports served data, a ``torch.utils.data``
``Dataset`` that reads one image per ``__getitem__`` from h5py and a ``DataLoader`` that collates them (the fade
then applied to the batch). Images per second; the ratio is ours over the anchor.

    .venv/bin/python benchmarks/bench_loader.py [--count 512] [--batch 16] [--seconds 3]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pgsound.datasets import DatasetWriter, LevelLoader, fade_reals, open_dataset
from pgsound.device import default_device


def make_file(path: Path, size: int, count: int, dtype: str) -> None:
    rng = np.random.default_rng(0)
    with DatasetWriter(path, (size, size), 1, dtype) as writer:
        for start in range(0, count, 64):
            n = min(64, count - start)
            writer.add(rng.uniform(-1, 1, size=(n, 1, size, size)).astype(np.float32))


def rate(fn, seconds: float, batch: int, device: torch.device) -> float:
    fn()  # warm-up (fills the in-memory cache)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        x = fn()
        done += batch
    if device.type == "cuda":
        torch.cuda.synchronize()
    del x
    return done / (time.perf_counter() - start)


class PerItemDataset(torch.utils.data.Dataset):
    """The anchor: one h5py read per image, as a map-style dataset."""

    def __init__(self, path: Path, size: int) -> None:
        self.path, self.size = path, size
        self.data = open_dataset(path).images(size, size)

    def __len__(self) -> int:
        return self.data.shape[0]

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(self.data[i].astype(np.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=512, help="images in each test file")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per cell")
    parser.add_argument("--sizes", default="32,128,512")
    parser.add_argument("--dtype", default="float16", choices=("float16", "float32", "uint8"))
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = default_device()
    print(f"# {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"device {device}, {args.count} images per file ({args.dtype}), batch {args.batch}, fade alpha 0.5")
    print(f"{'size':>5} | {'held (img/s)':>13} | {'streamed (img/s)':>16} | {'anchor (img/s)':>14} | "
          f"{'held/anchor':>11} | {'streamed/anchor':>15}")
    print("-" * 93)
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            r_held, r_stream, r_anchor = measure(Path(tmp) / f"d{size}.h5", size, args, device)
            print(f"{size:>5} | {r_held:>13.0f} | {r_stream:>16.0f} | {r_anchor:>14.0f} | "
                  f"{r_held / r_anchor:>10.1f}x | {r_stream / r_anchor:>14.1f}x")


def measure(path: Path, size: int, args: argparse.Namespace, device: torch.device) -> tuple[float, float, float]:
    make_file(path, size, args.count, args.dtype)
    dataset = open_dataset(path)
    level = int(np.log2(size // 4))
    held = LevelLoader(dataset, device, seed=0)
    streamed = LevelLoader(dataset, device, seed=0, memory_budget=0)
    r_held = rate(lambda: held.batch(level, args.batch, 0.5), args.seconds, args.batch, device)
    r_stream = rate(lambda: streamed.batch(level, args.batch, 0.5), args.seconds, args.batch, device)
    loader = torch.utils.data.DataLoader(PerItemDataset(path, size), batch_size=args.batch, shuffle=True)
    batches = iter(())

    def anchor() -> torch.Tensor:
        nonlocal batches
        x = next(batches, None)
        if x is None:
            batches = iter(loader)
            x = next(batches)
        return fade_reals(x.to(device), 0.5)

    r_anchor = rate(anchor, args.seconds, args.batch, device)
    dataset.close()
    return r_held, r_stream, r_anchor

if __name__ == "__main__":
    main()
