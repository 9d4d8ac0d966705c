"""Prepared multi-resolution datasets and the loader that serves them (book: chapters 5, 6 and 9).

- ``hdf5``: NVIDIA's HDF5 layout (``data{r}x{r}`` per level) and our metadata, read; ``writer``: the same
  layout written, streamed and atomic.
- ``prepare``: the pipeline every recording goes through (workers, the report, the disk check), and
  ``prepare_audio`` for a folder of recordings.
- one module per source, its preparation beside its catalogue: ``shapes`` (synthetic shapes), ``images``
  (a folder of images), ``pianos`` (the synthetic and the sampled piano), ``maestro``, ``nsynth``.
- ``protocol``: :class:`Dataset`, what both kinds offer.
- ``loader``: minibatches of the current level with the reals faded like the networks.
"""

from pgsound.datasets.arrays import ArrayDataset
from pgsound.datasets.hdf5 import DatasetError, PreparedDataset, open_dataset
from pgsound.datasets.images import prepare_images
from pgsound.datasets.loader import LevelLoader, fade_reals
from pgsound.datasets.maestro import prepare_maestro
from pgsound.datasets.nsynth import prepare_nsynth
from pgsound.datasets.pianos import prepare_sampled_piano, prepare_synthetic_piano
from pgsound.datasets.prepare import prepare_audio
from pgsound.datasets.protocol import Dataset
from pgsound.datasets.shapes import prepare_synthetic_shapes
from pgsound.datasets.writer import DatasetWriter

__all__ = [
    "ArrayDataset",
    "Dataset",
    "DatasetError",
    "DatasetWriter",
    "LevelLoader",
    "PreparedDataset",
    "fade_reals",
    "open_dataset",
    "prepare_audio",
    "prepare_images",
    "prepare_maestro",
    "prepare_nsynth",
    "prepare_sampled_piano",
    "prepare_synthetic_piano",
    "prepare_synthetic_shapes",
]
