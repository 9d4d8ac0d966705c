"""NDB/K: the share of k-means bins whose generated proportion differs from the real one (book: chapter 8).

Richardson & Weiss (2018, "On GANs and GMMs") measure mode coverage without a pretrained network:

1. cluster real samples into K bins with k-means (K = 50 or 100);
2. put every generated sample in the bin of its nearest centre;
3. per bin, a two-proportion z-test between the share of real samples and the share of generated samples in
   it; a bin is *statistically different* when its two-sided p-value is below alpha (0.05);
4. NDB/K is the number of such bins divided by K: 0 when every bin holds about its real share.

By chance alone about alpha of the bins differ even for a perfect generator, so the figure needs a floor: the
same test between the bins' real samples and *held-out* real samples that k-means never saw. Here the reals are
split in two (``held_out=0.5``): the first part makes the bins, the second gives the calibration value
(``ndb_k_real``) next to the generator's (``ndb_k``), from the same number of samples.

Samples are flattened pixels; images larger than ``max_side`` are averaged down to it first (NDB looks at the
coarse layout of a picture, and k-means on 262144-dimensional spectrograms would cost gigabytes). Everything
runs in torch on the chosen device from a seeded generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

NUM_BINS = 50
ALPHA = 0.05
MAX_SIDE = 32


@dataclass
class NDBResult:
    """Everything one NDB test found (book: chapter 8, "NDB/K: is every mode there?"): arrays have one entry per bin."""

    real_counts: np.ndarray  # samples of the bins' own (k-means) reals in each bin
    test_counts: np.ndarray  # samples of the tested set in each bin
    z: np.ndarray  # two-proportion z statistic, positive where the tested set has *more* than its share
    p_values: np.ndarray
    different: np.ndarray  # bool: p < alpha
    alpha: float
    # The k-means centres as pictures (K, C, h, w) at the pooled size (at most max_side a side); set by ndb().
    centres: np.ndarray | None = None

    @property
    def ndb(self) -> int:
        return int(self.different.sum())

    @property
    def ndb_k(self) -> float:
        return self.ndb / len(self.different)

    @property
    def real_proportions(self) -> np.ndarray:
        return self.real_counts / self.real_counts.sum()

    @property
    def test_proportions(self) -> np.ndarray:
        return self.test_counts / self.test_counts.sum()


def pooled_shape(shape: tuple[int, ...], max_side: int = MAX_SIDE) -> tuple[int, ...]:
    """The shape of one sample as NDB sees it: (C, h, w) with each side cut to ``max_side`` by averaging."""
    sample = tuple(int(s) for s in shape[1:])
    if len(sample) == 2:  # (N, H, W): one channel
        sample = (1, *sample)
    if len(sample) == 3 and max(sample[-2:]) > max_side:
        sample = (sample[0], min(sample[1], max_side), min(sample[2], max_side))
    return sample


def _flatten(images: Any, max_side: int, device: torch.device) -> torch.Tensor:
    x = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.asarray(images))
    x = x.to(device=device, dtype=torch.float32)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim == 4 and max(x.shape[-2:]) > max_side:
        x = F.adaptive_avg_pool2d(x, pooled_shape(x.shape, max_side)[-2:])
    return x.reshape(len(x), -1)


def kmeans(
    samples: torch.Tensor, k: int, generator: torch.Generator, max_iter: int = 100
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means with k-means++ seeding: (centres (k, D), assignment (N,)).

    (book: chapter 8, "NDB/K: is every mode there?")

    Seeded by ``generator`` (drawn on the CPU: the same centres on every device up to rounding). Stops when no
    assignment changes. A bin that empties is re-seeded with the sample farthest from its centre, so every bin
    holds at least one real sample.
    """
    n = len(samples)
    if not 1 <= k <= n:
        raise ValueError(f"k-means needs between 1 and {n} bins for {n} samples, got {k}")
    # k-means++: each next centre drawn with probability proportional to the squared distance to the nearest.
    chosen = [int(torch.randint(n, (1,), generator=generator))]
    nearest = torch.cdist(samples, samples[chosen[-1]][None]).squeeze(1).square()
    for _ in range(1, k):
        weights = nearest.double().cpu()
        index = int(torch.multinomial(weights, 1, generator=generator)) if weights.sum() > 0 else \
            int(torch.randint(n, (1,), generator=generator))
        chosen.append(index)
        nearest = torch.minimum(nearest, torch.cdist(samples, samples[index][None]).squeeze(1).square())
    centres = samples[chosen].clone()
    assignment = torch.full((n,), -1, dtype=torch.long, device=samples.device)
    for _ in range(max_iter):
        distances = torch.cdist(samples, centres)
        new_assignment = distances.argmin(dim=1)
        counts = torch.bincount(new_assignment, minlength=k)
        for empty in torch.nonzero(counts == 0).flatten().tolist():
            farthest = int(distances.gather(1, new_assignment[:, None]).argmax())
            new_assignment[farthest] = empty
            distances[farthest] = 0.0  # not picked twice
            counts = torch.bincount(new_assignment, minlength=k)
        if torch.equal(new_assignment, assignment):
            break
        assignment = new_assignment
        sums = torch.zeros_like(centres).index_add_(0, assignment, samples)
        centres = sums / counts[:, None].to(samples.dtype)
    return centres, assignment


