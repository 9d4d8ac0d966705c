"""Sliced Wasserstein distance on Laplacian pyramids, as the paper measures it (book: chapter 8, Measuring a GAN).

The procedure of Karras et al. (2018, Table 1) and of NVIDIA's reference metric code:

1. a Laplacian pyramid of every image with the 5x5 binomial filter ([1, 4, 6, 4, 1] outer product / 256,
   mirrored borders), from full resolution down to 16x16; the last level is the low-pass image itself;
2. from every level of every image, 128 random 7x7 neighbourhoods (7 * 7 * C values each), placed wholly inside;
3. each set of descriptors (one per level and per side) normalised per channel by its own mean and standard
   deviation over all its neighbourhoods and pixels;
4. per level, 4 repeats of 128 random unit directions: project both sets, sort each projection, take the mean
   absolute difference of the sorted values (the 1-D Wasserstein-1 distance along that direction);
5. the mean over directions and repeats, x1000, per level, and the average over levels.

Step 3 makes the metric blind to a global change of brightness or contrast (an affine map of all pixel values):
it compares the *shape* of the patch distributions, not their level. The images may be any channel count and
need not be square; a side must halve cleanly down the pyramid. Everything runs in torch on the chosen device,
in chunks of images, from a seeded generator (positions and directions are drawn on the CPU, so the same seed
gives the same draws on every device).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

NHOOD_SIZE = 7
NHOODS_PER_IMAGE = 128
DIR_REPEATS = 4
DIRS_PER_REPEAT = 128
MIN_RESOLUTION = 16

# The binomial filter is separable: [1, 4, 6, 4, 1] / 16 along each axis gives the 5x5 kernel / 256.
_BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)


def pyramid_shapes(shape: Sequence[int], min_resolution: int = MIN_RESOLUTION) -> list[tuple[int, int]]:
    """The (height, width) of every pyramid level for images of ``shape`` (..., H, W) (book: chapter 8).

    Levels halve while the shorter side stays at least ``min_resolution`` (16 in the paper), so 32x32 gives
    [(32, 32), (16, 16)] and 512x512 six levels. Images whose shorter side is below 16 get one level, the image
    itself, if a 7x7 neighbourhood fits; smaller images raise ``ValueError``.
    """
    height, width = int(shape[-2]), int(shape[-1])
    if min(height, width) < NHOOD_SIZE:
        raise ValueError(
            f"SWD needs images of at least {NHOOD_SIZE}x{NHOOD_SIZE} pixels (one {NHOOD_SIZE}x{NHOOD_SIZE} "
            f"neighbourhood), got {height}x{width}"
        )
    shapes = [(height, width)]
    while min(height, width) // 2 >= min_resolution:
        if height % 2 or width % 2:
            raise ValueError(
                f"SWD's pyramid halves the image down to {min_resolution} pixels on the shorter side; "
                f"{shape[-2]}x{shape[-1]} reaches an odd size {height}x{width} before that"
            )
        height, width = height // 2, width // 2
        shapes.append((height, width))
    return shapes


def level_name(shape: tuple[int, int]) -> str:
    """``'32'`` for a square level, ``'16x128'`` otherwise: the suffix of the ``swd_*`` keys."""
    return str(shape[0]) if shape[0] == shape[1] else f"{shape[0]}x{shape[1]}"


def _blur(x: torch.Tensor, gain: float) -> torch.Tensor:
    """Separable 5x5 binomial filter with mirrored borders (scipy's ``mode='mirror'``, torch's ``reflect``).

    Each axis is a weighted sum of five shifted views: on a CPU much faster than a single-channel ``conv2d``
    (benchmarks/README.md, SWD).
    """
    n, c, h, w = x.shape
    taps = [tap / 16.0 * gain**0.5 for tap in _BINOMIAL]
    padded = F.pad(x.reshape(n * c, h, w), (2, 2, 2, 2), mode="reflect")
    rows = padded[:, :, 0:w] * taps[0]
    for k in range(1, 5):
        rows.add_(padded[:, :, k:k + w], alpha=taps[k])
    out = rows[:, 0:h] * taps[0]
    for k in range(1, 5):
        out.add_(rows[:, k:k + h], alpha=taps[k])
    return out.reshape(n, c, h, w)


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    """Blur with the binomial filter, keep every second pixel (OpenCV's ``pyrDown``) (book: chapter 8)."""
    return _blur(x, 1.0)[:, :, ::2, ::2]


def pyr_up(x: torch.Tensor) -> torch.Tensor:
    """Insert zeros between pixels, blur with 4x the binomial filter (OpenCV's ``pyrUp``) (book: chapter 8)."""
    n, c, h, w = x.shape
    spread = x.new_zeros(n, c, 2 * h, 2 * w)
    spread[:, :, ::2, ::2] = x
    return _blur(spread, 4.0)


def laplacian_pyramid(images: torch.Tensor, num_levels: int) -> list[torch.Tensor]:
    """Band-pass levels from fine to coarse; the last is the low-pass image.

    (book: chapter 8, "The sliced Wasserstein distance, on pictures")

    Adding ``pyr_up`` of each coarser level back, from the last to the first, gives the images again.
    """
    if images.ndim != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(images.shape)}")
    pyramid = [images.float()]
    for _ in range(1, num_levels):
        pyramid.append(pyr_down(pyramid[-1]))
        pyramid[-2] = pyramid[-2] - pyr_up(pyramid[-1])
    return pyramid


