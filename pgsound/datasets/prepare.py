"""Preparing datasets: from generators, image folders or audio into one multi-resolution file.

Chapter 5 prepares synthetic shapes and image folders, chapter 9 piano spectrograms.
(book: chapters 5 and 9)

Every preparation streams into :class:`~pgsound.datasets.writer.DatasetWriter`, so a dataset larger than memory
can be prepared and an interrupted one leaves no file that looks complete. Audio is read and transformed in
parallel worker processes; a file that cannot be used is skipped and listed in the report, never fatal.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from pgsound.audio_io import AudioError, find_audio_files, load_audio
from pgsound.datasets.hdf5 import PreparedDataset
from pgsound.datasets.writer import PROVENANCE_DTYPE, DatasetWriter, check_disk_space
from pgsound.errors import MissingFileError, UserError
from pgsound.representations import channels_of, encode
from pgsound.spectrogram import SpectrogramConfig, split_audio


@dataclass
class PreparationReport:
    """What a preparation did: files used, pictures written, files skipped with the reason, seconds taken."""

    path: Path
    files_used: int = 0
    images: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    left_out: list[tuple[str, float]] = field(default_factory=list)  # (file, seconds no picture covers)

    def summary(self) -> str:
        lines = [f"{self.path}: {self.images} pictures from {self.files_used} files in {self.seconds:.1f} s"]
        if self.left_out:
            total = sum(seconds for _, seconds in self.left_out)
            lines.append(f"left out: {total:.1f} s of audio that no picture covers, in {len(self.left_out)} file(s) "
                         f"(a last piece shorter than the framing keeps, or the end of each crop part)")
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} file(s):")
            lines += [f"  {name}: {reason}" for name, reason in self.skipped]
        return "\n".join(lines)


@dataclass(frozen=True)
class Recording:
    """One recording to prepare: its file, its label (or None) and the entry recorded as its provenance."""

    path: Path
    label: int | None = None
    entry: dict[str, Any] = field(default_factory=dict)


def _end_with_parent(parent: int) -> None:
    """Pool initializer: this worker ends when the process that started it dies, even by SIGKILL.

    A killed parent cannot shut its pool down, and spawned workers would live on under PID 1 holding their
    memory (and the resource tracker, which waits for every holder of its pipe). On Linux the kernel sends
    SIGKILL on the parent's death (``PR_SET_PDEATHSIG``); elsewhere a daemon thread watches the parent's PID.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != parent:  # the parent died before the request was made: no signal will come
                os._exit(1)
            return
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="watch-parent").start()


def _watch_parent(parent: int, interval: float = 0.5) -> None:
    """Exit this process as soon as its parent is gone (it is then adopted: another parent PID)."""
    while os.getppid() == parent:
        time.sleep(interval)
    os._exit(1)


# A recording of more pictures than this is analysed and handed over in steps of this many: a 3-hour file
# would need 5.5 GB for one STFT of all its windows at the reference geometry.
PICTURES_PER_STEP = 64
# A recording of more pictures than this goes from the worker to the writer through a scratch file beside the
# output, not through memory (and a pipe): its pictures alone would fill a small machine.
PICTURES_IN_MEMORY = 512


def piece_count(samples: int, config: SpectrogramConfig) -> int:
    """How many pictures :func:`pgsound.spectrogram.split_audio` cuts ``samples`` samples into."""
    length = config.segment_length if config.framing == "consecutive" else config.part_samples
    count, rest = divmod(samples, length)
    tail = config.framing == "consecutive" and rest > 0 and rest >= config.min_last_fraction * length
    return count + int(tail)


def covered_samples(samples: int, pictures: int, config: SpectrogramConfig) -> int:
    """Samples of a recording that its ``pictures`` show (the rest is left out by the framing)."""
    if config.framing == "consecutive":
        return min(samples, pictures * config.segment_length)
    return pictures * config.segment_length  # each crop part shows its first segment_length samples


def encode_in_steps(
    audio: np.ndarray, config: SpectrogramConfig, representation: str, out: np.ndarray, step: int | None = None
) -> np.ndarray:
    """The pictures of ``audio`` into ``out`` (N, C, H, W), ``step`` windows at a time (bounded memory).

    The same pictures as ``encode(split_audio(audio, config), ...)``: each window is transformed on its own,
    so cutting the recording at window boundaries changes nothing.
    """
    step = step or PICTURES_PER_STEP
    length = config.segment_length if config.framing == "consecutive" else config.part_samples
    for start in range(0, len(out), step):
        stop = min(start + step, len(out))
        part = audio[start * length : stop * length if stop < len(out) else None]
        out[start:stop] = encode(split_audio(part, config)[: stop - start], config, representation)
    return out


