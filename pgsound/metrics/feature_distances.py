"""Distances between sets of a classifier's outputs: Fréchet distance, kernel distance, Inception Score.

(book: chapter 8, "Measuring with a classifier")

The audio GAN papers judge samples through a trained classifier: each clip becomes a feature vector (the
penultimate layer) and a vector of class probabilities, and three figures compare the sets:

- the **Fréchet distance** (FID, Heusel et al. 2017) between Gaussians fitted to the two sets of features:
  ``|mu_a - mu_b|^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2))``; biased at small n, so compare figures at one n;
- the **kernel distance** (KID, Bińkowski et al. 2018): the unbiased estimate of the squared maximum mean
  discrepancy with the cubic polynomial kernel ``k(x, y) = (x.y / d + 1)^3``, averaged over random subsets;
  its expectation is 0 for two sets from one distribution at any n, so it can go slightly below 0;
- the **Inception Score** (Salimans et al. 2016): ``exp(E_x KL(p(y|x) || p(y)))``, high when each clip is
  confidently one class and the set covers many classes; at most the number of classes.

These functions take the features or probabilities as arrays, so they serve any classifier.
"""

from __future__ import annotations

import numpy as np


def _features(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"{name} must be (n, d) features with n >= 2, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} holds NaN or infinite values")
    return x


def _psd_sqrt(c: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (eigenvalues clipped at 0)."""
    w, v = np.linalg.eigh(c)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The Fréchet distance between Gaussians fitted to features ``a`` (n, d) and ``b`` (m, d).

    ``Tr((C_a C_b)^(1/2))`` is computed as the sum of the square roots of the eigenvalues of the symmetric matrix
    ``C_a^(1/2) C_b C_a^(1/2)``, which has the same eigenvalues as ``C_a C_b`` and no complex round-off.
    """
    a, b = _features(a, "a"), _features(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b need features of one size, got {a.shape[1]} and {b.shape[1]}")
    mean = a.mean(axis=0) - b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = _psd_sqrt(np.atleast_2d(cov_a))
    middle = root_a @ np.atleast_2d(cov_b) @ root_a
    cross = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum()
    return float(mean @ mean + np.trace(np.atleast_2d(cov_a)) + np.trace(np.atleast_2d(cov_b)) - 2 * cross)


def kernel_distance(
    a: np.ndarray, b: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> float:
    """The unbiased squared MMD between features ``a`` and ``b`` with ``k(x, y) = (x.y / d + 1)^3`` (KID).

    Averaged over ``subsets`` random subsets of ``min(subset_size, n, m)`` clips a side (drawn without
    replacement within a subset, seeded), as Bińkowski et al. do.
    """
    a, b = _features(a, "a"), _features(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b need features of one size, got {a.shape[1]} and {b.shape[1]}")
    d = a.shape[1]
    m = min(subset_size, len(a), len(b))
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        k_xx = (x @ x.T / d + 1) ** 3
        k_yy = (y @ y.T / d + 1) ** 3
        k_xy = (x @ y.T / d + 1) ** 3
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        total += within - 2 * k_xy.mean()
    return float(total / subsets)


def inception_score(probabilities: np.ndarray) -> float:
    """``exp(mean_i KL(p_i || p_mean))`` of class probabilities (n, K); each row is normalised to sum to 1."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or len(p) < 1 or np.any(p < 0) or not np.all(np.isfinite(p)):
        raise ValueError(f"probabilities must be a non-negative, finite (n, K) array, got shape {p.shape}")
    sums = p.sum(axis=1, keepdims=True)
    if np.any(sums <= 0):
        raise ValueError("every row of probabilities needs a positive sum")
    p = p / sums
    marginal = p.mean(axis=0, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(marginal)), 0.0)
    return float(np.exp(terms.sum(axis=1).mean()))
