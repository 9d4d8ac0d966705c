"""SWD on Laplacian pyramids: against a direct NumPy/SciPy implementation of the paper's procedure, invariants."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import torch

from pgsound.metrics import swd as S

KERNEL = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256.0


# ---------------------------------------------------------------- a direct NumPy version of the paper's procedure
def np_pyramid(images: np.ndarray, num_levels: int) -> list[np.ndarray]:
    def down(x):
        return scipy.ndimage.convolve(x, KERNEL[None, None], mode="mirror")[:, :, ::2, ::2]

    def up(x):
        spread = np.zeros(x.shape[:2] + (2 * x.shape[2], 2 * x.shape[3]))
        spread[:, :, ::2, ::2] = x
        return scipy.ndimage.convolve(spread, 4 * KERNEL[None, None], mode="mirror")

    levels = [images.astype(np.float64)]
    for _ in range(1, num_levels):
        levels.append(down(levels[-1]))
        levels[-2] = levels[-2] - up(levels[-1])
    return levels


def np_descriptors(level: np.ndarray, positions: np.ndarray, per_image: int) -> np.ndarray:
    patches = np.stack([
        level[i // per_image, :, r - 3:r + 4, c - 3:c + 4] for i, (r, c) in enumerate(positions)
    ])
    patches = patches - patches.mean(axis=(0, 2, 3), keepdims=True)
    patches = patches / patches.std(axis=(0, 2, 3), keepdims=True)
    return patches.reshape(len(patches), -1)


def np_swd(a: np.ndarray, b: np.ndarray, directions: np.ndarray) -> float:
    per_repeat = [np.mean(np.abs(np.sort(a @ d, axis=0) - np.sort(b @ d, axis=0))) for d in directions]
    return float(np.mean(per_repeat))


def np_reference(reals, fakes, seed, per_image=128):
    """Draw positions and directions in the order the package draws them, compute everything else in NumPy."""
    generator = torch.Generator().manual_seed(seed)
    shapes = S.pyramid_shapes(reals.shape)
    pos_r = [S.random_positions(len(reals), s, per_image, generator).numpy() for s in shapes]
    pos_f = [S.random_positions(len(fakes), s, per_image, generator).numpy() for s in shapes]
    pyr_r, pyr_f = np_pyramid(reals, len(shapes)), np_pyramid(fakes, len(shapes))
    result = {}
    for i, shape in enumerate(shapes):
        a = np_descriptors(pyr_r[i], pos_r[i], per_image)
        b = np_descriptors(pyr_f[i], pos_f[i], per_image)
        # NVIDIA's: 4 repeats of 128 Gaussian directions, each normalised to unit length (over the descriptor)
        gaussian = torch.randn(4, a.shape[1], 128, generator=generator).double().numpy()
        directions = gaussian / np.linalg.norm(gaussian, axis=1, keepdims=True)
        result[f"swd_{S.level_name(shape)}"] = 1e3 * np_swd(a, b, directions)
    result["swd_avg"] = float(np.mean(list(result.values())))
    return result


def blobs(n: int, shape=(32, 32), channels=1, seed=0) -> torch.Tensor:
    """Images of a few random discs (a structured set whose patches are not Gaussian)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(shape[0]), torch.arange(shape[1]), indexing="ij")
    images = torch.zeros(n, channels, *shape)
    for i in range(n):
        for _ in range(3):
            cy, cx = torch.randint(shape[0], ()).item(), torch.randint(shape[1], (), generator=g).item()
            radius = torch.randint(3, 11, (), generator=g).item()
            colour = torch.rand(channels, generator=g)
            images[i][:, ((yy - cy) ** 2 + (xx - cx) ** 2) < radius**2] += colour[:, None]
    return images * 2 - 1


# ---------------------------------------------------------------- tests
def test_pyramid_shapes():
    assert S.pyramid_shapes((32, 32)) == [(32, 32), (16, 16)]
    assert S.pyramid_shapes((2, 1, 512, 512)) == [(512, 512), (256, 256), (128, 128), (64, 64), (32, 32), (16, 16)]
    assert S.pyramid_shapes((32, 128)) == [(32, 128), (16, 64)]
    assert S.pyramid_shapes((8, 8)) == [(8, 8)]  # below 16: the image itself, one level
    with pytest.raises(ValueError, match="at least 7x7"):
        S.pyramid_shapes((4, 4))
    with pytest.raises(ValueError, match="odd size"):
        S.pyramid_shapes((66, 66))


def test_pyramid_matches_scipy_and_reconstructs():
    x = torch.randn(3, 2, 32, 64, dtype=torch.float64)
    ours = S.laplacian_pyramid(x.float(), 3)
    ref = np_pyramid(x.numpy(), 3)
    assert [tuple(level.shape[2:]) for level in ours] == [(32, 64), (16, 32), (8, 16)]
    for mine, theirs in zip(ours, ref):
        np.testing.assert_allclose(mine.numpy(), theirs, atol=1e-5)
    torch.testing.assert_close(S.reconstruct_laplacian_pyramid(ours), x.float(), atol=1e-5, rtol=0)