def assign_bins(samples: torch.Tensor, centres: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """The index of the nearest centre of every sample (N,)."""
    return torch.cat([torch.cdist(samples[i:i + chunk], centres).argmin(dim=1) for i in range(0, len(samples), chunk)])


def two_proportion_test(count_a: np.ndarray, n_a: int, count_b: np.ndarray, n_b: int) -> tuple[np.ndarray, np.ndarray]:
    """Pooled two-proportion z-test per bin: (z, two-sided p). z > 0 where set b has the larger share.

    A bin empty in both sets has z = 0 and p = 1.
    """
    p_a, p_b = np.asarray(count_a, float) / n_a, np.asarray(count_b, float) / n_b
    pooled = (np.asarray(count_a, float) + count_b) / (n_a + n_b)
    se = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b))
    z = np.divide(p_b - p_a, se, out=np.zeros_like(se), where=se > 0)
    p = np.array([math.erfc(abs(v) / math.sqrt(2.0)) for v in z])
    return z, p


def ndb_test(real_bins: torch.Tensor, test_bins: torch.Tensor, k: int, alpha: float = ALPHA) -> NDBResult:
    """NDB between the bin indices of the bins' own reals and of a tested set.

    (book: chapter 8, "NDB/K: is every mode there?")
    """
    real_counts = torch.bincount(real_bins.cpu(), minlength=k).numpy()
    test_counts = torch.bincount(test_bins.cpu(), minlength=k).numpy()
    z, p = two_proportion_test(real_counts, len(real_bins), test_counts, len(test_bins))
    return NDBResult(real_counts, test_counts, z, p, p < alpha, alpha)


def ndb(
    reals: Any,
    fakes: Any,
    *,
    num_bins: int = NUM_BINS,
    alpha: float = ALPHA,
    held_out: float = 0.5,
    max_side: int = MAX_SIDE,
    seed: int = 0,
    device: torch.device | str | None = None,
    return_results: bool = False,
) -> dict[str, float] | tuple[dict[str, float], NDBResult, NDBResult]:
    """NDB/K of ``fakes`` and of held-out reals: ``{'ndb_k': ..., 'ndb_k_real': ..., 'ndb_bins': K}``.

    ``reals`` (N, C, H, W), shuffled with ``seed``: ``1 - held_out`` of them make the bins, the rest are the
    calibration set; ``fakes`` any number of samples of the same shape. The generator is tested on as many
    fakes as there are held-out reals, so that both figures have the same statistical power.
    ``return_results=True`` also returns the two :class:`NDBResult` (fakes, held-out reals) for plots, with the
    bins' centres as pictures (``centres``).
    (book: chapter 8, "NDB/K: is every mode there?")
    """
    if tuple(reals.shape[1:]) != tuple(fakes.shape[1:]):
        raise ValueError(f"NDB needs reals and fakes of one shape, got {tuple(reals.shape[1:])} and "
                         f"{tuple(fakes.shape[1:])}")
    if not 0.0 < held_out < 1.0:
        raise ValueError(f"held_out must be a fraction between 0 and 1, got {held_out}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    n_bins_fit = int(round(len(reals) * (1.0 - held_out)))
    n_test = min(len(reals) - n_bins_fit, len(fakes))
    if n_bins_fit < 2 * num_bins or n_test < 1:
        raise ValueError(f"NDB with {num_bins} bins needs at least {2 * num_bins} reals to make the bins and some "
                         f"held out (got {len(reals)} reals, {len(fakes)} fakes): pass more images or fewer bins")
    if device is None:
        device = reals.device if isinstance(reals, torch.Tensor) else torch.device("cpu")
    device = torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    # A seeded shuffle first: the reals may come in file order (sorted by label, say).
    order = torch.randperm(len(reals), generator=generator).to(device)
    flat_reals = _flatten(reals, max_side, device)[order]
    centres, fit_bins = kmeans(flat_reals[:n_bins_fit], num_bins, generator)
    held = assign_bins(flat_reals[n_bins_fit:n_bins_fit + n_test], centres)
    generated = assign_bins(_flatten(fakes[:n_test], max_side, device), centres)
    pictures = centres.reshape(num_bins, *pooled_shape(reals.shape, max_side)).cpu().numpy()
    on_fakes = replace(ndb_test(fit_bins, generated, num_bins, alpha), centres=pictures)
    on_reals = replace(ndb_test(fit_bins, held, num_bins, alpha), centres=pictures)
    values = {"ndb_k": on_fakes.ndb_k, "ndb_k_real": on_reals.ndb_k, "ndb_bins": float(num_bins)}
    return (values, on_fakes, on_reals) if return_results else values
