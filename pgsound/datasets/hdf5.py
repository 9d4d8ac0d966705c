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

This module reads the layout; :mod:`pgsound.datasets.writer` writes it.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pgsound.errors import MissingFileError, UserError

FORMAT = "pgsound-dataset"
LEVEL_NAME = re.compile(r"^data(\d+)x(\d+)$")


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
        if self.path.is_dir():
            raise DatasetError(f"{self.path} is a folder; expected a prepared dataset file (.h5)")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as error:
            raise DatasetError(f"{self.path} is not a readable HDF5 dataset: {one_line(error)}") from None
        try:
            self._read_structure()
        except BaseException:  # a refused file is closed at once: Windows cannot replace an open one
            self._file.close()
            raise

    def _read_structure(self) -> None:
        """The levels, their shapes, the metadata and the labels, each checked."""
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
        self.metadata: dict[str, Any] = self._read_metadata(attrs) if "metadata" in attrs else {
            "source": "NVIDIA h5tool.py", "count": self.count, "channels": self.channels,
            "resolution": list(self.resolution), "dtype": self.dtype.name,
        }
        self._check_value_range(full)
        self.labels = self._read_labels()
        self.num_labels = int(self.labels.max()) + 1 if self.labels is not None and len(self.labels) else 0
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

    def _read_metadata(self, attrs: Any) -> dict[str, Any]:
        try:
            metadata = json.loads(attrs["metadata"])
        except (TypeError, ValueError) as error:  # another program's attribute of that name
            raise DatasetError(f"{self.path}: its 'metadata' attribute is not pgsound's JSON ({error})") from None
        if not isinstance(metadata, dict):
            raise DatasetError(f"{self.path}: its 'metadata' attribute is not pgsound's JSON object")
        return metadata

    def _read_labels(self) -> np.ndarray | None:
        if "labels" in self._file:
            labels = np.asarray(CheckedLevel(self._file["labels"], self.path)[:], dtype=np.int64)
        else:
            beside = self.path.with_name(f"{self.path.stem}-labels.npy")
            if not beside.exists():
                return None
            try:
                onehot = np.load(beside, allow_pickle=False)
            except (ValueError, EOFError, OSError) as error:  # cut short, or not a .npy file
                raise DatasetError(f"{beside}: not a readable label array ({one_line(error)})") from None
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

        (book: chapter 9, "Preparing the dataset")
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
