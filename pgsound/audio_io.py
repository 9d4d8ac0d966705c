"""Reading recordings: any common format to mono float32 at the working sample rate (book: chapter 1).

:func:`load_audio` reads WAV, FLAC, OGG and MP3 with soundfile (libsndfile) and falls back to librosa (audioread,
ffmpeg) for what libsndfile cannot decode, mixes to mono and resamples. A file that cannot be used (corrupt,
empty, silent, too short) is an :class:`AudioError` naming it and saying why. :func:`scan_audio_folder` reads a
whole folder, skips such files and lists them in its report, so that a long preparation never stops half way.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from pgsound.errors import MissingFileError, UserError
from pgsound.files import atomic_write

AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".ogg", ".mp3")


class AudioError(UserError):
    """A recording that cannot be used; the message names the file and the reason."""


BLOCK_FRAMES = 2**20  # frames read at a time: a long multichannel file is mixed down block by block


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    """Mono samples, read and mixed down a block at a time: a 3-hour stereo file at 48 kHz never sits in memory
    with both channels (4 GB as float32), only as the mono mix."""
    import soundfile as sf

    with sf.SoundFile(str(path)) as file:
        rate, expected = int(file.samplerate), max(int(file.frames), 0)
        mono = np.empty(expected, dtype=np.float32)
        filled, extra = 0, []
        for block in file.blocks(BLOCK_FRAMES, dtype="float32", always_2d=True):
            mixed = block.mean(axis=1)
            fits = min(len(mixed), expected - filled)
            mono[filled : filled + fits] = mixed[:fits]
            filled += fits
            if fits < len(mixed):  # a header that undercounts its frames
                extra.append(mixed[fits:])
    return (np.concatenate([mono[:filled], *extra]) if extra else mono[:filled]), rate


def _read_librosa(path: Path) -> tuple[np.ndarray, int]:
    import warnings

    import librosa

    with warnings.catch_warnings():  # librosa warns when it falls back to audioread; we say so in errors instead
        warnings.simplefilter("ignore")
        data, rate = librosa.load(str(path), sr=None, mono=True)
    return np.asarray(data, dtype=np.float32), int(rate)


def _decode(path: Path) -> tuple[np.ndarray, int]:
    """Mono samples and the file's own sample rate: soundfile first, librosa for what libsndfile lacks."""
    try:
        return _read_soundfile(path)
    except Exception as first:  # noqa: BLE001 - any decoder failure means: try the other decoder
        try:
            return _read_librosa(path)
        except Exception as second:  # noqa: BLE001
            reason = str(first).strip() or type(first).__name__
            raise AudioError(
                f"{path}: cannot decode as audio (soundfile: {reason}; librosa: {type(second).__name__}); "
                f"expected a WAV, FLAC, OGG or MP3 file"
            ) from second


def load_audio(
    path: str | os.PathLike,
    sample_rate: int = 16000,
    min_seconds: float = 0.1,
    silence_db: float = -80.0,
) -> np.ndarray:
    """Read one recording as mono float32 samples at ``sample_rate``.

    (book: chapter 1, "How close is it to a real piano?")

    Channels are averaged; the audio is resampled with librosa (soxr, high quality) when the file's rate
    differs. Raises ``FileNotFoundError`` for a missing file and :class:`AudioError` (a ``ValueError``) naming the
    file for one that cannot be read (permissions, an I/O error), is empty, cannot be decoded, holds NaN/Inf
    samples, is shorter than ``min_seconds``, or is silent (its peak below ``silence_db`` dB full scale).
    """
    path = Path(path)
    check_audio_path(path)
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate < 1:
        raise UserError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    try:
        if path.stat().st_size == 0:
            raise AudioError(f"{path}: empty file (0 bytes)")
        cut = wav_truncation(path)
    except OSError as error:  # no permission, an I/O error of a network drive: this file cannot be used
        raise AudioError(f"{path}: cannot be read ({error.strerror or error})") from None
    if cut is not None:
        raise AudioError(f"{path}: truncated: {cut}; copy or download it again")
    audio, rate = _decode(path)
    if audio.size == 0:
        raise AudioError(f"{path}: holds no samples")
    if not np.all(np.isfinite(audio)):
        raise AudioError(f"{path}: contains NaN or Inf samples")
    seconds = audio.size / rate
    if seconds < min_seconds:
        raise AudioError(f"{path}: too short ({seconds:.3f} s, need at least {min_seconds:g} s)")
    peak = float(np.abs(audio).max())
    if peak <= 10.0 ** (silence_db / 20.0):
        level = f"{20 * np.log10(peak):.1f} dB" if peak > 0 else "all zeros"
        raise AudioError(f"{path}: silent (peak {level}, below {silence_db:g} dB full scale)")
    if rate != sample_rate:
        import librosa

        audio = librosa.resample(audio, orig_sr=rate, target_sr=int(sample_rate), res_type="soxr_hq")
    return np.ascontiguousarray(audio, dtype=np.float32)


def check_audio_path(path: Path) -> None:
    """A path that names no readable file: missing, a folder, a broken symbolic link; one error naming it."""
    if path.is_file():
        return
    if path.is_dir():
        raise UserError(f"{path} is a folder, not an audio file (prepare audio reads a folder of recordings)")
    if path.is_symlink():
        raise MissingFileError(f"{path}: a broken symbolic link (to {os.readlink(path)}, which does not exist)")
    if path.exists():
        raise UserError(f"{path}: not a regular file (a device, a pipe or a socket), not an audio file")
    raise MissingFileError(f"{path}: no such audio file")


# Sizes a writer that streams (and cannot seek back to fill in the header) leaves in a WAV: not a promise.
_UNKNOWN_SIZES = {0, 0xFFFFFFFF, 0x7FFFFFFF}


