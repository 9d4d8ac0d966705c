"""Prepared multi-resolution datasets in NVIDIA's HDF5 layout (book: chapter 9, Piano spectrograms).

One file holds every level: ``data{r}x{r}`` datasets of shape (N, C, r, r) from the full resolution down to
1x1, each level the 2x2 box average of the one above, as NVIDIA's ``h5tool.py`` writes them (uint8, labels in
``<name>-labels.npy`` beside the file). Non-square levels are named ``data{h}x{w}``. Our own files add a JSON
``metadata`` attribute (source, value mapping, spectrogram settings), may store float16/float32 values in
[-1, 1] (spectrograms), keep labels in a ``labels`` dataset, and carry ``complete = True`` only once fully
written: they are written under a temporary name and renamed at the end, so an interrupted preparation never
leaves a file that looks complete. Files prepared from recordings also say where each picture came from: a
``recordings`` dataset (one JSON object per recording: its file and, for MAESTRO and NSynth, its catalogue
entry) and a ``provenance`` dataset (per picture: the recording's index and the picture's start in seconds).

Every dataset we write carries HDF5's Fletcher-32 checksum per chunk, so that pixels a bad disk or a broken copy
changed are an error naming the file and the level when they are read (or by :meth:`PreparedDataset.verify`),
never pictures that train without a word. Files written before (and NVIDIA's) have none, and still load.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pgsound.errors import MissingFileError, UserError

FORMAT = "pgsound-dataset"
LEVEL_NAME = re.compile(r"^data(\d+)x(\d+)$")
VALUE_DTYPES = {"uint8": np.uint8, "float16": np.float16, "float32": np.float32}
PROVENANCE_DTYPE = np.dtype([("recording", np.int64), ("start_seconds", np.float64)])
DISK_MARGIN_BYTES = 4 * 2**20  # HDF5 needs room for its own bookkeeping beyond the pictures


class DatasetError(UserError):
    """A dataset file that is missing, incomplete or malformed; the message names the file."""


def one_line(error: BaseException) -> str:
    """An error's text on one line (HDF5's messages can span several)."""
    return " ".join(str(error).split()) or type(error).__name__


class CheckedLevel:
    """An h5py dataset whose failed reads (a chunk that fails its checksum) are a one-line DatasetError.

    Everything else (``shape``, ``dtype``, ``size``, ``chunks``, ...) is the h5py dataset's own.
    """

    def __init__(self, dataset: h5py.Dataset, path: Path) -> None:
        self._dataset = dataset
        self._path = path

    def __getitem__(self, key: Any) -> np.ndarray:
        try:
            return self._dataset[key]
        except OSError as error:
            raise damaged(self._path, self._dataset, error, key) from None

    def __len__(self) -> int:
        return len(self._dataset)

    def __iter__(self):
        for index in range(len(self._dataset)):
            yield self[index]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        array = self[()]
        return array if dtype is None else array.astype(dtype)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dataset, name)


def damaged(path: Path, dataset: h5py.Dataset, error: OSError, where: Any = None) -> DatasetError:
    """The one line for a read of ``dataset`` that failed: a checksum that does not match is damage."""
    name = dataset.name.lstrip("/")
    place = (f" (pictures {where})" if isinstance(where, str) else
             f" (picture {where})" if isinstance(where, (int, np.integer)) else "")
    if dataset.fletcher32:
        return DatasetError(f"{path}: {name}{place} is damaged: a chunk fails its Fletcher-32 checksum "
                            f"(HDF5: {one_line(error)}); the file was changed on disk or in a copy: copy or "
                            f"prepare it again")
    return DatasetError(f"{path}: {name}{place} cannot be read (HDF5: {one_line(error)}); copy or prepare it again")


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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = h5py.File(self.tmp_path, "w")
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

    def check_space(self, images: int) -> None:
        """Refuse, before writing, ``images`` more images that the disk cannot hold (a DatasetError naming it).

        HDF5 buffers its writes and, on a full disk, reports the failure only when it frees its buffers
        (and may crash the process then); asking first keeps the failure a message and lets the partial file
        be removed. The file is flushed first so that the free space counts everything written so far.
        """
        if self._file is not None:
            try:
                self._file.flush()
            except OSError as error:
                raise DatasetError(f"cannot write {self.tmp_path} (for {self.path}): {one_line(error)}") from None
        folder = self.tmp_path.parent
        needed = images * self.bytes_per_image() + DISK_MARGIN_BYTES
        free = shutil.disk_usage(folder).free
        if free < needed:
            raise DatasetError(
                f"no space left on {folder} for {self.path.name}: {free / 2**20:.0f} MiB free, "
                f"{needed / 2**20:.0f} MiB needed for the next {images} picture(s); nothing was kept, "
                f"free some space or write elsewhere with -o"
            )

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
        self.check_space(n)
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


class PreparedDataset:
    """A prepared file opened for reading: our files and NVIDIA's ``h5tool.py`` files alike.

    Attributes: ``path``, ``resolution`` (H, W), ``channels``, ``count``, ``num_labels`` (0 without labels),
    ``metadata`` (a dict; NVIDIA files get a minimal one), ``dtype``. ``images(h, w)`` is the h5py dataset of
    one level; ``labels`` an int64 array or None.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            partial = self.path.with_name(f".{self.path.name}.partial")
            hint = " (an interrupted preparation left a partial file; run it again)" if partial.exists() else ""
            raise MissingFileError(f"no dataset at {self.path}{hint}")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as error:
            raise DatasetError(f"{self.path} is not a readable HDF5 dataset: {one_line(error)}") from None
        attrs = self._file.attrs
        if attrs.get("format") == FORMAT and not attrs.get("complete", False):
            raise DatasetError(f"{self.path} is incomplete: its preparation was interrupted; prepare it again")
        self.levels: dict[tuple[int, int], CheckedLevel] = {}
        for name, item in self._file.items():
            match = LEVEL_NAME.match(name)
            if match and isinstance(item, h5py.Dataset):
                self.levels[(int(match.group(1)), int(match.group(2)))] = CheckedLevel(item, self.path)
        if not self.levels:
            raise DatasetError(f"{self.path} holds no data{{h}}x{{w}} datasets: not a prepared dataset")
        self.resolution = max(self.levels, key=lambda s: s[0] * s[1])
        full = self.levels[self.resolution]
        self.count, self.channels = int(full.shape[0]), int(full.shape[1])
        self.dtype = full.dtype
        for shape, ds in self.levels.items():
            if ds.shape != (self.count, self.channels, *shape):
                raise DatasetError(f"{self.path}: level data{shape[0]}x{shape[1]} has shape {ds.shape}, "
                                   f"expected {(self.count, self.channels, *shape)}")
        self.metadata: dict[str, Any] = json.loads(attrs["metadata"]) if "metadata" in attrs else {
            "source": "NVIDIA h5tool.py", "count": self.count, "channels": self.channels,
            "resolution": list(self.resolution), "dtype": self.dtype.name,
        }
        self._check_value_range(full)
        self.labels = self._read_labels()
        self.num_labels = int(self.labels.max()) + 1 if self.labels is not None else 0
        if "num_labels" in self.metadata:
            self.num_labels = int(self.metadata["num_labels"])

    def _check_value_range(self, full: CheckedLevel) -> None:
        """Float pictures must already be in [-1, 1] (uint8 ones are mapped): a few are read to check.

        Float data in [0, 255] or [0, 1] would train without complaint and teach G the wrong range.
        """
        if self.dtype == np.uint8 or self.count == 0:
            return
        indices = sorted({0, self.count // 2, self.count - 1})
        sample = np.asarray(full[indices], dtype=np.float32)
        low, high = float(sample.min()), float(sample.max())
        if low < -1.5 or high > 1.5:
            raise DatasetError(f"{self.path}: float pictures must be in [-1, 1], but these reach [{low:g}, {high:g}]"
                               f" (uint8 pictures are mapped from [0, 255]; float ones are used as stored)")

    def _read_labels(self) -> np.ndarray | None:
        if "labels" in self._file:
            labels = np.asarray(CheckedLevel(self._file["labels"], self.path)[:], dtype=np.int64)
        else:
            beside = self.path.with_name(f"{self.path.stem}-labels.npy")
            if not beside.exists():
                return None
            onehot = np.load(beside)
            if onehot.ndim != 2 or len(onehot) != self.count:
                raise DatasetError(f"{beside}: expected one-hot labels of shape ({self.count}, K), got {onehot.shape}")
            labels = onehot.argmax(axis=1).astype(np.int64)
        if len(labels) != self.count:
            raise DatasetError(f"{self.path}: {len(labels)} labels for {self.count} images")
        return labels

    @functools.cached_property
    def recordings(self) -> list[dict[str, Any]]:
        """The recordings the pictures came from (empty for data not prepared from recordings)."""
        if "recordings" not in self._file:
            return []
        return [json.loads(text) for text in self._file["recordings"].asstr()[:]]

    def provenance(self, index: int) -> tuple[dict[str, Any], float]:
        """Where picture ``index`` came from: its recording's entry and its start in seconds in it.

        (book: chapter 9, "From recordings to a dataset")
        """
        if "provenance" not in self._file:
            raise DatasetError(f"{self.path} records no provenance (it was not prepared from recordings)")
        if not 0 <= index < self.count:
            raise IndexError(f"picture {index} is outside 0..{self.count - 1}")
        row = CheckedLevel(self._file["provenance"], self.path)[index]
        return self.recordings[int(row["recording"])], float(row["start_seconds"])

    def label_counts(self) -> np.ndarray:
        """Images per label (an empty array without labels)."""
        if self.labels is None:
            return np.zeros(0, dtype=np.int64)
        return np.bincount(self.labels, minlength=self.num_labels)

    @property
    def checksums(self) -> bool:
        """Whether every level carries Fletcher-32 checksums (files written before them, and NVIDIA's, do not)."""
        return all(level.fletcher32 for level in self.levels.values())

    def verify(self) -> int:
        """Read every chunk of every dataset in the file; a damaged one is a DatasetError naming its level.

        Returns the bytes read. Only files with checksums (:attr:`checksums`) can tell damaged pixels from
        good ones; in others only what HDF5 itself cannot read is found.
        """
        total = 0
        for item in self._file.values():
            if not isinstance(item, h5py.Dataset) or not item.shape:
                continue
            step = item.chunks[0] if item.chunks else max(1, len(item))
            for start in range(0, len(item), step):
                try:
                    total += item[start : start + step].nbytes
                except OSError as error:
                    raise damaged(self.path, item, error, f"{start}..{min(start + step, len(item)) - 1}") from None
        return total

    def images(self, height: int, width: int) -> CheckedLevel:
        if (height, width) not in self.levels:
            have = ", ".join(f"{h}x{w}" for h, w in sorted(self.levels))
            raise DatasetError(f"{self.path} has no {height}x{width} level (it has {have})")
        return self.levels[(height, width)]

    def to_float(self, array: np.ndarray) -> np.ndarray:
        """Stored values to float32 in [-1, 1]: uint8 maps [0, 255] -> [-1, 1], floats are kept."""
        if array.dtype == np.uint8:
            return array.astype(np.float32) / 127.5 - 1.0
        return array.astype(np.float32)

    def close(self) -> None:
        self._file.close()

    def __repr__(self) -> str:
        h, w = self.resolution
        return (f"PreparedDataset({str(self.path)!r}, {self.count} images, {self.channels}x{h}x{w}, "
                f"{self.dtype.name}, {len(self.levels)} levels, {self.num_labels} labels, "
                f"{'Fletcher-32 checksums' if self.checksums else 'no checksums'})")


def open_dataset(path: str | Path) -> PreparedDataset:
    """Open a prepared dataset (ours or NVIDIA's). (book: chapter 9, Piano spectrograms)"""
    return PreparedDataset(path)