def reconstruct_laplacian_pyramid(pyramid: Sequence[torch.Tensor]) -> torch.Tensor:
    """The images a Laplacian pyramid came from (the inverse of :func:`laplacian_pyramid`)."""
    images = pyramid[-1]
    for level in reversed(pyramid[:-1]):
        images = pyr_up(images) + level
    return images


def random_positions(
    num_images: int, shape: tuple[int, int], nhoods_per_image: int, generator: torch.Generator,
    nhood_size: int = NHOOD_SIZE,
) -> torch.Tensor:
    """Centres (row, column) of ``nhoods_per_image`` neighbourhoods per image, wholly inside: (N * k, 2) int64.

    Row i belongs to image ``i // nhoods_per_image``.
    """
    half = nhood_size // 2
    count = num_images * nhoods_per_image
    rows = torch.randint(half, shape[0] - half, (count,), generator=generator)
    cols = torch.randint(half, shape[1] - half, (count,), generator=generator)
    return torch.stack([rows, cols], dim=1)


def extract_neighbourhoods(level: torch.Tensor, positions: torch.Tensor, nhood_size: int = NHOOD_SIZE) -> torch.Tensor:
    """The ``nhood_size`` square around each position: (N * k, C, s, s) from a level (N, C, H, W)."""
    n, c, h, w = level.shape
    per_image = len(positions) // n
    half = nhood_size // 2
    offsets = torch.arange(-half, half + 1, device=level.device)
    positions = positions.to(level.device)
    image = torch.arange(n, device=level.device).repeat_interleave(per_image)
    rows = (positions[:, 0, None] + offsets)[:, :, None]  # (M, s, 1)
    cols = (positions[:, 1, None] + offsets)[:, None, :]  # (M, 1, s)
    patches = level.permute(0, 2, 3, 1)[image[:, None, None], rows, cols]  # (M, s, s, C)
    return patches.permute(0, 3, 1, 2)


def normalise_descriptors(descriptors: torch.Tensor) -> torch.Tensor:
    """Per channel: subtract the mean and divide by the standard deviation over all neighbourhoods and pixels.

    Input (M, C, s, s), output (M, C * s * s) flattened channel-major (book: chapter 8).
    """
    dims = (0, 2, 3)
    # Statistics accumulate in float64 (hundreds of thousands of descriptors); the data stays float32.
    mean = descriptors.mean(dim=dims, keepdim=True, dtype=torch.float64).float()
    centred = descriptors - mean
    std = centred.square().mean(dim=dims, keepdim=True, dtype=torch.float64).sqrt().float()
    if (std == 0).any():
        raise ValueError("SWD: a channel of one image set has zero variance at some pyramid level (constant images?)")
    return centred.div_(std).reshape(len(descriptors), -1)


