"""Spectrogram pictures as files that know their geometry: 16-bit PNG or float32 .npy (book: chapter 1).

A recording of N pictures is stored side by side in time: a PNG of ``n_bins`` rows and ``N * n_frames``
columns, low frequencies at the bottom, values in [-1, 1] mapped to 0..65535 (16-bit grayscale: steps of
0.0015 dB with the reference 100 dB range, far below hearing). The :class:`~pgsound.spectrogram.SpectrogramConfig`,
the number of pictures and the recording's length travel in a PNG text chunk (``pgsound``) or, for ``.npy``
files (the exact float32 array ``(N, n_bins, n_frames)``), in a sidecar ``.json`` of the same name. So
``pgsound invert`` always knows how to turn a picture back into sound.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pgsound.errors import MissingFileError, UserError
from pgsound.files import atomic_write
from pgsound.spectrogram import SpectrogramConfig

PICTURE_FORMAT = "pgsound-picture-1"
PNG_KEY = "pgsound"


@dataclass
class SpectrogramFile:
    """Pictures ``(N, n_bins, n_frames)`` float32 in [-1, 1], their config and the recording's length."""

    frames: np.ndarray
    config: SpectrogramConfig
    samples: int | None = None
    source: str | None = None

    def metadata(self) -> dict[str, Any]:
        return {
            "format": PICTURE_FORMAT,
            "spectrogram": self.config.to_dict(),
            "pictures": int(len(self.frames)),
            "samples": self.samples,
            "source": self.source,
        }


def _atomic(path: Path, write) -> Path:
    with atomic_write(path) as temp:
        write(temp)
    return path


def _check(item: SpectrogramFile) -> np.ndarray:
    frames = np.asarray(item.frames, dtype=np.float32)
    if frames.ndim != 3 or frames.shape[1:] != item.config.shape:
        raise ValueError(f"expected pictures (N, {item.config.n_bins}, {item.config.n_frames}), got {frames.shape}")
    if not np.all(np.isfinite(frames)):
        raise ValueError("the pictures contain NaN or Inf")
    return frames