def wav_truncation(path: Path) -> str | None:
    """What a WAV file's header promises that the file lacks (a copy or a download cut short), or None.

    libsndfile reads such a file without a word, as the audio that is there: a recording would lose its end
    silently. Only RIFF/WAVE files are checked; sizes a streaming writer leaves unknown are not a promise.
    """
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        byte_rate, position = 0, 12
        while position + 8 <= size:
            handle.seek(position)
            chunk = handle.read(8)
            name, length = chunk[:4], int.from_bytes(chunk[4:8], "little")
            if name == b"fmt ":
                byte_rate = int.from_bytes(handle.read(12)[8:12], "little")
            if name == b"data":
                if length in _UNKNOWN_SIZES or position + 8 + length <= size:
                    return None
                missing = position + 8 + length - size
                seconds = f" ({missing / byte_rate:.2f} s of audio)" if byte_rate else ""
                return (f"its header promises {length} bytes of audio, the file ends {missing} bytes short"
                        f"{seconds}")
            position += 8 + length + (length & 1)  # chunks are padded to an even size
    declared = int.from_bytes(head[4:8], "little")
    if declared not in _UNKNOWN_SIZES and declared + 8 > size:
        return f"its header promises {declared + 8} bytes, the file has {size} and ends before its audio"
    return None


def find_audio_files(folder: str | os.PathLike, extensions: tuple[str, ...] = AUDIO_EXTENSIONS) -> list[Path]:
    """Every audio file under ``folder`` (recursively, by extension, any case), sorted so runs are reproducible.

    A missing folder is a ``FileNotFoundError``; a folder without audio files a ``ValueError`` naming both.
    A symbolic link to a file is followed, wherever the file is (its name is the link's, inside ``folder``); a
    broken one is listed too, so that reading it reports it. Links to folders are not descended into.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingFileError(f"{folder}: no such folder" if not folder.exists() else f"{folder}: not a folder")
    wanted = {e.lower() for e in extensions}
    files = sorted(p for p in folder.rglob("*")
                   if (p.is_file() or (p.is_symlink() and not p.exists())) and p.suffix.lower() in wanted)
    if not files:
        raise UserError(f"{folder}: no audio files (looked for {', '.join(sorted(wanted))}, recursively)")
    return files


@dataclass
class AudioScan:
    """What :func:`scan_audio_folder` found: usable files with their length, and skipped files with the reason."""

    folder: Path
    sample_rate: int
    usable: list[tuple[Path, float]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return float(sum(s for _, s in self.usable))

    def summary(self) -> str:
        lines = [
            f"{self.folder}: {len(self.usable)} usable files ({self.seconds / 60:.1f} min at {self.sample_rate} Hz), "
            f"{len(self.skipped)} skipped"
        ]
        lines += [f"  skipped {path}: {reason}" for path, reason in self.skipped]
        return "\n".join(lines)


def scan_audio_folder(
    folder: str | os.PathLike,
    sample_rate: int = 16000,
    min_seconds: float = 0.1,
    silence_db: float = -80.0,
    progress: bool = False,
) -> AudioScan:
    """Read every recording under ``folder``; bad ones are skipped and listed, never fatal (book: chapter 1).

    Each file goes through :func:`load_audio` (so the checks are the same as for one file). Returns an
    :class:`AudioScan`; ``print(scan.summary())`` shows the skipped files and why.
    """
    from tqdm import tqdm  # text bars: the widget bar needs ipywidgets and a kernel

    files = find_audio_files(folder)
    scan = AudioScan(Path(folder), int(sample_rate))
    for path in tqdm(files, unit="file", disable=not progress, desc="scan audio"):
        try:
            audio = load_audio(path, sample_rate, min_seconds=min_seconds, silence_db=silence_db)
        except (AudioError, MissingFileError) as error:  # a broken link is listed, and skipped here
            reason = str(error)
            prefix = f"{path}: "
            scan.skipped.append((path, reason[len(prefix) :] if reason.startswith(prefix) else reason))
            continue
        scan.usable.append((path, audio.size / sample_rate))
    return scan


def mono_samples(audio: np.ndarray | torch.Tensor) -> np.ndarray:
    """Mono audio as a float32 array ``(samples,)``; another shape, NaN or Inf is a ``ValueError``."""
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().cpu().numpy()
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio of shape (samples,), got shape {audio.shape}")
    if not np.all(np.isfinite(audio)):
        raise ValueError("the audio contains NaN or Inf samples")
    return audio


def write_wav(
    path: str | os.PathLike, audio: np.ndarray | torch.Tensor, sample_rate: int = 16000, headroom_db: float = 0.1
) -> Path:
    """Write mono 16-bit PCM WAV atomically; a clip whose peak would clip is scaled down to just below full scale.

    ``headroom_db`` is how far below full scale such a clip's peak lands. NaN or Inf samples are a
    ``ValueError`` (nothing is written). Returns the path. (book: chapter 1, "Listening")
    """
    import soundfile as sf

    clip = mono_samples(audio if not isinstance(audio, np.ndarray) else audio.squeeze())
    limit = 10.0 ** (-abs(headroom_db) / 20.0)
    peak = float(np.abs(clip).max()) if clip.size else 0.0
    if peak > limit:
        clip = clip * (limit / peak)
    # Encoded in memory and written by Python: libsndfile reports a full disk as "System error.", no OSError.
    encoded = io.BytesIO()
    sf.write(encoded, clip, int(sample_rate), subtype="PCM_16", format="WAV")
    path = Path(path)
    with atomic_write(path) as temp:
        temp.write_bytes(encoded.getvalue())
    return path
