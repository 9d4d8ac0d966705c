"""The 2-D GAN laboratory of chapter 3: data, mode coverage, critic surfaces and gradient norms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pgsound.toy2d import (
    PointCritic,
    critic_gradient_norms,
    critic_surface,
    mlp,
    mode_coverage,
    ring_centres,
    ring_of_gaussians,
)


def test_ring_centres_lie_on_the_circle_evenly():
    centres = ring_centres(8, 2.0).double().numpy()
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 2.0, rtol=1e-6)
    angles = np.sort(np.mod(np.arctan2(centres[:, 1], centres[:, 0]), 2 * math.pi))
    np.testing.assert_allclose(np.diff(angles), 2 * math.pi / 8, atol=1e-6)


def test_ring_of_gaussians_statistics_and_seeding():
    points = ring_of_gaussians(20000, 8, 2.0, 0.05, generator=torch.Generator().manual_seed(0))
    distances = torch.cdist(points, ring_centres(8, 2.0))
    nearest, which = distances.min(dim=1)
    offsets = points - ring_centres(8, 2.0)[which]
    assert offsets.std(dim=0).numpy() == pytest.approx([0.05, 0.05], rel=0.03)
    shares = torch.bincount(which, minlength=8).double() / len(points)
    assert shares.numpy() == pytest.approx(np.full(8, 1 / 8), abs=0.01)
    again = ring_of_gaussians(20000, 8, 2.0, 0.05, generator=torch.Generator().manual_seed(0))
    assert torch.equal(points, again)
    with pytest.raises(ValueError, match="std > 0"):
        ring_of_gaussians(10, std=0.0)


def test_mode_coverage_counts_modes_and_good_samples():
    centres = ring_centres(8, 2.0)
    points = ring_of_gaussians(4000, 8, 2.0, 0.05, generator=torch.Generator().manual_seed(1))
    covered, good = mode_coverage(points)
    assert covered == 8 and good > 0.98  # 3 sigma in 2-D holds 98.9% of a Gaussian
    collapsed = centres[[2]].repeat(1000, 1) + 0.01 * torch.randn(1000, 2)
    assert mode_coverage(collapsed) == (1, 1.0)
    half = torch.cat([centres[:4].repeat(250, 1), torch.zeros(1000, 2)])  # 4 modes + 50% junk at the origin
    covered, good = mode_coverage(half)
    assert covered == 4 and good == pytest.approx(0.5)
    # A mode with fewer than min_share of all samples does not count.
    sparse = torch.cat([centres[[0]].repeat(995, 1), centres[[1]].repeat(5, 1)])
    assert mode_coverage(sparse, min_share=0.01)[0] == 1


def test_critic_surface_and_gradient_norms_of_a_linear_critic():
    critic = PointCritic(hidden=1, depth=0)  # D(x) = w . x + b
    with torch.no_grad():
        critic.net[0].weight.copy_(torch.tensor([[3.0, -4.0]]))
        critic.net[0].bias.fill_(1.0)
    xs, ys, scores = critic_surface(critic, extent=2.0, steps=5)
    np.testing.assert_allclose(scores, 3 * xs - 4 * ys + 1, rtol=1e-6, atol=1e-6)
    assert xs[0, 0] == -2.0 and ys[-1, 0] == 2.0
    norms = critic_gradient_norms(critic, torch.randn(10, 2))
    np.testing.assert_allclose(norms.numpy(), 5.0, rtol=1e-6)


def test_mlp_shape_and_critic_signature():
    net = mlp(2, 3, hidden=8, depth=2)
    assert net(torch.zeros(5, 2)).shape == (5, 3)
    assert sum(isinstance(m, torch.nn.Linear) for m in net) == 3
    critic = PointCritic(hidden=8)
    assert critic(torch.zeros(4, 2), 3, 0.5).shape == (4,)