def random_directions(
    dim: int, generator: torch.Generator, dir_repeats: int = DIR_REPEATS, dirs_per_repeat: int = DIRS_PER_REPEAT
) -> torch.Tensor:
    """Unit directions (repeats, dim, dirs_per_repeat), Gaussian then normalised (uniform on the sphere)."""
    directions = torch.randn(dir_repeats, dim, dirs_per_repeat, generator=generator)
    return directions / directions.norm(dim=1, keepdim=True)


def _sort_rows(x: torch.Tensor) -> torch.Tensor:
    """``x`` sorted along its last dimension; on the CPU by NumPy, whose sort is faster (benchmarks/README.md)."""
    if x.device.type == "cpu":
        return torch.from_numpy(np.sort(x.numpy(), axis=-1))
    return torch.sort(x, dim=-1).values


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, directions: torch.Tensor, dirs_per_chunk: int = 32) -> float:
    """Mean over directions of the 1-D Wasserstein-1 distance between projections of ``a`` and ``b``.

    ``a`` and ``b`` are (M, D) descriptor sets of equal size; ``directions`` is (repeats, D, k). Sorting each
    projection pairs the quantiles, so the mean absolute difference of sorted values is the 1-D distance.
    Directions are processed ``dirs_per_chunk`` at a time to bound memory (book: chapter 8).
    """
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"sliced_wasserstein needs two (M, D) sets of equal shape, got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    flat = directions.to(a.device, a.dtype).permute(1, 0, 2).reshape(a.shape[1], -1)
    total = torch.zeros((), dtype=torch.float64, device=a.device)
    for start in range(0, flat.shape[1], dirs_per_chunk):
        chunk = flat[:, start:start + dirs_per_chunk].T
        # (directions, M): each projection contiguous, sorted along the last dimension (faster than dim 0).
        proj_a = _sort_rows(chunk @ a.T)
        proj_b = _sort_rows(chunk @ b.T)
        total += (proj_a - proj_b).abs().sum(dtype=torch.float64)
    return float(total / (a.shape[0] * flat.shape[1]))


def _chunk(images: Any, start: int, stop: int, device: torch.device) -> torch.Tensor:
    part = images[start:stop]
    part = torch.from_numpy(np.asarray(part)) if not isinstance(part, torch.Tensor) else part
    if part.ndim == 3:  # (N, H, W): one channel
        part = part[:, None]
    return part.to(device=device, dtype=torch.float32)


