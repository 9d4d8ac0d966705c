"""A dataset held in memory: the prepared-file interface over NumPy arrays (book: chapter 10, The full 512x512 run).

``pgsound preflight`` walks a schedule before any data exists, on random pictures of the shape the run will
see; tests use it for small data without a file. Every level is the 2x2 box average of the one above, as in
a prepared file, so the loader's fade sees what it would see in a real one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pgsound.datasets.hdf5 import DatasetError
from pgsound.datasets.writer import box_downsample, level_shapes


class ArrayDataset:
    """``images`` (N, C, H, W) float32 in [-1, 1] and optional int labels, with every level built from them."""

    def __init__(
        self, images: np.ndarray, labels: np.ndarray | None = None, metadata: dict[str, Any] | None = None,
        num_labels: int | None = None,
    ) -> None:
        if images.ndim != 4:
            raise DatasetError(f"images must have shape (N, C, H, W), got {images.shape}")
        self.path = None
        self.count, self.channels = int(images.shape[0]), int(images.shape[1])
        self.resolution = (int(images.shape[2]), int(images.shape[3]))
        self.dtype = np.dtype(np.float32)
        self.levels: dict[tuple[int, int], np.ndarray] = {}
        level = images.astype(np.float32)
        for shape in level_shapes(*self.resolution):
            if shape != self.resolution:
                level = box_downsample(level)
            self.levels[shape] = level
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        if self.labels is not None and len(self.labels) != self.count:
            raise DatasetError(f"{len(self.labels)} labels for {self.count} images")
        if num_labels is None:
            num_labels = int(self.labels.max()) + 1 if self.labels is not None else 0
        self.num_labels = num_labels
        self.metadata = dict(metadata or {"source": "arrays", "count": self.count})

    @classmethod
    def random(
        cls, count: int, channels: int, resolution: tuple[int, int], num_labels: int = 0, seed: int = 0
    ) -> ArrayDataset:
        """Uniform noise pictures in [-1, 1] (and uniform labels): the shape of a dataset, not its content."""
        rng = np.random.default_rng(seed)
        images = rng.random((count, channels, *resolution), dtype=np.float32) * 2 - 1
        labels = rng.integers(0, num_labels, size=count) if num_labels else None
        metadata = {"source": "random pictures", "count": count}
        return cls(images, labels, metadata, num_labels=num_labels)

    def images(self, height: int, width: int) -> np.ndarray:
        if (height, width) not in self.levels:
            have = ", ".join(f"{h}x{w}" for h, w in sorted(self.levels))
            raise DatasetError(f"these pictures have no {height}x{width} level (they have {have})")
        return self.levels[(height, width)]

    def to_float(self, array: np.ndarray) -> np.ndarray:
        return array.astype(np.float32)

    def label_counts(self) -> np.ndarray:
        if self.labels is None:
            return np.zeros(0, dtype=np.int64)
        return np.bincount(self.labels, minlength=self.num_labels)

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        h, w = self.resolution
        return f"ArrayDataset({self.count} images, {self.channels}x{h}x{w}, {self.num_labels} labels)"
