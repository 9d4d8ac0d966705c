"""Preparing datasets: from generators, image folders or audio into one multi-resolution file.

(book: chapter 5 for synthetic shapes and image folders, chapter 9 for piano spectrograms)

Every preparation streams into :class:`~pgsound.datasets.hdf5.DatasetWriter`, so a dataset larger than memory
can be prepared and an interrupted one leaves no file that looks complete. Audio is read and transformed in
parallel worker processes; a file that cannot be used is skipped and listed in the report, never fatal.
"""

from __future__ import annotations

import os
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from pgsound.audio_io import AudioError, find_audio_files, load_audio
from pgsound.datasets.hdf5 import DatasetWriter, PreparedDataset
from pgsound.datasets.images import iter_image_folder
from pgsound.datasets.shapes import SHAPES, make_shapes
from pgsound.errors import UserError
from pgsound.representations import channels_of, encode
from pgsound.spectrogram import SpectrogramConfig, split_audio
from pgsound.synth_piano import LOWEST, piano_dataset


@dataclass
class PreparationReport:
    """What a preparation did: files used, pictures written, files skipped with the reason, seconds taken."""

    path: Path
    files_used: int = 0
    images: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [f"{self.path}: {self.images} pictures from {self.files_used} files in {self.seconds:.1f} s"]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} file(s):")
            lines += [f"  {name}: {reason}" for name, reason in self.skipped]
        return "\n".join(lines)


def prepare_synthetic_shapes(
    path: str | Path, count: int = 4096, resolution: int = 32, seed: int = 0, chunk: int = 512
) -> PreparedDataset:
    """Write ``count`` synthetic shape images at ``resolution`` (every level down to 1x1) with shape labels."""
    if count < 1:
        raise UserError(f"count must be at least 1, got {count}")
    if resolution < 4 or resolution & (resolution - 1):  # before the writer makes levels down to 1x1
        raise UserError(f"resolution must be a power of two >= 4, got {resolution}")
    metadata = {
        "source": "synthetic-shapes", "seed": seed, "num_labels": len(SHAPES), "label_names": list(SHAPES),
        "value_mapping": "uint8 [0, 255] -> [-1, 1]",
    }
    with DatasetWriter(path, (resolution, resolution), 3, "uint8", metadata, with_labels=True) as writer:
        for start in range(0, count, chunk):
            images, labels = make_shapes(min(chunk, count - start), resolution, seed=seed * 1_000_003 + start)
            writer.add(images, labels)
    return PreparedDataset(path)


