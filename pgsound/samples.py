"""Turning generator outputs into files: image grids, single images and, for spectrograms, WAV files.

(book: chapter 7, The training loop; chapter 9, Piano spectrograms)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from pgsound.audio_io import write_wav
from pgsound.files import atomic_write
from pgsound.representations import channels_of, decode
from pgsound.spectrogram import SpectrogramConfig
from pgsound.spectrogram_files import SpectrogramFile
from pgsound.spectrogram_files import save_png as save_spectrogram_png


def to_uint8(images: torch.Tensor | np.ndarray, colormap: str | None = None) -> np.ndarray:
    """Images (N, C, H, W) in [-1, 1] to uint8 (N, H, W, 3); one channel through ``colormap`` if given."""
    x = images.detach().float().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected images of shape (N, 1|3, H, W), got {x.shape}")
    x = np.clip((x + 1.0) / 2.0, 0.0, 1.0)
    if x.shape[1] == 1:
        if colormap:
            import matplotlib

            x = matplotlib.colormaps[colormap](x[:, 0])[..., :3]
        else:
            x = np.repeat(x[:, 0, :, :, None], 3, axis=-1)
    else:
        x = x.transpose(0, 2, 3, 1)
    return np.rint(x * 255).astype(np.uint8)


def grid_canvas(
    images: torch.Tensor | np.ndarray,
    grid: tuple[int, int],
    spectrogram: bool = False,
    min_cell: int = 64,
    padding: int = 1,
) -> np.ndarray:
    """One uint8 (H, W, 3) picture of ``rows x cols`` images, each scaled up (nearest) to at least ``min_cell``.

    Spectrograms are flipped so that low frequencies are at the bottom and drawn with the magma colormap.
    """
    rows, cols = grid
    if spectrogram and images.shape[1] > 1:
        images = images[:, :1]  # magnitude + instantaneous frequency: show the magnitude
    cells = to_uint8(images[: rows * cols], colormap="magma" if spectrogram else None)
    if spectrogram:
        cells = cells[:, ::-1]
    n, h, w, _ = cells.shape
    scale = max(1, -(-min_cell // min(h, w)))
    cells = cells.repeat(scale, axis=1).repeat(scale, axis=2)
    h, w = h * scale, w * scale
    canvas = np.full((rows * (h + padding) + padding, cols * (w + padding) + padding, 3), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = padding + r * (h + padding), padding + c * (w + padding)
        canvas[y : y + h, x : x + w] = cells[i]
    return canvas


def save_rgb_png(path: str | Path, picture: np.ndarray) -> Path:
    """Write an 8-bit (H, W, 3) picture as PNG, atomically (``pgsound.files.atomic_write``)."""
    from PIL import Image

    path = Path(path)
    with atomic_write(path) as temp:
        Image.fromarray(picture).save(temp, format="PNG")
    return path


def spectrogram_settings(metadata: dict[str, Any]) -> dict[str, Any] | None:
    """The spectrogram settings a dataset carries, or None for image data."""
    settings = metadata.get("spectrogram") if metadata else None
    return dict(settings) if settings else None


def spectrograms_to_audio(
    images: torch.Tensor, settings: dict[str, Any], n_iter: int | None = None, representation: str = "magnitude"
) -> np.ndarray:
    """Generated spectrograms (N, C, h, w) at any level to audio (N, samples) through the sound path.

    Lower levels are scaled up (nearest, like the networks' upsampling) to the dataset's full size first, so
    every level can be heard. ``representation`` is the dataset's (``pgsound.representations``).
    (book: chapter 9, Piano spectrograms)
    """

    config = SpectrogramConfig.from_dict(settings)
    kwargs = {} if n_iter is None else {"n_iter": n_iter}
    return decode(full_size(images, config, representation), config, representation, **kwargs)


def full_size(images: torch.Tensor, config: SpectrogramConfig, representation: str = "magnitude") -> np.ndarray:
    """Generated spectrograms (N, C, h, w) at any level as float32 (N, C, n_bins, n_frames) in [-1, 1].

    Lower levels are scaled up (nearest, like the networks' upsampling) to the dataset's full size.
    """
    full = (config.n_bins, config.n_frames)
    x = images.detach().float().cpu()
    channels = channels_of(representation)
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"expected {representation} spectrograms of shape (N, {channels}, H, W), "
                         f"got {tuple(x.shape)}")
    if tuple(x.shape[2:]) != full:
        x = torch.nn.functional.interpolate(x, size=full, mode="nearest")
    return x.clamp(-1, 1).numpy()


def write_sample_set(
    images: torch.Tensor,
    folder: str | Path,
    stem: str,
    metadata: dict[str, Any],
    grid: tuple[int, int],
    singles: bool = False,
    audio_count: int = 4,
    n_iter: int | None = None,
    concatenate_audio: bool = False,
) -> list[Path]:
    """Write ``stem.png`` (a grid), optionally ``stem-NN.png`` per image, and for spectrogram data WAV files.

    ``metadata`` is the dataset's (``DataSpec.metadata``): its spectrogram settings, if any, make the WAV files.
    """
    folder = Path(folder)
    settings = spectrogram_settings(metadata)
    files = [save_rgb_png(folder / f"{stem}.png", grid_canvas(images, grid, spectrogram=settings is not None))]
    representation = metadata.get("representation", "magnitude") if metadata else "magnitude"
    if singles and settings is not None and representation in ("magnitude", "mag-if"):
        # Pictures that `pgsound invert` reads: 16-bit, full size, the settings in the PNG (mag-if: its magnitude).
        config = SpectrogramConfig.from_dict(settings)
        magnitudes = full_size(images, config, representation)[:, 0]
        for i, picture in enumerate(magnitudes):
            item = SpectrogramFile(picture[None], config, source=f"{stem}-{i:02d}")
            files.append(save_spectrogram_png(folder / f"{stem}-{i:02d}.png", item))
    elif singles:
        for i in range(len(images)):
            one = grid_canvas(images[i : i + 1], (1, 1), spectrogram=settings is not None, min_cell=1, padding=0)
            files.append(save_rgb_png(folder / f"{stem}-{i:02d}.png", one))
    if settings is not None and audio_count > 0:

        count = len(images) if concatenate_audio else min(audio_count, len(images))
        audio = spectrograms_to_audio(images[:count], settings, n_iter=n_iter, representation=representation)
        rate = int(settings.get("sample_rate", 16000))
        if concatenate_audio:
            files.append(write_wav(folder / f"{stem}.wav", audio.reshape(-1), rate))
        else:
            files += [write_wav(folder / f"{stem}-{i:02d}.wav", clip, rate) for i, clip in enumerate(audio)]
    return files
