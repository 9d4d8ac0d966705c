"""The generator's exponential moving average, Gs (book: chapter 7, The training loop).

Samples and metrics come from Gs, not from G: averaging the weights over the last few thousand steps smooths
out the oscillation that adversarial training leaves in G. After every G step,
``Gs = beta * Gs + (1 - beta) * G`` for each parameter; buffers are copied.

The paper uses beta = 0.999 from the first step. Over a run of hundreds of kimg that is fine; over a laptop run
of a few kimg, Gs still averages in the untrained G of the first thousand steps and shows noise. The optional
ramp-up of stylegan2-ada-pytorch fixes that: the average's half-life (in images) is capped at
``rampup * images_shown``, so early in a run Gs follows G closely and later it is the paper's average.

A progressive run meets the same problem again at every level: the new level's layers start from their random
initial weights when it begins to fade in, and Gs averages them in. With ``ema_rampup_from: level`` the trainer
counts the ramp-up's images from the start of the current level's fade-in instead of the start of the run
(book: chapter 9, "Which generator to listen to").
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def make_ema(model: nn.Module) -> nn.Module:
    """A frozen copy of ``model`` to hold the average (no gradients, eval mode)."""
    ema = copy.deepcopy(model).eval()
    ema.requires_grad_(False)
    return ema


def ema_beta_at(beta: float, batch_size: int, images_shown: int, rampup: float | None = None) -> float:
    """The EMA's beta for one step (book: chapter 7, "Gs: why we sample from an average").

    Without ``rampup``: ``beta``. With it: the half-life ``batch_size * ln(0.5) / ln(beta)`` images is capped at
    ``rampup * images_shown``, and beta = 0.5 ** (batch_size / half_life).
    """
    if not rampup or beta <= 0.0 or beta >= 1.0:
        return beta
    half_life = batch_size * math.log(0.5) / math.log(beta)
    half_life = min(half_life, max(rampup * images_shown, 1e-8))
    return 0.5 ** (batch_size / half_life)


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """``ema = beta * ema + (1 - beta) * model`` in place, parameters only; buffers are copied."""
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"EMA beta must be in [0, 1], got {beta}")
    ema_params = list(ema.parameters())
    params = [p.detach() for p in model.parameters()]
    if len(ema_params) != len(params):
        raise ValueError("the EMA copy and the model have different parameters")
    torch._foreach_lerp_(ema_params, params, 1.0 - beta)
    for ema_buffer, buffer in zip(ema.buffers(), model.buffers(), strict=True):
        ema_buffer.copy_(buffer)