def _audio_file_to_frames(
    path: str, settings: dict[str, Any], dtype: str, representation: str, first_only: bool, scratch: str
) -> tuple[str, np.ndarray | str | None, str, float]:
    """Worker: one file to pictures (N, C, n_bins, n_frames), or the reason it cannot be used.

    Returns the file, its pictures (in memory, or for a long recording the path of a scratch ``.npy`` file in
    ``scratch`` that the caller removes), the reason it was skipped, and the seconds no picture covers.
    """
    import torch

    torch.set_num_threads(1)  # one process per core already
    config = SpectrogramConfig.from_dict(settings)
    try:
        audio = load_audio(path, config.sample_rate)
        count = 1 if first_only else piece_count(audio.size, config)
        if count == 0:
            split_audio(audio, config)  # raises: too short for one piece, with both lengths
        shape = (count, channels_of(representation), *config.shape)
        if count <= PICTURES_IN_MEMORY:
            frames = encode_in_steps(audio, config, representation, np.empty(shape, dtype=dtype))
        else:
            frames = _encode_to_scratch(audio, config, representation, shape, dtype, scratch)
    except (AudioError, MissingFileError, ValueError) as error:  # skipped, named in the summary
        return path, None, str(error), 0.0
    left_out = 0.0 if first_only else (audio.size - covered_samples(audio.size, count, config)) / config.sample_rate
    return path, frames, "", left_out


def _encode_to_scratch(
    audio: np.ndarray, config: SpectrogramConfig, representation: str, shape: tuple[int, ...], dtype: str,
    scratch: str,
) -> str:
    """A long recording's pictures into a hidden ``.npy`` file in ``scratch``; returns its path."""
    with tempfile.NamedTemporaryFile(dir=scratch, prefix=".pictures-", suffix=".npy", delete=False) as file:
        name = file.name
    try:
        frames = np.lib.format.open_memmap(name, "w+", dtype=dtype, shape=shape)
        if hasattr(os, "posix_fallocate"):  # a full disk under a memory map is a SIGBUS; here it is an OSError
            with open(name, "rb+") as handle:
                os.posix_fallocate(handle.fileno(), 0, os.path.getsize(name))
        encode_in_steps(audio, config, representation, frames).flush()
        del frames
    except OSError as error:
        Path(name).unlink(missing_ok=True)
        size = int(np.prod(shape)) * np.dtype(dtype).itemsize
        raise UserError(f"no room in {Path(scratch).parent} for its {shape[0]} pictures ({size / 2**20:.0f} MiB, "
                        f"held there until they are written): {error.strerror or error}") from None
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return name


def piece_seconds(config: SpectrogramConfig) -> float:
    """Seconds from one picture's start to the next one's in a recording (the framing's step)."""
    step = config.segment_length if config.framing == "consecutive" else config.part_samples
    return step / config.sample_rate


def add_recording(
    writer: DatasetWriter, entry: dict[str, Any], frames: np.ndarray, step: float, labels: np.ndarray | None = None
) -> None:
    """Write one recording's pictures, consecutive and ``step`` seconds apart, with their provenance.

    In parts of :data:`PICTURES_PER_STEP` pictures: ``frames`` may be a memory-mapped file larger than memory.
    """
    provenance = np.zeros(len(frames), dtype=PROVENANCE_DTYPE)
    provenance["recording"] = len(writer.recordings)
    provenance["start_seconds"] = np.arange(len(frames)) * step
    writer.recordings.append(entry)
    for start in range(0, len(frames), PICTURES_PER_STEP):
        part = slice(start, start + PICTURES_PER_STEP)
        writer.add(np.asarray(frames[part]), None if labels is None else labels[part], provenance[part])


