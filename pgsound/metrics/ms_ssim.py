"""MS-SSIM between pairs of images: how alike a generator's samples are (book: chapter 8, Measuring a GAN).

Multi-scale structural similarity (Wang, Simoncelli & Bovik 2003) as the PGGAN paper's metric code computes it
(itself after TensorFlow's ``msssim.py``): an 11x11 Gaussian window (sigma 1.5) applied without padding, the
constants k1 = 0.01 and k2 = 0.03 of the value range, contrast-structure terms at the coarser scales and the full
SSIM at the coarsest, a 2x2 average between scales, negative terms clipped to zero, and the weights
(0.0448, 0.2856, 0.3001, 0.2363, 0.1333). Every channel is filtered separately and the maps are averaged over
channels and pixels.

As a *diversity* measure it is averaged over random pairs of generated images: a generator that collapses
onto a few outputs scores near 1, varied samples score low (real CelebA images give about 0.28 in the paper's
setting). Compare it with the same figure on real images, never alone.

Small images: five scales need at least 11 * 16 = 176 pixels on the shorter side. The reference code shrinks the
window below 11x11 at coarse scales instead (down to 2x2 at 32x32), which mostly measures noise. Here the default
uses only the scales at which the full 11x11 window fits (two at 32x32, one at 16x16, all five from 176 up) and
renormalises the first weights to sum to one; ``scales=5`` gives the reference behaviour at any size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
FILTER_SIZE = 11
FILTER_SIGMA = 1.5
K1 = 0.01
K2 = 0.03


def gaussian_window(size: int, sigma: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The normalised 1-D Gaussian whose outer product is MATLAB's ``fspecial('gaussian', size, sigma)``."""
    offset = 0.5 if size % 2 == 0 else 0.0  # even sizes sit between pixels, as fspecial does
    x = torch.arange(size, dtype=torch.float64) - size // 2 + offset
    g = torch.exp(-(x**2) / (2.0 * sigma**2))
    return (g / g.sum()).to(dtype)


