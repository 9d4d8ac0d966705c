"""A two-dimensional GAN laboratory: a ring of Gaussians, small MLPs, mode coverage, critic surfaces.

Everything a GAN does wrong shows up on a plane long before it shows up on spectrograms, and a plane can be
drawn. (book: chapter 3, GANs in two dimensions)
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


def ring_centres(modes: int = 8, radius: float = 2.0) -> torch.Tensor:
    """The ``modes`` centres, evenly spaced on a circle: (modes, 2)."""
    angles = torch.arange(modes, dtype=torch.float64) * (2 * math.pi / modes)
    return (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


def ring_of_gaussians(
    n: int,
    modes: int = 8,
    radius: float = 2.0,
    std: float = 0.05,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``n`` points (n, 2) from an equal mixture of ``modes`` Gaussians on a ring (book: chapter 3).

    The classic test of mode collapse (Metz et al. 2017, Gulrajani et al. 2017).
    """
    if n < 1 or modes < 1 or std <= 0:
        raise ValueError(f"ring_of_gaussians needs n >= 1, modes >= 1, std > 0; got n={n}, modes={modes}, std={std}")
    which = torch.randint(modes, (n,), generator=generator)
    points = ring_centres(modes, radius)[which] + std * torch.randn(n, 2, generator=generator)
    return points.to(device) if device is not None else points


def mode_coverage(
    samples: torch.Tensor, modes: int = 8, radius: float = 2.0, std: float = 0.05, min_share: float = 0.01
) -> tuple[int, float]:
    """How many modes a sample set covers, and the share of samples that lie near any mode.

    A sample is *near* a mode (high quality) within 3 standard deviations of its centre, the measure of
    Srivastava et al. (VEEGAN, 2017); a mode is *covered* when at least ``min_share`` of all samples lie near
    it. A collapsed generator covers few modes; a blurry one has a low share of good samples. (book: chapter 3)
    """
    samples = torch.as_tensor(samples, dtype=torch.float32).reshape(-1, 2)
    distances = torch.cdist(samples, ring_centres(modes, radius).to(samples.device))
    nearest, which = distances.min(dim=1)
    good = nearest < 3 * std
    counts = torch.bincount(which[good], minlength=modes)
    return int((counts >= min_share * len(samples)).sum()), float(good.float().mean())


def mlp(in_features: int, out_features: int, hidden: int = 128, depth: int = 3) -> nn.Sequential:
    """A plain MLP with ``depth`` hidden ReLU layers of width ``hidden``, linear output."""
    layers: list[nn.Module] = []
    width = in_features
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


class PointCritic(nn.Module):
    """An MLP critic on points that takes (and ignores) ``level`` and ``alpha``, like the image D.

    With that signature ``pgsound.loss`` (penalty, drift, losses) applies to it unchanged.
    """

    def __init__(self, hidden: int = 128, depth: int = 3) -> None:
        super().__init__()
        self.net = mlp(2, 1, hidden, depth)

    def forward(self, x: torch.Tensor, level: int = 0, alpha: float = 1.0) -> torch.Tensor:
        return self.net(x).squeeze(1)


@torch.no_grad()
def critic_surface(
    critic: nn.Module, extent: float = 3.0, steps: int = 100
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The critic's score over the square [-extent, extent]^2: (xs, ys, scores), each (steps, steps).

    Ready for ``plt.contourf(xs, ys, scores)``. (book: chapter 3)
    """
    device = next(critic.parameters()).device
    axis = torch.linspace(-extent, extent, steps)
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    points = torch.stack([xs.flatten(), ys.flatten()], dim=1).to(device)
    scores = critic(points).float().reshape(steps, steps).cpu()
    return xs.numpy(), ys.numpy(), scores.numpy()


def critic_gradient_norms(critic: nn.Module, points: torch.Tensor) -> torch.Tensor:
    """``||grad_x D(x)||`` at each point (n,): what the gradient penalty pushes towards 1. (book: chapter 3)"""
    points = points.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(points).sum(), points)
    return grad.norm(dim=1).detach()
