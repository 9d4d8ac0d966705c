"""Preparing datasets: from generators, image folders or audio into one multi-resolution file.

(book: chapter 5 for synthetic shapes, chapter 9 for piano spectrograms)
"""

from __future__ import annotations

from pathlib import Path

from pgsound.datasets.hdf5 import DatasetWriter, PreparedDataset
from pgsound.datasets.shapes import SHAPES, make_shapes


def prepare_synthetic_shapes(
    path: str | Path, count: int = 4096, resolution: int = 32, seed: int = 0, chunk: int = 512
) -> PreparedDataset:
    """Write ``count`` synthetic shape images at ``resolution`` (every level down to 1x1) with shape labels."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    metadata = {
        "source": "synthetic-shapes", "seed": seed, "num_labels": len(SHAPES), "label_names": list(SHAPES),
        "value_mapping": "uint8 [0, 255] -> [-1, 1]",
    }
    with DatasetWriter(path, (resolution, resolution), 3, "uint8", metadata, with_labels=True) as writer:
        for start in range(0, count, chunk):
            images, labels = make_shapes(min(chunk, count - start), resolution, seed=seed * 1_000_003 + start)
            writer.add(images, labels)
    return PreparedDataset(path)