def test_neighbourhoods_are_the_patches_around_the_positions():
    level = torch.arange(2 * 3 * 16 * 20, dtype=torch.float32).reshape(2, 3, 16, 20)
    positions = torch.tensor([[3, 3], [12, 16], [8, 10], [3, 16]])  # two per image, corners included
    patches = S.extract_neighbourhoods(level, positions)
    assert patches.shape == (4, 3, 7, 7)
    for i, (r, c) in enumerate(positions.tolist()):
        torch.testing.assert_close(patches[i], level[i // 2, :, r - 3:r + 4, c - 3:c + 4])
    g = torch.Generator().manual_seed(0)
    drawn = S.random_positions(50, (16, 20), 128, g)
    assert drawn[:, 0].min() >= 3 and drawn[:, 0].max() <= 12 and drawn[:, 1].max() <= 16


@pytest.mark.parametrize("shape,channels", [((32, 32), 1), ((32, 64), 3)])
def test_matches_numpy_reference_given_the_same_draws(shape, channels):
    reals = blobs(6, shape, channels, seed=1)
    fakes = blobs(6, shape, channels, seed=2) + 0.1 * torch.randn(6, channels, *shape)
    ours = S.sliced_wasserstein_distance(reals, fakes, seed=3, batch_size=4)
    ref = np_reference(reals.double().numpy(), fakes.double().numpy(), seed=3)
    assert ours.keys() == ref.keys()
    for key in ref:
        assert ours[key] == pytest.approx(ref[key], rel=2e-4), key


def test_self_is_near_zero_and_grows_with_noise_and_blur():
    reals = blobs(64, seed=4)
    g = torch.Generator().manual_seed(5)

    def swd(a, b):  # one repeat of 128 directions keeps the test fast; the ordering is what is tested
        return S.sliced_wasserstein_distance(a, b, dir_repeats=1)

    self_swd = swd(reals, reals)["swd_avg"]
    noisy = [swd(reals, reals + s * torch.randn(reals.shape, generator=g))["swd_avg"] for s in (0.05, 0.1, 0.2, 0.4)]
    assert self_swd < 0.5 * noisy[0]
    assert all(a < b for a, b in zip(noisy, noisy[1:])), noisy
    blurred = []
    for sigma in (0.7, 1.4, 2.8):
        smooth = scipy.ndimage.gaussian_filter(reals.numpy(), sigma=(0, 0, sigma, sigma), mode="reflect")
        blurred.append(swd(reals, torch.from_numpy(smooth))["swd_32"])
    assert self_swd < blurred[0]
    assert all(a < b for a, b in zip(blurred, blurred[1:])), blurred
    # With the same draws on both sides, a set against itself is exactly zero.
    descriptors = S.swd_descriptors(reals, torch.Generator().manual_seed(0))
    directions = S.random_directions(descriptors[0].shape[1], torch.Generator().manual_seed(1))
    assert S.sliced_wasserstein(descriptors[0], descriptors[0], directions) == 0.0


def test_self_distance_shrinks_with_more_samples():
    # The floor of a set against itself is sampling noise: more images, fewer random differences.
    small = blobs(16, seed=6)
    large = blobs(128, seed=6)
    assert (S.sliced_wasserstein_distance(large, large, dir_repeats=1)["swd_avg"]
            < S.sliced_wasserstein_distance(small, small, dir_repeats=1)["swd_avg"])


def test_blind_to_affine_value_changes_and_independent_of_batching_and_input_type():
    reals = blobs(10, seed=7)
    fakes = blobs(10, seed=8)
    base = S.sliced_wasserstein_distance(reals, fakes, seed=1)
    shifted = S.sliced_wasserstein_distance(reals, 3 * fakes + 1, seed=1)
    for key in base:
        assert shifted[key] == pytest.approx(base[key], rel=1e-4)
    as_arrays = S.sliced_wasserstein_distance(reals.numpy()[:, 0], fakes.numpy()[:, 0], seed=1, batch_size=3)
    for key in base:
        assert as_arrays[key] == pytest.approx(base[key], rel=1e-5)


def test_seeded():
    reals, fakes = blobs(8, seed=9), blobs(8, seed=10)
    assert S.sliced_wasserstein_distance(reals, fakes, seed=2) == S.sliced_wasserstein_distance(reals, fakes, seed=2)
    assert S.sliced_wasserstein_distance(reals, fakes, seed=2) != S.sliced_wasserstein_distance(reals, fakes, seed=3)


def test_bad_input_is_a_clear_error():
    x = torch.randn(4, 1, 32, 32)
    with pytest.raises(ValueError, match="4 reals and 3 fakes"):
        S.sliced_wasserstein_distance(x, x[:3])
    with pytest.raises(ValueError, match="one shape"):
        S.sliced_wasserstein_distance(x, torch.randn(4, 1, 16, 16))
    with pytest.raises(ValueError, match="zero variance"):
        S.sliced_wasserstein_distance(x, torch.zeros_like(x))


def test_several_comparisons_equal_separate_calls():
    reals, fakes = blobs(8, seed=1), blobs(8, seed=2) + 0.2 * torch.randn(8, 1, 32, 32)
    held = blobs(8, seed=3)
    together = S.sliced_wasserstein_distances(reals, [fakes, held], seed=5, batch_size=3)
    assert together == [S.sliced_wasserstein_distance(reals, other, seed=5) for other in (fakes, held)]
    assert together[1]["swd_avg"] < together[0]["swd_avg"]  # noise makes the fakes farther than held-out reals
    with pytest.raises(ValueError, match="equal numbers"):
        S.sliced_wasserstein_distances(reals, [fakes, held[:5]])
