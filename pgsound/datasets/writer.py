"""Writing a prepared dataset: every level streamed into one HDF5 file, atomically (book: chapter 9).

:class:`DatasetWriter` builds each level as NVIDIA's ``h5tool.py`` does (the 2x2 box average of the unrounded
level above, rounded only when stored) and writes the layout that :mod:`pgsound.datasets.hdf5` reads: under a
temporary name, with Fletcher-32 checksums per chunk, renamed to its own name only once complete.
:class:`~pgsound.datasets.arrays.ArrayDataset` builds its levels with the same :func:`level_shapes` and
:func:`box_downsample`.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pgsound.datasets.hdf5 import FORMAT, DatasetError, one_line

VALUE_DTYPES = {"uint8": np.uint8, "float16": np.float16, "float32": np.float32}
PROVENANCE_DTYPE = np.dtype([("recording", np.int64), ("start_seconds", np.float64)])
DISK_MARGIN_BYTES = 4 * 2**20  # HDF5 needs room for its own bookkeeping beyond the pictures


def level_shapes(height: int, width: int) -> list[tuple[int, int]]:
    """Every level's (h, w) from full size down, halving while both sides are even (4x4 .. 1x1 included)."""
    shapes = [(height, width)]
    while shapes[-1][0] % 2 == 0 and shapes[-1][1] % 2 == 0:
        shapes.append((shapes[-1][0] // 2, shapes[-1][1] // 2))
    return shapes


def box_downsample(images: np.ndarray) -> np.ndarray:
    """2x2 box average in float32, the way h5tool.py builds each lower level from the unrounded one above."""
    x = images.astype(np.float32)
    return (x[:, :, 0::2, 0::2] + x[:, :, 0::2, 1::2] + x[:, :, 1::2, 0::2] + x[:, :, 1::2, 1::2]) * 0.25


def quantise(images: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Values as stored: uint8 rounded and clipped to [0, 255] (as h5tool.py stores them), floats cast."""
    if np.dtype(dtype) == np.uint8:
        return np.uint8(np.clip(np.round(images), 0, 255))
    return images.astype(dtype)


class DatasetWriter:
    """Streams images (N, C, H, W) into a prepared file, level by level, without holding the whole set.

    Use as a context manager; the file appears under its final name only when the block ends without error.
    """

    def __init__(
        self,
        path: str | Path,
        resolution: tuple[int, int],
        channels: int,
        dtype: str = "uint8",
        metadata: dict[str, Any] | None = None,
        chunk: int = 64,
        with_labels: bool = False,
        with_provenance: bool = False,
    ) -> None:
        if dtype not in VALUE_DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(VALUE_DTYPES)}, got {dtype!r}")
        if channels not in (1, 2, 3):
            raise ValueError(f"channels must be 1, 2 or 3, got {channels}")
        self.path = Path(path)
        self.tmp_path = self.path.with_name(f".{self.path.name}.partial")
        self.shapes = level_shapes(*resolution)
        self.channels = channels
        self.dtype = VALUE_DTYPES[dtype]
        self.metadata = dict(metadata or {})
        self.chunk = chunk
        self.with_labels = with_labels
        self.with_provenance = with_provenance
        self.recordings: list[dict[str, Any]] = []  # with provenance: one entry per recording, in index order
        self.count = 0
        self._file: h5py.File | None = None

    def __enter__(self) -> DatasetWriter:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = h5py.File(self.tmp_path, "w")
        except OSError as error:  # h5py's errors name no file: this one names the output
            raise DatasetError(f"{self.path}: the dataset file cannot be created ({one_line(error)})") from None
        for h, w in self.shapes:
            self._file.create_dataset(
                f"data{h}x{w}", shape=(0, self.channels, h, w), maxshape=(None, self.channels, h, w),
                dtype=self.dtype, chunks=(self._chunk_images(h, w), self.channels, h, w), fletcher32=True,
            )
        if self.with_labels:
            self._file.create_dataset("labels", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(4096,),
                                      fletcher32=True)
        if self.with_provenance:
            self._file.create_dataset("provenance", shape=(0,), maxshape=(None,), dtype=PROVENANCE_DTYPE,
                                      chunks=(4096,), fletcher32=True)
        self._file.attrs["format"] = FORMAT
        self._file.attrs["complete"] = False
        return self

    def _chunk_images(self, height: int, width: int) -> int:
        # A random read fetches whole chunks: keep them near 1 MiB so that a 512x512 image costs one image.
        image_bytes = self.channels * height * width * np.dtype(self.dtype).itemsize
        return int(max(1, min(self.chunk, 2**20 // image_bytes)))

    def bytes_per_image(self) -> int:
        """Stored bytes of one image at every level together."""
        return sum(self.channels * h * w for h, w in self.shapes) * np.dtype(self.dtype).itemsize

    def flush(self) -> None:
        """Hand HDF5's buffered writes to the disk (a DatasetError naming the file when it cannot)."""
        if self._file is not None:
            try:
                self._file.flush()
            except OSError as error:
                raise DatasetError(f"cannot write {self.tmp_path} (for {self.path}): {one_line(error)}") from None

    def add(self, images: np.ndarray, labels: np.ndarray | None = None,
            provenance: np.ndarray | None = None) -> None:
        """Append full-resolution images (N, C, H, W): uint8 in [0, 255] or floats in [-1, 1].

        With labels, one int per image; with provenance, one ``(recording, start_seconds)`` pair per image
        (:data:`PROVENANCE_DTYPE`), the recording an index into :attr:`recordings`.
        """
        assert self._file is not None, "use DatasetWriter as a context manager"
        expected = (self.channels, *self.shapes[0])
        if images.ndim != 4 or images.shape[1:] != expected:
            raise ValueError(f"expected images of shape (N, {', '.join(map(str, expected))}), got {images.shape}")
        if self.with_labels != (labels is not None):
            raise ValueError("labels must be given with every batch, or never" if self.with_labels else
                             "this writer was created without labels")
        if self.with_provenance != (provenance is not None):
            raise ValueError("provenance must be given with every batch, or never" if self.with_provenance else
                             "this writer was created without provenance")
        n = len(images)
        check_disk_space([(self, n)])
        try:
            level = images
            for i, (h, w) in enumerate(self.shapes):
                if i:
                    level = box_downsample(level)
                ds = self._file[f"data{h}x{w}"]
                ds.resize(self.count + n, axis=0)
                ds[self.count :] = quantise(level, self.dtype)
            if labels is not None:
                self._file["labels"].resize(self.count + n, axis=0)
                self._file["labels"][self.count :] = np.asarray(labels, dtype=np.int64)
            if provenance is not None:
                self._file["provenance"].resize(self.count + n, axis=0)
                self._file["provenance"][self.count :] = np.asarray(provenance, dtype=PROVENANCE_DTYPE)
        except OSError as error:
            raise DatasetError(f"cannot write {self.tmp_path} (for {self.path}): {one_line(error)}; nothing was "
                               f"kept") from None
        self.count += n

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self._file is not None
        replaced = False
        try:
            if exc_type is None:
                if self.count == 0:
                    raise DatasetError(f"{self.path}: no images were written")
                try:
                    self.metadata.update(count=self.count, channels=self.channels,
                                         resolution=list(self.shapes[0]), dtype=np.dtype(self.dtype).name)
                    self._file.attrs["metadata"] = json.dumps(self.metadata)
                    if self.with_provenance:
                        self._file.create_dataset("recordings", data=[json.dumps(r) for r in self.recordings],
                                                  dtype=h5py.string_dtype())
                    self._file.attrs["complete"] = True
                    self._file.close()
                    os.replace(self.tmp_path, self.path)
                    replaced = True
                except OSError as error:
                    raise DatasetError(f"cannot finish {self.tmp_path} (for {self.path}): {one_line(error)}; "
                                       f"nothing was kept") from None
        finally:
            if self._file.id.valid:
                self._file.close()
            if not replaced:
                self.tmp_path.unlink(missing_ok=True)


def check_disk_space(pictures: Iterable[tuple[DatasetWriter, int]],
                     advice: str = "free some space or write elsewhere with -o") -> None:
    """Refuse, before writing, pictures that the disk cannot hold: a DatasetError naming the folder and the files.

    ``pictures`` pairs each writer with the count of pictures it is about to write: a preparation's whole count
    before its work starts (files on one disk add up, MAESTRO's splits), and :meth:`DatasetWriter.add` each
    batch. HDF5 buffers its writes and, on a full disk, reports the failure only when it frees its buffers (and
    may crash the process then); asking first keeps the failure a message and lets the partial files be removed.
    Open files are flushed first, so that the free space counts everything written so far.
    """
    disks: dict[int, tuple[Path, list[str], int, int]] = {}
    for writer, count in pictures:
        writer.flush()
        folder = writer.path.parent.resolve()
        while not folder.exists():  # a folder the writer will create: its disk is its nearest existing parent's
            folder = folder.parent
        where, names, total, needed = disks.get(folder.stat().st_dev, (folder, [], 0, 0))
        disks[folder.stat().st_dev] = (where, [*names, writer.path.name], total + count,
                                       needed + count * writer.bytes_per_image() + DISK_MARGIN_BYTES)
    for folder, names, total, needed in disks.values():
        free = shutil.disk_usage(folder).free
        if free < needed:
            raise DatasetError(f"no space left on {folder} for {', '.join(names)}: {_size(free)} free, "
                               f"{_size(needed)} needed for {total} more picture(s); nothing was kept, {advice}")


def _size(size_bytes: int) -> str:
    return f"{size_bytes / 2**30:.1f} GiB" if size_bytes >= 2**30 else f"{size_bytes / 2**20:.0f} MiB"