def swd_descriptors(
    images: Any,
    generator: torch.Generator,
    *,
    nhoods_per_image: int = NHOODS_PER_IMAGE,
    nhood_size: int = NHOOD_SIZE,
    min_resolution: int = MIN_RESOLUTION,
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> list[torch.Tensor]:
    """Normalised descriptors of every pyramid level, computed ``batch_size`` images at a time (book: chapter 8).

    ``images``: anything of shape (N, C, H, W) or (N, H, W) that slices into NumPy arrays or tensors (a tensor,
    an array, an h5py dataset), any dtype; only ``batch_size`` images are on the device at once. Returns one
    (N * nhoods_per_image, C * nhood_size**2) tensor per level, on ``device``.
    """
    device = torch.device(device) if device is not None else _device_of(images)
    num_images = len(images)
    if num_images == 0:
        raise ValueError("SWD needs at least one image per side, got none")
    shapes = pyramid_shapes(images.shape, min_resolution)
    # All positions are drawn first, level by level, so that the result does not depend on batch_size.
    positions = [random_positions(num_images, shape, nhoods_per_image, generator, nhood_size) for shape in shapes]
    raw: list[list[torch.Tensor]] = [[] for _ in shapes]
    for start in range(0, num_images, batch_size):
        stop = min(start + batch_size, num_images)
        batch = _chunk(images, start, stop, device)
        rows = slice(start * nhoods_per_image, stop * nhoods_per_image)
        for index, level in enumerate(laplacian_pyramid(batch, len(shapes))):
            raw[index].append(extract_neighbourhoods(level, positions[index][rows], nhood_size))
    return [normalise_descriptors(torch.cat(parts)) for parts in raw]


def _device_of(images: Any) -> torch.device:
    return images.device if isinstance(images, torch.Tensor) else torch.device("cpu")


def sliced_wasserstein_distance(
    reals: Any,
    fakes: Any,
    *,
    seed: int = 0,
    nhoods_per_image: int = NHOODS_PER_IMAGE,
    nhood_size: int = NHOOD_SIZE,
    dir_repeats: int = DIR_REPEATS,
    dirs_per_repeat: int = DIRS_PER_REPEAT,
    min_resolution: int = MIN_RESOLUTION,
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """SWD x1000 per pyramid level and their average: ``{'swd_32': ..., 'swd_16': ..., 'swd_avg': ...}``.

    The paper's procedure (see the module docstring) with its parameters as defaults. ``reals`` and ``fakes``
    hold the same number of images of the same shape, in any value range (each side is normalised on its own).
    Seeded: the same ``seed`` gives the same neighbourhoods and directions (book: chapter 8, Measuring a GAN).
    """
    return sliced_wasserstein_distances(
        reals, [fakes], seed=seed, nhoods_per_image=nhoods_per_image, nhood_size=nhood_size,
        dir_repeats=dir_repeats, dirs_per_repeat=dirs_per_repeat, min_resolution=min_resolution,
        batch_size=batch_size, device=device,
    )[0]


def sliced_wasserstein_distances(
    reals: Any,
    others: Sequence[Any],
    *,
    seed: int = 0,
    nhoods_per_image: int = NHOODS_PER_IMAGE,
    nhood_size: int = NHOOD_SIZE,
    dir_repeats: int = DIR_REPEATS,
    dirs_per_repeat: int = DIRS_PER_REPEAT,
    min_resolution: int = MIN_RESOLUTION,
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> list[dict[str, float]]:
    """:func:`sliced_wasserstein_distance` of ``reals`` against each set in ``others``, in order.

    The reals' descriptors are computed once and every comparison draws what a separate call with the same
    seed would, so each result equals ``sliced_wasserstein_distance(reals, other, seed=seed)``: the fakes and
    a held-out real set (the floor) cost one pass over the reals, not two (book: chapter 8).
    """
    for other in others:
        if len(reals) != len(other):
            raise ValueError(f"SWD compares equal numbers of images, got {len(reals)} reals and {len(other)} fakes")
        if tuple(reals.shape[1:]) != tuple(other.shape[1:]):
            raise ValueError(f"SWD needs reals and fakes of one shape, got {tuple(reals.shape[1:])} and "
                             f"{tuple(other.shape[1:])}")
    generator = torch.Generator().manual_seed(seed)
    kwargs = dict(nhoods_per_image=nhoods_per_image, nhood_size=nhood_size, min_resolution=min_resolution,
                  batch_size=batch_size, device=device)
    shapes = pyramid_shapes(reals.shape, min_resolution)
    desc_reals = swd_descriptors(reals, generator, **kwargs)
    after_reals = generator.get_state()
    results = []
    for other in others:
        generator.set_state(after_reals)
        desc_other = swd_descriptors(other, generator, **kwargs)
        result = {}
        for shape, a, b in zip(shapes, desc_reals, desc_other):
            directions = random_directions(a.shape[1], generator, dir_repeats, dirs_per_repeat)
            result[f"swd_{level_name(shape)}"] = 1e3 * sliced_wasserstein(a, b, directions)
        result["swd_avg"] = float(np.mean(list(result.values())))
        results.append(result)
    return results
