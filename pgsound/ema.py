"""The generator's exponential moving average, Gs (book: chapter 7, The training loop).

Samples and metrics come from Gs, not from G: averaging the weights over the last few thousand steps smooths
out the oscillation that adversarial training leaves in G. After every G step,
``Gs = beta * Gs + (1 - beta) * G`` for each parameter; buffers are copied.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def make_ema(model: nn.Module) -> nn.Module:
    """A frozen copy of ``model`` to hold the average (no gradients, eval mode)."""
    ema = copy.deepcopy(model).eval()
    ema.requires_grad_(False)
    return ema


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