def _filter_valid(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable filtering of every channel, no padding (the output shrinks by size - 1)."""
    n, c, h, w = x.shape
    size = len(window)
    flat = x.reshape(n * c, 1, h, w)
    flat = F.conv2d(flat, window.view(1, 1, 1, size))
    flat = F.conv2d(flat, window.view(1, 1, size, 1))
    return flat.reshape(n, c, h - size + 1, w - size + 1)


def ssim_and_contrast(
    a: torch.Tensor,
    b: torch.Tensor,
    data_range: float = 2.0,
    filter_size: int = FILTER_SIZE,
    filter_sigma: float = FILTER_SIGMA,
    k1: float = K1,
    k2: float = K2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM and mean contrast-structure term of each pair: two (N,) tensors (book: chapter 8).

    ``a`` and ``b`` are (N, C, H, W) with values spanning ``data_range`` (2 for [-1, 1], 255 for 8-bit). A
    window larger than the image is shrunk to the image, with sigma scaled alike (the reference behaviour).
    """
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"SSIM needs two (N, C, H, W) batches of one shape, got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    a, b = a.float(), b.float()
    size = min(filter_size, a.shape[-2], a.shape[-1])
    window = gaussian_window(size, size * filter_sigma / filter_size).to(a.device)
    mu_a, mu_b = _filter_valid(a, window), _filter_valid(b, window)
    var_a = _filter_valid(a * a, window) - mu_a * mu_a
    var_b = _filter_valid(b * b, window) - mu_b * mu_b
    cov = _filter_valid(a * b, window) - mu_a * mu_b
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    contrast = (2.0 * cov + c2) / (var_a + var_b + c2)
    luminance = (2.0 * mu_a * mu_b + c1) / (mu_a * mu_a + mu_b * mu_b + c1)
    return (luminance * contrast).mean(dim=(1, 2, 3)), contrast.mean(dim=(1, 2, 3))


def ms_ssim_scales(shape: tuple[int, ...], filter_size: int = FILTER_SIZE) -> int:
    """How many scales (1 to 5) keep the full window inside the image: 2 at 32x32, 5 from 176x176 up."""
    side = min(int(shape[-2]), int(shape[-1]))
    scales = 1
    while scales < len(WEIGHTS) and side // 2**scales >= filter_size:
        scales += 1
    return scales


def ms_ssim(
    a: torch.Tensor,
    b: torch.Tensor,
    data_range: float = 2.0,
    scales: int | None = None,
    filter_size: int = FILTER_SIZE,
    filter_sigma: float = FILTER_SIGMA,
) -> torch.Tensor:
    """MS-SSIM of each pair of images in ``a`` and ``b`` (N, C, H, W): an (N,) tensor, 1 for identical images.

    ``scales=None`` uses :func:`ms_ssim_scales` (the weights of the used scales renormalised to sum to one);
    ``scales=5`` is the reference code at any size (book: chapter 8, Measuring a GAN).
    """
    scales = ms_ssim_scales(a.shape, filter_size) if scales is None else int(scales)
    if not 1 <= scales <= len(WEIGHTS):
        raise ValueError(f"scales must be between 1 and {len(WEIGHTS)}, got {scales}")
    if min(a.shape[-2], a.shape[-1]) < 2 ** (scales - 1):
        raise ValueError(f"{scales} scales need images of at least {2 ** (scales - 1)} pixels a side, "
                         f"got {a.shape[-2]}x{a.shape[-1]}")
    weights = torch.tensor(WEIGHTS[:scales], dtype=torch.float64)
    if scales < len(WEIGHTS):
        weights = weights / weights.sum()
    weights = weights.to(a.device)
    result = torch.ones(a.shape[0], dtype=torch.float64, device=a.device)
    for scale in range(scales):
        ssim, contrast = ssim_and_contrast(a, b, data_range, filter_size, filter_sigma)
        term = ssim if scale == scales - 1 else contrast
        result = result * term.double().clamp(min=0.0) ** weights[scale]
        if scale < scales - 1:
            a, b = F.avg_pool2d(a.float(), 2), F.avg_pool2d(b.float(), 2)
    return result


def _take(images: Any, index: np.ndarray, device: torch.device) -> torch.Tensor:
    if isinstance(images, torch.Tensor):
        part = images[torch.from_numpy(index).to(images.device)]
    elif isinstance(images, np.ndarray):
        part = torch.from_numpy(images[index])
    else:  # h5py datasets and other sequences: one image at a time
        part = torch.from_numpy(np.stack([np.asarray(images[int(i)]) for i in index]))
    if part.ndim == 3:
        part = part[:, None]
    return part.to(device=device, dtype=torch.float32)


def random_pairs(num_images: int, n_pairs: int | None, generator: torch.Generator) -> np.ndarray:
    """(n_pairs, 2) indices of distinct images; by default a random permutation cut into disjoint pairs."""
    if num_images < 2:
        raise ValueError(f"MS-SSIM between pairs needs at least 2 images, got {num_images}")
    if n_pairs is None:
        order = torch.randperm(num_images, generator=generator)[: num_images // 2 * 2]
        return order.view(-1, 2).numpy()
    first = torch.randint(num_images, (n_pairs,), generator=generator)
    second = (first + torch.randint(1, num_images, (n_pairs,), generator=generator)) % num_images  # never equal
    return torch.stack([first, second], dim=1).numpy()


def mean_pairwise_ms_ssim(
    images: Any,
    n_pairs: int | None = None,
    seed: int = 0,
    data_range: float = 2.0,
    scales: int | None = None,
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> float:
    """Mean MS-SSIM over random pairs of distinct images: the paper's diversity figure (book: chapter 8).

    ``images`` (N, C, H, W) or (N, H, W): a tensor, an array or an h5py dataset; ``n_pairs=None`` pairs a random
    permutation (N // 2 disjoint pairs). Lower means more varied.
    """
    if device is None:
        device = images.device if isinstance(images, torch.Tensor) else torch.device("cpu")
    device = torch.device(device)
    pairs = random_pairs(len(images), n_pairs, torch.Generator().manual_seed(seed))
    total = 0.0
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        a, b = _take(images, chunk[:, 0], device), _take(images, chunk[:, 1], device)
        total += float(ms_ssim(a, b, data_range, scales).sum())
    return total / len(pairs)
