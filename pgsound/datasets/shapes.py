"""Synthetic shapes: a small image dataset that a GAN learns visibly on a CPU in minutes (book: chapter 5).

Each image is one bold shape (disc, square or triangle) near the centre, in one of two colours that contrast
with one of three two-colour vertical gradient backgrounds. Few discrete factors of variation (18 combinations
of background, colour and shape; size, position and rotation vary continuously) and hard edges: a small GAN
learns them on a CPU in minutes, blurry or mode-collapsed samples are easy to see, and the shape kind is a
label for conditional runs. Rendering is supersampled 4x for smooth edges, at any
power-of-two size, and seeded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pgsound.config import check_seed
from pgsound.datasets.hdf5 import PreparedDataset
from pgsound.datasets.writer import DatasetWriter
from pgsound.errors import UserError

SHAPES = ("disc", "square", "triangle")
PALETTE = np.array(
    [[230, 57, 70], [255, 183, 3], [42, 157, 143], [69, 123, 157], [241, 250, 238], [29, 53, 87]],
    dtype=np.float32,
)
SUPERSAMPLE = 4
RED, AMBER, TEAL, STEEL, WHITE, NAVY = range(6)  # rows of PALETTE
# (top, bottom) of each background gradient, and the two shape colours that stand out on it.
BACKGROUNDS = ((NAVY, STEEL), (TEAL, WHITE), (RED, AMBER))
SHAPE_COLOURS = {0: (WHITE, AMBER), 1: (NAVY, RED), 2: (WHITE, NAVY)}


def shape_mask(kind: str, size: int, cx: float, cy: float, radius: float, angle: float) -> np.ndarray:
    """Coverage in [0, 1] of one shape on a ``size`` x ``size`` grid (centre and radius in pixels)."""
    fine = size * SUPERSAMPLE
    coords = (np.arange(fine, dtype=np.float32) + 0.5) / SUPERSAMPLE
    y, x = np.meshgrid(coords - cy, coords - cx, indexing="ij")
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * x + s * y, -s * x + c * y
    if kind == "disc":
        inside = u**2 + v**2 <= radius**2
    elif kind == "square":
        half = radius * 0.8
        inside = (np.abs(u) <= half) & (np.abs(v) <= half)
    elif kind == "triangle":
        # Equilateral, pointing up in its own frame: three half-planes.
        inside = (v <= radius * 0.5) & (np.sqrt(3) * u - v <= radius) & (-np.sqrt(3) * u - v <= radius)
    else:
        raise ValueError(f"unknown shape {kind!r}; expected one of {', '.join(SHAPES)}")
    return inside.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3))


def make_shapes(count: int, resolution: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` RGB images (N, 3, R, R) uint8 and their shape labels (N,) int64. (book: chapter 5)"""
    if resolution < 4 or resolution & (resolution - 1):
        raise UserError(f"resolution must be a power of two >= 4, got {resolution}")
    rng = np.random.default_rng(seed)
    images = np.empty((count, 3, resolution, resolution), dtype=np.uint8)
    labels = rng.integers(len(SHAPES), size=count)
    ramp = np.linspace(0.0, 1.0, resolution, dtype=np.float32)[:, None, None]
    for i in range(count):
        scene = int(rng.integers(len(BACKGROUNDS)))
        top, bottom = BACKGROUNDS[scene]
        colour = SHAPE_COLOURS[scene][int(rng.integers(2))]
        background = (1 - ramp) * PALETTE[top] + ramp * PALETTE[bottom]  # (R, 1, 3)
        background = np.broadcast_to(background, (resolution, resolution, 3))
        radius = rng.uniform(0.24, 0.34) * resolution
        cx, cy = resolution / 2 + rng.uniform(-0.12, 0.12, size=2) * resolution
        mask = shape_mask(SHAPES[labels[i]], resolution, cx, cy, radius, rng.uniform(0, 2 * np.pi))[..., None]
        picture = (1 - mask) * background + mask * PALETTE[colour]
        images[i] = np.rint(picture).clip(0, 255).astype(np.uint8).transpose(2, 0, 1)
    return images, labels.astype(np.int64)


def prepare_synthetic_shapes(
    path: str | Path, count: int = 4096, resolution: int = 32, seed: int = 0, chunk: int = 512
) -> PreparedDataset:
    """Write ``count`` synthetic shape images at ``resolution`` (every level down to 1x1) with shape labels."""
    if count < 1:
        raise UserError(f"count must be at least 1, got {count}")
    check_seed(seed)
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