def write_recordings(
    writer: DatasetWriter,
    recordings: list[Recording],
    config: SpectrogramConfig,
    representation: str = "magnitude",
    workers: int | None = None,
    progress: bool = False,
    first_only: bool = False,
    description: str = "prepare audio",
) -> PreparationReport:
    """Decode ``recordings`` in parallel and stream their pictures into ``writer``, in the given order.

    Each picture's provenance (its recording's index in ``writer.recordings`` and its start in seconds) is
    written beside it; with ``first_only`` a recording gives only its first picture (an NSynth note). A file
    that cannot be used is skipped and listed in the report; no usable file at all is a UserError.
    (book: chapter 9, "Preparing the dataset")
    """
    from tqdm import tqdm  # text bars: the widget bar needs ipywidgets and a kernel

    started = time.perf_counter()
    report = PreparationReport(writer.path)
    settings, dtype = config.to_dict(), np.dtype(writer.dtype).name
    # Long recordings' pictures wait on the output's disk, not in memory, in a folder of this output's own:
    # what a killed preparation left there goes when the next one starts.
    scratch_folder = writer.path.with_name(f".{writer.path.name}.scratch")
    shutil.rmtree(scratch_folder, ignore_errors=True)
    scratch_folder.mkdir(parents=True)
    scratch = str(scratch_folder)
    step = piece_seconds(config)
    workers = max(1, min(workers or os.cpu_count() or 1, len(recordings)))
    with tqdm(total=len(recordings), unit="file", disable=not progress, desc=description) as bar:
        pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_end_with_parent,
                                   initargs=(os.getpid(),)) if workers > 1 else None
        try:
            pending: deque[tuple[Recording, Future | tuple]] = deque()
            queue = iter(recordings)

            def submit() -> None:
                recording = next(queue, None)
                if recording is None:
                    return
                job = (str(recording.path), settings, dtype, representation, first_only, scratch)
                pending.append((recording, pool.submit(_audio_file_to_frames, *job) if pool is not None
                                else _audio_file_to_frames(*job)))

            for _ in range(2 * workers):  # a bounded window keeps memory flat on long folders
                submit()
            while pending:
                recording, item = pending.popleft()
                name, frames, reason, left_out = item.result() if isinstance(item, Future) else item
                submit()
                bar.update(1)
                if frames is None:
                    report.skipped.append((name, reason))
                    continue
                n = _add_worker_frames(writer, recording, name, frames, step)
                report.files_used += 1
                report.images += n
                if left_out > 0:
                    report.left_out.append((name, left_out))
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
            for _, item in pending:  # long recordings analysed before an error ended the preparation
                _remove_scratch(item)
            shutil.rmtree(scratch_folder, ignore_errors=True)
    if report.images == 0:
        raise UserError(f"no usable audio for {writer.path}:\n" + report.summary())
    writer.metadata["files"] = report.files_used
    writer.metadata["skipped"] = [f"{name}: {reason}" for name, reason in report.skipped]
    writer.metadata["seconds_left_out"] = round(sum(seconds for _, seconds in report.left_out), 3)
    report.seconds = time.perf_counter() - started
    return report


def _remove_scratch(item: Future | tuple) -> None:
    """Remove the scratch file of a worker's result that will not be written (the preparation failed)."""
    if isinstance(item, Future):
        if not item.done() or item.cancelled() or item.exception() is not None:
            return
        item = item.result()
    if isinstance(item[1], str):
        Path(item[1]).unlink(missing_ok=True)


def _add_worker_frames(
    writer: DatasetWriter, recording: Recording, name: str, frames: np.ndarray | str, step: float
) -> int:
    """Write what a worker made of one recording (pictures, or a scratch file it removes); returns the count."""
    scratch_file = frames if isinstance(frames, str) else None
    try:
        pictures = np.load(scratch_file, mmap_mode="r") if scratch_file else frames
        n = len(pictures)
        labels = None if recording.label is None else np.full(n, recording.label, dtype=np.int64)
        add_recording(writer, recording.entry or {"file": name}, pictures, step, labels)
        del pictures
    finally:
        if scratch_file:
            Path(scratch_file).unlink(missing_ok=True)
    return n


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
    metadata so that pictures can be turned back into sound, and each picture's file and start time in its
    provenance.
    """
    config = config or SpectrogramConfig()
    root = Path(folder).resolve()
    files = find_audio_files(folder)
    # Named by the path inside the folder, not the resolved one: a symbolic link may lead outside it.
    recordings = [Recording(f, entry={"file": str(f.relative_to(folder))}) for f in files]
    metadata = {"source": str(root), **spectrogram_metadata(config, representation)}
    writer = DatasetWriter(path, config.shape, channels_of(representation), dtype, metadata, with_provenance=True)
    with writer:
        check_disk_space([(writer, estimated_pictures(files, config))])  # from the headers, before hours of work
        report = write_recordings(writer, recordings, config, representation, workers, progress)
    return PreparedDataset(path), report


def estimated_pictures(files: list[Path], config: SpectrogramConfig) -> int:
    """The pictures ``files`` will give, from their headers alone (a file whose header cannot be read counts 0:
    it is decoded, or skipped, later)."""
    import soundfile as sf

    total = 0
    for path in files:
        try:
            info = sf.info(str(path))
        except Exception:  # noqa: BLE001 - any reader failure: no estimate for this file
            continue
        total += piece_count(int(info.frames * config.sample_rate / info.samplerate), config)
    return total


def spectrogram_metadata(config: SpectrogramConfig, representation: str) -> dict[str, Any]:
    """The metadata every spectrogram dataset carries so that its pictures can be turned back into sound."""
    return {
        "spectrogram": config.to_dict(), "representation": representation,
        "value_mapping": f"log magnitude in dB, [{config.floor_db}, {config.ceiling_db}] -> [-1, 1]",
    }
