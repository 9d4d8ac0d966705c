"""Prepared multi-resolution datasets and the loader that serves them (book: chapters 5, 6 and 9).

- ``hdf5``: NVIDIA's HDF5 layout (``data{r}x{r}`` per level), our metadata, streamed atomic writing.
- ``shapes``: synthetic shapes for the image chapters.
- ``prepare``: building datasets from generators, image folders and audio.
- ``protocol``: :class:`Dataset`, what both kinds offer.
- ``loader``: minibatches of the current level with the reals faded like the networks.
"""

from pgsound.datasets.arrays import ArrayDataset
from pgsound.datasets.hdf5 import DatasetError, DatasetWriter, PreparedDataset, open_dataset
from pgsound.datasets.loader import LevelLoader, fade_reals
from pgsound.datasets.prepare import prepare_synthetic_shapes
from pgsound.datasets.protocol import Dataset

__all__ = [
    "ArrayDataset",
    "Dataset",
    "DatasetError",
    "DatasetWriter",
    "LevelLoader",
    "PreparedDataset",
    "fade_reals",
    "open_dataset",
    "prepare_synthetic_shapes",
]
