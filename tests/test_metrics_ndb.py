"""NDB/K: k-means bins, the two-proportion test against SciPy, calibration near alpha, a missing mode flagged."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from pgsound.metrics import ndb as N


def templates(modes: int, shape=(1, 8, 8)) -> torch.Tensor:
    return torch.rand((modes,) + shape, generator=torch.Generator().manual_seed(123)) * 2 - 1


def mixture(n: int, modes: int = 10, seed: int = 0, skip: tuple[int, ...] = (), shape=(1, 8, 8)) -> torch.Tensor:
    """Images drawn around ``modes`` fixed random templates (the same templates for every seed)."""
    centres = templates(modes, shape)
    keep = torch.tensor([m for m in range(modes) if m not in skip])
    rng = torch.Generator().manual_seed(seed)
    which = keep[torch.randint(len(keep), (n,), generator=rng)]
    return (centres[which] + 0.15 * torch.randn((n,) + shape, generator=rng)).clamp(-1, 1)


def test_two_proportion_test_matches_scipy_chi_square():
    count_a, count_b = np.array([30, 12, 0, 58]), np.array([10, 15, 0, 75])
    z, p = N.two_proportion_test(count_a, 100, count_b, 100)
    # By hand, first bin: pooled 0.2, se sqrt(0.2 * 0.8 * 0.02), z = (0.1 - 0.3) / se.
    assert z[0] == pytest.approx(-0.2 / np.sqrt(0.2 * 0.8 * 0.02))
    for i in (0, 1, 3):  # z**2 is Pearson's chi-square of the 2x2 table (no continuity correction)
        table = [[count_a[i], 100 - count_a[i]], [count_b[i], 100 - count_b[i]]]
        chi2, p_ref, _, _ = scipy.stats.chi2_contingency(table, correction=False)
        assert z[i] ** 2 == pytest.approx(chi2) and p[i] == pytest.approx(p_ref)
    assert z[2] == 0 and p[2] == 1.0  # empty in both


def test_kmeans_finds_separated_clusters_and_is_a_fixed_point():
    x = mixture(600, modes=6, seed=1).reshape(600, -1)
    centres, assignment = N.kmeans(x, 6, torch.Generator().manual_seed(0))
    # Every sample sits with its nearest centre and every centre is the mean of its samples.
    assert torch.equal(torch.cdist(x, centres).argmin(1), assignment)
    for k in range(6):
        torch.testing.assert_close(centres[k], x[assignment == k].mean(0), rtol=1e-5, atol=1e-5)
    # Well-separated modes: each bin holds exactly one mode.
    truth = torch.cdist(x, templates(6).reshape(6, -1)).argmin(1)
    pairs = set(zip(truth.tolist(), assignment.tolist()))
    assert len(pairs) == 6


def test_kmeans_is_seeded_and_never_leaves_a_bin_empty():
    x = mixture(300, modes=3, seed=2).reshape(300, -1)
    first = N.kmeans(x, 20, torch.Generator().manual_seed(5))
    second = N.kmeans(x, 20, torch.Generator().manual_seed(5))
    assert torch.equal(first[1], second[1])
    assert (torch.bincount(first[1], minlength=20) > 0).all()


def test_two_halves_of_one_real_set_are_near_zero():
    reals, more_reals = mixture(2000, seed=3), mixture(1000, seed=4)
    values = N.ndb(reals, more_reals, num_bins=20, seed=0)
    # By chance alone about alpha (5 %) of the bins differ.
    assert values["ndb_k"] <= 0.15 and values["ndb_k_real"] <= 0.15
    assert values["ndb_bins"] == 20


def test_a_set_missing_a_mode_is_flagged():
    reals = mixture(2000, seed=3)
    values, on_fakes, on_reals = N.ndb(reals, mixture(1000, seed=5, skip=(0,)), num_bins=20, seed=0,
                                       return_results=True)
    assert values["ndb_k"] > values["ndb_k_real"] + 0.1
    # The bins of the missing mode hold no fakes at all and are flagged with fewer fakes than their share.
    empty = on_fakes.test_counts == 0
    assert empty.any() and on_fakes.different[empty].all() and (on_fakes.z[empty] < 0).all()
    assert on_reals.test_counts.sum() == on_fakes.test_counts.sum() == 1000
    # The centres come back as pictures; the bins that lost their fakes are the ones around the missing mode.
    assert on_fakes.centres.shape == (20, 1, 8, 8) and np.array_equal(on_fakes.centres, on_reals.centres)
    nearest = torch.cdist(torch.from_numpy(on_fakes.centres[empty]).reshape(-1, 64), templates(10).reshape(10, -1))
    assert (nearest.argmin(1) == 0).all()


def test_large_images_are_pooled_and_bad_input_is_clear():
    reals = torch.rand(400, 1, 64, 128) * 2 - 1
    values, on_fakes, _ = N.ndb(reals, reals.flip(0), num_bins=10, return_results=True)
    assert values["ndb_k"] <= 0.2  # the same pictures in another order: few bins, if any, differ
    assert on_fakes.centres.shape == (10, 1, 32, 32) == (10, *N.pooled_shape(reals.shape))
    assert N.pooled_shape((5, 40, 20), max_side=16) == (1, 16, 16)
    with pytest.raises(ValueError, match="one shape"):
        N.ndb(reals, reals[:, :, :32])
    with pytest.raises(ValueError, match="at least 100 reals"):
        N.ndb(reals[:60], reals[:60], num_bins=50)
    with pytest.raises(ValueError, match="held_out"):
        N.ndb(reals, reals, held_out=1.0)
