"""Fréchet distance, kernel distance and Inception Score against independent references and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from pgsound.metrics.feature_distances import frechet_distance, inception_score, kernel_distance


def reference_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """The formula as pytorch-fid writes it, with scipy's general matrix square root."""
    mu = a.mean(0) - b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(ca @ cb).real
    return float(mu @ mu + np.trace(ca) + np.trace(cb) - 2 * np.trace(root))


def reference_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased squared MMD with the cubic kernel, written as the double sums it is."""
    d, m = x.shape[1], len(x)

    def k(u, v):
        return (u @ v / d + 1) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_frechet_distance_matches_the_scipy_reference_and_the_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6)) + 0.5
    assert frechet_distance(a, b) == pytest.approx(reference_frechet(a, b), rel=1e-6)
    # Diagonal Gaussians: |mu_a - mu_b|^2 + sum (sigma_a - sigma_b)^2, with the sample moments.
    x = rng.normal(size=(5000, 3)) * [1.0, 2.0, 3.0]
    y = rng.normal(size=(5000, 3)) * [2.0, 2.0, 1.0] + [1.0, 0.0, 0.0]
    expected = ((x.mean(0) - y.mean(0)) ** 2).sum() + ((x.std(0, ddof=1) - y.std(0, ddof=1)) ** 2).sum()
    assert frechet_distance(x, y) == pytest.approx(expected, rel=0.02)  # off-diagonal covariances are ~0


def test_frechet_distance_is_zero_for_a_set_against_itself_and_grows_with_a_shift():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(200, 8))
    assert abs(frechet_distance(a, a)) < 1e-9
    shifts = [frechet_distance(a, a + s) for s in (0.1, 0.5, 1.0)]
    assert shifts == pytest.approx([8 * 0.01, 8 * 0.25, 8 * 1.0])  # a shift moves only the means


def test_kernel_distance_is_the_unbiased_mmd_and_near_zero_for_one_distribution():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(30, 4)) + 0.3
    assert kernel_distance(x, y, subsets=1, subset_size=30) == pytest.approx(reference_mmd2(x, y), rel=1e-9)
    same = [kernel_distance(rng.normal(size=(50, 4)), rng.normal(size=(50, 4)), subsets=10, seed=s)
            for s in range(20)]
    apart = kernel_distance(rng.normal(size=(50, 4)), rng.normal(size=(50, 4)) + 0.5, subsets=10)
    assert abs(np.mean(same)) < 0.1 * apart  # unbiased: its expectation is 0 at any n
    assert min(same) < 0  # and a single estimate can fall below it


def test_inception_score_is_the_number_of_classes_used_confidently():
    k = 7
    assert inception_score(np.eye(k)) == pytest.approx(k)  # each clip one class, all classes covered
    assert inception_score(np.tile(np.eye(k)[2], (10, 1))) == pytest.approx(1.0)  # one class only
    assert inception_score(np.full((10, k), 1 / k)) == pytest.approx(1.0)  # no confidence
    assert 1.0 < inception_score(0.5 * np.eye(k) + 0.5 / k) < k
    assert inception_score(3 * np.eye(k)) == pytest.approx(k)  # rows are normalised first


@pytest.mark.parametrize("bad", [np.zeros((1, 3)), np.zeros(5), np.array([[0.0, np.nan], [1.0, 2.0]])])
def test_bad_features_are_named(bad):
    with pytest.raises(ValueError, match="a "):
        frechet_distance(bad, np.zeros((4, bad.shape[-1] if bad.ndim == 2 else 5)))