def save_png(path: str | os.PathLike, item: SpectrogramFile) -> Path:
    """Write the pictures as one 16-bit grayscale PNG with the metadata in a text chunk (atomic)."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    frames = _check(item)
    strip = np.concatenate(list(frames), axis=1)[::-1]  # side by side in time; row 0 = highest frequency
    pixels = np.round((np.clip(strip, -1.0, 1.0) + 1.0) * 32767.5).astype(np.uint16)
    info = PngInfo()
    info.add_text(PNG_KEY, json.dumps(item.metadata()))
    image = Image.fromarray(pixels)  # uint16: mode I;16, written as 16-bit grayscale
    return _atomic(Path(path), lambda temp: image.save(temp, format="PNG", pnginfo=info))


def save_npy(path: str | os.PathLike, item: SpectrogramFile) -> Path:
    """Write the exact float32 pictures as ``.npy`` and the metadata as the sidecar ``.json``, both or neither.

    The two are written under temporary names first (the settings, then the data) and the data is renamed into
    place first: a full disk leaves neither file, or the old pair, never a ``.json`` without its ``.npy``.
    """
    frames = np.ascontiguousarray(_check(item))
    path = Path(path)
    with atomic_write(path.with_suffix(".json")) as settings:
        with open(settings, "w") as handle:
            handle.write(json.dumps(item.metadata(), indent=1))
            handle.flush()
            os.fsync(handle.fileno())  # on disk before the data is renamed: the rename below cannot fail for space
        with atomic_write(path) as data, open(data, "wb") as handle:
            write_npy(handle, frames)
    return path


def write_npy(handle: Any, frames: np.ndarray) -> None:
    """``np.save``'s bytes, written picture by picture through Python's file object.

    ``np.save`` on a full disk raises an ``OSError`` without an error number ("262144 requested and 3040
    written"); a Python write raises the system's error (No space left on device), which names the cause.
    """
    from numpy.lib import format as npy

    npy.write_array_header_1_0(handle, npy.header_data_from_array_1_0(frames))
    for picture in frames:
        handle.write(picture.tobytes())


def _from_metadata(frames: np.ndarray, metadata: dict[str, Any], where: str) -> SpectrogramFile:
    if metadata.get("format") != PICTURE_FORMAT or "spectrogram" not in metadata:
        raise UserError(f"{where}: not pgsound spectrogram settings (format {metadata.get('format')!r})")
    config = _geometry(metadata["spectrogram"], where)
    if frames.shape[1:] != config.shape:
        raise UserError(f"{where}: pictures of shape {frames.shape[1:]} do not match the settings {config.shape}")
    return SpectrogramFile(frames, config, metadata.get("samples"), metadata.get("source"))


def load_spectrogram(path: str | os.PathLike) -> SpectrogramFile:
    """Read a picture written by :func:`save_png` or :func:`save_npy` (book: chapter 1).

    Errors name the file: missing, not a PNG/.npy, a PNG without pgsound settings, a ``.npy`` without its
    ``.json`` sidecar, or pictures that do not fit their settings.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        sidecar = path.with_suffix(".json")
        if not sidecar.is_file():
            raise MissingFileError(f"{path}: its settings file {sidecar.name} is missing (written next to it)")
        try:
            frames = np.load(path, allow_pickle=False)
        except (ValueError, EOFError) as error:  # EOFError: an empty file
            raise UserError(f"{path}: not a readable .npy array ({error})") from None
        if not isinstance(frames, np.ndarray):  # a .npz archive renamed to .npy
            raise UserError(f"{path}: not a .npy array but an archive of several ({type(frames).__name__})")
        frames = frames[None] if frames.ndim == 2 else frames
        if frames.ndim != 3 or not np.issubdtype(frames.dtype, np.floating):
            raise UserError(f"{path}: expected float pictures (N, bins, frames), got {frames.dtype} {frames.shape}")
        return _from_metadata(frames.astype(np.float32), _settings(sidecar.read_text(), sidecar), str(sidecar))
    if suffix != ".png":
        raise UserError(f"{path}: expected a .png or .npy spectrogram")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            text = image.text.get(PNG_KEY) if hasattr(image, "text") else None
            pixels = np.array(image)
    except (UnidentifiedImageError, OSError) as error:
        raise UserError(f"{path}: not a readable PNG ({error})") from None
    if text is None:
        raise UserError(f"{path}: this PNG has no pgsound settings; write it with `pgsound spectrogram`")
    metadata = _settings(text, path)
    if not isinstance(metadata.get("spectrogram"), dict):
        raise UserError(f"{path}: its pgsound settings hold no spectrogram geometry; write it with "
                        f"`pgsound spectrogram`")
    config = _geometry(metadata["spectrogram"], str(path))
    count = int(metadata.get("pictures", 0))
    if pixels.dtype != np.uint16 or pixels.shape != (config.n_bins, count * config.n_frames):
        raise UserError(
            f"{path}: expected a 16-bit picture of {config.n_bins}x{count * config.n_frames}, "
            f"got {pixels.dtype} {pixels.shape}"
        )
    strip = pixels[::-1].astype(np.float32) / 32767.5 - 1.0
    frames = np.stack(np.split(strip, count, axis=1))
    return _from_metadata(frames, metadata, str(path))


GEOMETRY_KEYS = ("sample_rate", "n_fft", "hop_length", "n_bins", "n_frames")  # without them the sound is wrong


def _geometry(settings: Any, where: str) -> SpectrogramConfig:
    """The spectrogram settings stored with a picture, checked; an error names the file."""
    missing = [key for key in GEOMETRY_KEYS if key not in settings] if isinstance(settings, dict) else GEOMETRY_KEYS
    if missing:
        raise UserError(f"{where}: the spectrogram settings lack {', '.join(missing)}; write the picture with "
                        f"`pgsound spectrogram`")
    try:
        return SpectrogramConfig.from_dict(settings)
    except (UserError, TypeError, ValueError) as error:
        raise UserError(f"{where}: {error}") from None


def _settings(text: str, where: Path) -> dict:
    """The JSON settings stored with a picture, or a :class:`UserError` naming the file."""
    try:
        settings = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"{where}: its pgsound settings are not JSON ({error.msg})") from None
    if not isinstance(settings, dict):
        raise UserError(f"{where}: its pgsound settings are not a JSON object")
    return settings
