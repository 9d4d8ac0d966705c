"""Reading a folder of PNG/JPEG images of one power-of-two size (book: chapter 5, A GAN at 4x4, then 8x8).

Every image must have the same size and the same kind (grayscale or colour); the first image sets both, and
any image that differs is an error naming it and what was expected. Alpha channels are dropped and palette
images expanded, so a folder of PNG exports works as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pgsound.datasets.hdf5 import PreparedDataset
from pgsound.datasets.writer import DatasetWriter
from pgsound.errors import MissingFileError, UserError

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg")
# Pillow modes to the mode we convert to and its channel count.
_MODES: dict[str, tuple[str, int]] = {
    "1": ("L", 1), "L": ("L", 1), "LA": ("L", 1), "I;16": ("L", 1), "I": ("L", 1),
    "RGB": ("RGB", 3), "RGBA": ("RGB", 3), "P": ("RGB", 3), "CMYK": ("RGB", 3), "YCbCr": ("RGB", 3),
}


def find_images(folder: str | Path) -> list[Path]:
    """The PNG and JPEG files under ``folder`` (recursively), sorted so that datasets are reproducible."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingFileError(f"no folder at {folder}")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise MissingFileError(f"{folder} holds no {'/'.join(IMAGE_SUFFIXES)} images")
    return files


def _is_power_of_two(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


def image_shape(path: str | Path) -> tuple[int, int, int]:
    """(C, H, W) that :func:`read_image` will give, from the file's header alone (no pixels decoded)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as image:
            if image.mode not in _MODES:
                raise UserError(f"{path}: unsupported image mode {image.mode!r}; expected grayscale or RGB")
            return _MODES[image.mode][1], image.height, image.width
    except (UnidentifiedImageError, OSError) as error:
        raise UserError(f"{path}: not a readable image ({error})") from None


def read_image(path: str | Path) -> np.ndarray:
    """One image as uint8 (C, H, W): C = 1 for grayscale, 3 for colour. Unreadable files name themselves."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode not in _MODES:
                raise UserError(f"{path}: unsupported image mode {image.mode!r}; expected grayscale or RGB")
            target, _ = _MODES[image.mode]
            if image.mode in ("I;16", "I"):
                # 16-bit grayscale: keep the top 8 bits rather than clipping at 255.
                array = (np.asarray(image, dtype=np.float64) / 257.0).round().clip(0, 255).astype(np.uint8)
            else:
                array = np.asarray(image.convert(target), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as error:
        raise UserError(f"{path}: not a readable image ({error})") from None
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def iter_image_folder(
    folder: str | Path, batch_size: int = 64
) -> tuple[list[Path], tuple[int, int, int], Iterator[np.ndarray]]:
    """Files, the common (C, H, W), and an iterator of uint8 batches (N, C, H, W) in file order.

    The first image sets the size and channel count; its sides must be powers of two. Every image's header is
    read first: one of another size or kind, or not an image, is a ``UserError`` naming it before any pixel
    is decoded or written.
    """
    files = find_images(folder)
    c, h, w = image_shape(files[0])
    if not (_is_power_of_two(h) and _is_power_of_two(w)):
        raise UserError(f"{files[0]}: size {w}x{h} is not a power of two on both sides (e.g. 64x64, 256x256)")
    kinds = {1: "grayscale", 3: "RGB"}
    for path in files[1:]:
        channels, height, width = image_shape(path)
        if (height, width) != (h, w):
            raise UserError(f"{path}: size {width}x{height}, expected {w}x{h} like {files[0].name}")
        if channels != c:
            raise UserError(f"{path}: {kinds[channels]}, expected {kinds[c]} like {files[0].name}")

    def batches() -> Iterator[np.ndarray]:
        batch = []
        for path in files:
            batch.append(read_image(path))
            if len(batch) == batch_size:
                yield np.stack(batch)
                batch = []
        if batch:
            yield np.stack(batch)

    return files, (c, h, w), batches()


def prepare_images(path: str | Path, folder: str | Path, progress: bool = False) -> PreparedDataset:
    """A folder of PNG/JPEG images of one power-of-two size into a prepared dataset (uint8, every level).

    A file of another size or kind is a ``ValueError`` naming it; nothing is left behind under ``path``.
    """
    from tqdm import tqdm  # text bars: the widget bar needs ipywidgets and a kernel

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
