"""The losses: WGAN-GP with the drift term as in the paper (book: chapter 3, The gradient penalty), and, as an
option outside the paper, chapter 3's non-saturating logistic loss with StyleGAN's R1 penalty on the reals.

WGAN-GP, with D's scores as a critic:

    L_D = mean D(fake) - mean D(real) + lambda * mean((||grad D(x_hat)|| - gamma)^2) / gamma^2
          + epsilon * mean D(real)^2
    L_G = -mean D(fake)

``x_hat`` lies on the line between a real and a fake image (``u ~ U(0, 1)`` per sample). Every term is a mean
over the batch, so the loss does not depend on the batch size. Reals and fakes go through D in separate calls.
The penalty's double backward runs in eager mode (pass the uncompiled D as ``penalty_net``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pgsound.config import LossConfig
from pgsound.networks import Alpha


def split_output(output: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, Any]:
    """D's scores, and its label logits when it has them (None otherwise)."""
    if isinstance(output, tuple):
        return output[0].float(), output[1].float()
    return output.float(), None


def gradient_penalty(
    D: nn.Module,
    reals: torch.Tensor,
    fakes: torch.Tensor,
    level: int,
    alpha: Alpha,
    target: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Per-sample ``(||grad D(x_hat)|| - target)^2 / target^2`` at ``x_hat = lerp(real, fake, u)``.

    (book: chapter 3, GANs in two dimensions)
    """
    if reals.shape != fakes.shape:
        raise ValueError(
            f"gradient penalty: reals {tuple(reals.shape)} and fakes {tuple(fakes.shape)} must have the same shape"
        )
    # One u per sample, broadcast over the sample's other axes (images, or points of the 2-D toy of chapter 3).
    u_shape = (reals.shape[0],) + (1,) * (reals.ndim - 1)
    u = torch.rand(u_shape, device=reals.device, generator=generator, dtype=torch.float32)
    mixed = torch.lerp(reals.detach().float(), fakes.detach().float(), u).requires_grad_(True)
    scores, _ = split_output(D(mixed, level, alpha))
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    norm = grad.float().flatten(1).norm(dim=1)
    return (norm - target).square() / target**2


def r1_penalty(D: nn.Module, reals: torch.Tensor, level: int, alpha: Alpha) -> torch.Tensor:
    """Per-sample ``||grad D(real)||^2`` (Mescheder et al. 2018)."""
    reals = reals.detach().requires_grad_(True)
    scores, _ = split_output(D(reals, level, alpha))
    (grad,) = torch.autograd.grad(scores.sum(), reals, create_graph=True)
    return grad.float().flatten(1).square().sum(dim=1)


def discriminator_loss(
    D: nn.Module,
    reals: torch.Tensor,
    fakes: torch.Tensor,
    level: int,
    alpha: Alpha,
    config: LossConfig,
    real_labels: torch.Tensor | None = None,
    fake_labels: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    penalty_net: nn.Module | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """D's loss and its parts (``penalty``, ``drift``, ``score_real``, ``score_fake``) as device tensors.

    ``config`` is a ``pgsound.config.LossConfig`` (kind, gp_lambda, gp_target, drift, r1_gamma,
    label_weight). (book: chapter 3, GANs in two dimensions)
    """
    real_scores, real_logits = split_output(D(reals, level, alpha))
    fake_scores, fake_logits = split_output(D(fakes.detach(), level, alpha))
    drift = real_scores.square().mean()
    penalty_net = penalty_net or D
    if config.kind == "wgan-gp":
        penalty = gradient_penalty(penalty_net, reals, fakes, level, alpha, config.gp_target, generator).mean()
        loss = fake_scores.mean() - real_scores.mean() + config.gp_lambda * penalty + config.drift * drift
    else:  # "logistic": LossConfig allows no other kind
        penalty = r1_penalty(penalty_net, reals, level, alpha).mean()
        loss = F.softplus(fake_scores).mean() + F.softplus(-real_scores).mean() + config.r1_gamma / 2 * penalty
    if real_logits is not None:
        if real_labels is None or fake_labels is None:
            raise ValueError("a conditional D needs real_labels and fake_labels (AC-GAN)")
        loss = loss + config.label_weight * (
            F.cross_entropy(real_logits, real_labels.long()) + F.cross_entropy(fake_logits, fake_labels.long())
        )
    stats = {
        "penalty": penalty.detach(),
        "drift": drift.detach(),
        "score_real": real_scores.mean().detach(),
        "score_fake": fake_scores.mean().detach(),
    }
    return loss, stats


def generator_loss(
    D: nn.Module,
    fakes: torch.Tensor,
    level: int,
    alpha: Alpha,
    config: LossConfig,
    fake_labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """G's loss: ``-mean D(fake)`` (WGAN-GP) or ``mean softplus(-D(fake))`` (logistic), plus the AC-GAN term."""
    scores, logits = split_output(D(fakes, level, alpha))
    if config.kind == "wgan-gp":
        loss = -scores.mean()
    else:  # "logistic"
        loss = F.softplus(-scores).mean()
    if logits is not None:
        if fake_labels is None:
            raise ValueError("a conditional D needs fake_labels (AC-GAN)")
        loss = loss + config.label_weight * F.cross_entropy(logits, fake_labels.long())
    return loss
