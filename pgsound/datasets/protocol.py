"""What every dataset offers the trainer, the loader and the metrics: the two kinds share this interface.

:class:`~pgsound.datasets.hdf5.PreparedDataset` (a prepared HDF5 file, every level stored) and
:class:`~pgsound.datasets.arrays.ArrayDataset` (pictures in memory, levels made on demand) both satisfy it;
code that takes a dataset names :class:`Dataset` in its signature. (book: chapter 5, One dataset, every
resolution)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Dataset(Protocol):
    """Pictures at every level of a progressive run, with their labels and the metadata that made them."""

    path: Path | str | None  # the file, or None in memory
    count: int  # pictures
    channels: int
    resolution: tuple[int, int]  # (height, width) of the full-size pictures
    dtype: np.dtype  # how the pictures are stored (uint8 or float)
    labels: np.ndarray | None  # (count,) int64 class of each picture, or None
    num_labels: int
    metadata: dict[str, Any]  # the preparation's settings (spectrogram geometry, representation, source)

    def images(self, height: int, width: int) -> Any:
        """The pictures at the level of ``height`` x ``width``, stored values, indexable by picture."""

    def to_float(self, array: np.ndarray) -> np.ndarray:
        """Stored values to float32 in [-1, 1]."""

    def close(self) -> None:
        """Release the file, if any."""
