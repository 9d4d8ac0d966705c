"""MS-SSIM: identical images give 1, noise lowers it, and it matches a NumPy/SciPy version of the reference code."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import scipy.signal
import torch

from pgsound.metrics import ms_ssim as M


# ---------------------------------------------------------------- the reference code's procedure, in NumPy/SciPy
def np_gauss(size: int, sigma: float) -> np.ndarray:
    """MATLAB's fspecial('gaussian'): a 2-D window built directly, not as an outer product."""
    radius = size // 2
    offset, stop = (0.5, radius) if size % 2 == 0 else (0.0, radius + 1)
    y, x = np.mgrid[offset - radius:stop, offset - radius:stop]
    g = np.exp(-(x**2 + y**2) / (2.0 * sigma**2))
    return g / g.sum()


def np_ssim_cs(a: np.ndarray, b: np.ndarray, data_range: float) -> tuple[np.ndarray, np.ndarray]:
    """Per image (N, C, H, W): mean SSIM and contrast-structure, windows applied with 'valid' 2-D convolution."""
    size = min(11, a.shape[-2], a.shape[-1])
    window = np_gauss(size, size * 1.5 / 11)[None, None]
    mu_a = scipy.signal.fftconvolve(a, window, mode="valid")
    mu_b = scipy.signal.fftconvolve(b, window, mode="valid")
    s_aa = scipy.signal.fftconvolve(a * a, window, mode="valid") - mu_a**2
    s_bb = scipy.signal.fftconvolve(b * b, window, mode="valid") - mu_b**2
    s_ab = scipy.signal.fftconvolve(a * b, window, mode="valid") - mu_a * mu_b
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    v1, v2 = 2.0 * s_ab + c2, s_aa + s_bb + c2
    ssim = ((2.0 * mu_a * mu_b + c1) * v1) / ((mu_a**2 + mu_b**2 + c1) * v2)
    return ssim.mean(axis=(1, 2, 3)), (v1 / v2).mean(axis=(1, 2, 3))


def np_ms_ssim(a: np.ndarray, b: np.ndarray, scales: int, data_range: float = 2.0) -> np.ndarray:
    weights = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333][:scales])  # Wang et al. 2003, table 1
    if scales < 5:
        weights = weights / weights.sum()
    down = np.full((1, 1, 2, 2), 0.25)
    terms = []
    for scale in range(scales):
        ssim, cs = np_ssim_cs(a, b, data_range)
        terms.append(ssim if scale == scales - 1 else cs)
        # The reference: 2x2 box filter with reflected borders, then every second pixel.
        a, b = (scipy.ndimage.convolve(x, down, mode="reflect")[:, :, ::2, ::2] for x in (a, b))
    return np.prod([np.clip(t, 0, None) ** w for t, w in zip(terms, weights)], axis=0)


def smooth_images(n: int, shape=(64, 64), channels=1, seed=0) -> torch.Tensor:
    """Blurred noise in [-1, 1]: images with structure at several scales."""
    rng = np.random.default_rng(seed)
    x = scipy.ndimage.gaussian_filter(rng.standard_normal((n, channels) + shape), sigma=(0, 0, 2, 2))
    return torch.from_numpy(np.tanh(2.0 * x / x.std())).float()


# ---------------------------------------------------------------- tests
def test_gaussian_window_is_fspecial():
    for size, sigma in [(11, 1.5), (8, 1.1), (2, 0.3)]:
        g = M.gaussian_window(size, sigma, torch.float64).numpy()
        np.testing.assert_allclose(np.outer(g, g), np_gauss(size, sigma), rtol=1e-12)


def test_identical_images_give_one():
    x = smooth_images(4, (64, 48), channels=3)
    np.testing.assert_allclose(M.ms_ssim(x, x).numpy(), 1.0, atol=1e-6)
    np.testing.assert_allclose(M.ms_ssim(x, x, scales=5).numpy(), 1.0, atol=1e-6)


def test_decreases_with_noise():
    x = smooth_images(6, (64, 64))
    rng = torch.Generator().manual_seed(1)
    noise = torch.randn(x.shape, generator=rng)
    values = [float(M.ms_ssim(x, x + s * noise).mean()) for s in (0.0, 0.05, 0.1, 0.2, 0.4, 0.8)]
    assert values[0] == pytest.approx(1.0, abs=1e-6)
    assert all(later < earlier for earlier, later in zip(values, values[1:])), values
    assert values[-1] < 0.85  # the coarse scales average much of the noise away


@pytest.mark.parametrize("shape,channels,scales", [((32, 32), 1, None), ((64, 48), 3, None), ((32, 32), 1, 5),
                                                    ((192, 176), 1, None)])
def test_matches_numpy_reference(shape, channels, scales):
    a = smooth_images(3, shape, channels, seed=2)
    b = 0.7 * a + 0.5 * smooth_images(3, shape, channels, seed=3)
    used = M.ms_ssim_scales(a.shape) if scales is None else scales
    expected = np_ms_ssim(a.double().numpy(), b.double().numpy(), used)
    np.testing.assert_allclose(M.ms_ssim(a, b, scales=scales).numpy(), expected, rtol=2e-4, atol=2e-5)


def test_scales_by_size():
    assert [M.ms_ssim_scales((1, 1, s, s)) for s in (16, 32, 64, 128, 176, 512)] == [1, 2, 3, 4, 5, 5]
    assert M.ms_ssim_scales((1, 1, 32, 512)) == 2  # the shorter side decides


def test_symmetric_and_seeded_mean_over_pairs():
    x = smooth_images(10, (32, 32), seed=4)
    a, b = x[:5], x[5:]
    np.testing.assert_allclose(M.ms_ssim(a, b).numpy(), M.ms_ssim(b, a).numpy(), rtol=1e-5)
    first = M.mean_pairwise_ms_ssim(x, seed=3)
    assert first == M.mean_pairwise_ms_ssim(x.numpy(), seed=3)  # tensors and arrays alike
    # A set of copies of one image is perfectly "similar"; distinct images score lower.
    copies = x[:1].repeat(10, 1, 1, 1)
    assert M.mean_pairwise_ms_ssim(copies, n_pairs=20) == pytest.approx(1.0, abs=1e-6)
    assert first < 0.9


def test_random_pairs_never_pair_an_image_with_itself():
    pairs = M.random_pairs(5, 200, torch.Generator().manual_seed(0))
    assert pairs.shape == (200, 2) and (pairs[:, 0] != pairs[:, 1]).all()
    disjoint = M.random_pairs(7, None, torch.Generator().manual_seed(0))
    assert disjoint.shape == (3, 2) and len(set(disjoint.ravel())) == 6


def test_bad_input_is_a_clear_error():
    x = smooth_images(2, (32, 32))
    with pytest.raises(ValueError, match="one shape"):
        M.ms_ssim(x, x[:, :, :16])
    with pytest.raises(ValueError, match="scales must be"):
        M.ms_ssim(x, x, scales=6)
    with pytest.raises(ValueError, match="at least 2 images"):
        M.mean_pairwise_ms_ssim(x[:1])