def prepare_synthetic_piano(
    path: str | Path,
    config: Any = None,
    minutes: float = 10.0,
    seed: int = 0,
    dtype: str = "float16",
    chunk: int = 128,
    progress: bool = False,
    representation: str = "magnitude",
    labels: str = "key",
) -> PreparedDataset:
    """The embedded synthetic piano as a spectrogram dataset, with pitch labels (book: chapter 9).

    Each picture is one phrase of :func:`pgsound.synth_piano.piano_dataset` exactly as long as the picture
    (``config.segment_length`` samples), so its label is exact: with ``labels="key"`` the key of the phrase's
    root (0 = A0 .. 87 = C8), with ``labels="octave"`` its octave (0 = A0..G#1, ..., 7 = A7..C8), fewer
    classes for conditional runs (chapter 11). ``representation`` is one of
    :data:`pgsound.representations.REPRESENTATIONS`. ``minutes`` of audio in all, seeded: the same arguments
    give the same file.
    """
    from tqdm.auto import tqdm


    config = config or SpectrogramConfig()
    if minutes <= 0:
        raise UserError(f"minutes must be positive, got {minutes}")
    if labels not in ("key", "octave"):
        raise UserError(f"labels must be 'key' or 'octave', got {labels!r}")
    count = max(1, int(round(minutes * 60 / config.segment_seconds)))
    names = ["A", "A#", "B", "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#"]
    if labels == "key":
        label_names = [f"{names[k % 12]}{(k + 9) // 12}" for k in range(88)]
        described = "key of the phrase's root: 0 = A0 (MIDI 21) .. 87 = C8 (MIDI 108)"
    else:
        label_names = [f"A{k}..G#{k + 1}" for k in range(8)]
        described = "octave of the phrase's root, counted from A: 0 = A0..G#1 .. 7 = A7..C8"
    metadata = {
        "source": "synthetic-piano", "seed": seed, "spectrogram": config.to_dict(),
        "representation": representation, "num_labels": len(label_names), "label_names": label_names,
        "labels": described,
        "value_mapping": f"log magnitude in dB, [{config.floor_db}, {config.ceiling_db}] -> [-1, 1]",
    }
    seconds = config.segment_length / config.sample_rate
    channels = channels_of(representation)
    with DatasetWriter(path, config.shape, channels, dtype, metadata, with_labels=True) as writer:
        with tqdm(total=count, unit="clip", disable=not progress, desc="synthetic piano") as bar:
            for start in range(0, count, chunk):
                n = min(chunk, count - start)
                audio, pitches = piano_dataset(n, seconds, config.sample_rate, seed=seed * 1_000_003 + start)
                keys = pitches - LOWEST
                writer.add(encode(audio, config, representation), keys if labels == "key" else keys // 12)
                bar.update(n)
    return PreparedDataset(path)


def prepare_images(path: str | Path, folder: str | Path, progress: bool = False) -> PreparedDataset:
    """A folder of PNG/JPEG images of one power-of-two size into a prepared dataset (uint8, every level).

    A file of another size or kind is a ``ValueError`` naming it; nothing is left behind under ``path``.
    """
    from tqdm.auto import tqdm

    files, (channels, height, width), batches = iter_image_folder(folder)
    metadata = {
        "source": str(Path(folder).resolve()), "files": len(files), "value_mapping": "uint8 [0, 255] -> [-1, 1]",
    }
    with DatasetWriter(path, (height, width), channels, "uint8", metadata) as writer:
        with tqdm(total=len(files), unit="img", disable=not progress, desc="prepare images") as bar:
            for batch in batches:
                writer.add(batch)
                bar.update(len(batch))
    return PreparedDataset(path)


# ---- audio -------------------------------------------------------------------------------------------------------
def _audio_file_to_frames(
    path: str, settings: dict[str, Any], dtype: str, representation: str
) -> tuple[str, np.ndarray | None, str]:
    """Worker: one file to pictures (N, C, n_bins, n_frames), or the reason it cannot be used."""
    import torch


    torch.set_num_threads(1)  # one process per core already
    config = SpectrogramConfig.from_dict(settings)
    try:
        audio = load_audio(path, config.sample_rate)
        frames = encode(split_audio(audio, config), config, representation)
    except (AudioError, ValueError) as error:
        return path, None, str(error)
    return path, frames.astype(dtype), ""


def prepare_audio(
    path: str | Path,
    folder: str | Path,
    config: Any = None,
    dtype: str = "float16",
    workers: int | None = None,
    progress: bool = False,
    representation: str = "magnitude",
) -> tuple[PreparedDataset, PreparationReport]:
    """A folder of recordings into a prepared spectrogram dataset (book: chapter 9, Piano spectrograms).

    Each file is read (WAV, FLAC, OGG, MP3), mixed to mono, resampled and cut into pictures by the sound path
    with ``config`` (a :class:`pgsound.spectrogram.SpectrogramConfig`; the reference 512x512 geometry by
    default), in ``workers`` processes (default: every core), in file order so that the dataset is
    reproducible. Bad files (corrupt, empty, silent, too short) are skipped and listed in the report. The
    spectrogram settings and the ``representation`` (:mod:`pgsound.representations`) are stored in the
    metadata so that pictures can be turned back into sound.
    """
    from tqdm.auto import tqdm


    config = config or SpectrogramConfig()
    started = time.perf_counter()
    files = find_audio_files(folder)
    report = PreparationReport(Path(path))
    settings = config.to_dict()
    metadata = {
        "source": str(Path(folder).resolve()), "spectrogram": settings, "representation": representation,
        "value_mapping": f"log magnitude in dB, [{config.floor_db}, {config.ceiling_db}] -> [-1, 1]",
    }
    workers = max(1, min(workers or os.cpu_count() or 1, len(files)))
    writer = DatasetWriter(path, config.shape, channels_of(representation), dtype, metadata)
    with writer, tqdm(total=len(files), unit="file", disable=not progress, desc="prepare audio") as bar:
        pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn")) if workers > 1 else None
        try:
            pending: deque[Future | tuple] = deque()
            queue = iter(files)

            def submit() -> None:
                file = next(queue, None)
                if file is None:
                    return
                if pool is None:
                    pending.append(_audio_file_to_frames(str(file), settings, dtype, representation))
                else:
                    pending.append(pool.submit(_audio_file_to_frames, str(file), settings, dtype, representation))

            for _ in range(2 * workers):  # a bounded window keeps memory flat on long folders
                submit()
            while pending:
                item = pending.popleft()
                name, frames, reason = item.result() if isinstance(item, Future) else item
                submit()
                bar.update(1)
                if frames is None:
                    report.skipped.append((name, reason))
                    continue
                writer.add(frames)
                report.files_used += 1
                report.images += len(frames)
            if report.images == 0:
                raise UserError(f"no usable audio in {folder}:\n" + report.summary())
            writer.metadata["files"] = report.files_used
            writer.metadata["skipped"] = [f"{name}: {reason}" for name, reason in report.skipped]
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
    report.seconds = time.perf_counter() - started
    return PreparedDataset(path), report
