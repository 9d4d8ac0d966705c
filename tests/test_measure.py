"""Measuring a step (pgsound.measure): FLOPs against independent counts, the stopwatch, memory, state sizes."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import pgsound.loss as loss_module
from pgsound.config import resolve_config
from pgsound.datasets import ArrayDataset
from pgsound.loss import gradient_penalty, r1_penalty
from pgsound.measure import PeakMemory, StepFlopCounter, Stopwatch, state_bytes, used_parameters
from pgsound.trainer import new_state, train_step


class TwoDense(nn.Module):
    """A critic of two dense layers without bias or nonlinearity: (n, k) -> (n, m) -> (n, 1)."""

    def __init__(self, k: int, m: int) -> None:
        super().__init__()
        self.hidden, self.out = nn.Linear(k, m, bias=False), nn.Linear(m, 1, bias=False)

    def forward(self, x: torch.Tensor, level: int, alpha: float) -> torch.Tensor:
        return self.out(self.hidden(x.flatten(1)))


def test_a_dense_matrix_product_counts_2mnk():
    x, w = torch.randn(8, 32), torch.randn(32, 16)
    with StepFlopCounter() as counter:
        x @ w
    assert counter.get_total_flops() == 2 * 8 * 32 * 16


@pytest.mark.parametrize("penalty", ["wgan-gp", "r1"])
def test_the_penalty_and_its_double_backward_match_a_hand_count(penalty):
    """The step's own penalty code on a two-layer critic, the count checked against matrix products by hand.

    Forward: x W1 (2nkm), then W2 (2nm). The input gradient with its graph: through W2 (2nm) and W1 (2nkm).
    Its backward to the weights: the gradient of W1 (2nkm) and of the first product's input (2nkm), W2's
    (2nm); the input gradient's seed needs none. In all 8nkm + 6nm.
    """
    n, k, m = 4, 12, 5
    D = TwoDense(k, m)
    reals, fakes = torch.randn(n, 3, 2, 2), torch.randn(n, 3, 2, 2)
    with StepFlopCounter() as counter:
        if penalty == "wgan-gp":
            value = gradient_penalty(D, reals, fakes, level=0, alpha=1.0)
        else:
            value = r1_penalty(D, reals, level=0, alpha=1.0)
        value.mean().backward()
    assert counter.get_total_flops() == 8 * n * k * m + 6 * n * m
    assert D.hidden.weight.grad is not None and D.out.weight.grad is not None


def test_a_whole_step_is_its_penalty_and_the_rest_counted_by_torchs_own_counter(monkeypatch):
    """The training step with the penalty counts the same as the step without it, counted by torch's
    FlopCounterMode itself (nothing in it calls torch.autograd.grad), plus the penalty counted alone."""
    config = resolve_config("smoke", ["schedule.minibatch_default=4", "mbstd_group_size=2"])
    state = new_state(config, ArrayDataset.random(4, 3, (32, 32)), device="cpu")
    images = round(1000 * state.schedule.level_start_kimg(1)) + 40  # a fade-in: both paths of G and D run
    state.images_shown = images
    with StepFlopCounter() as whole:
        train_step(state)

    seen = {}

    def no_penalty(D, reals, fakes, level, alpha, target=1.0, generator=None):
        seen.update(D=D, reals=reals, fakes=fakes, level=level, alpha=alpha, target=target)
        return reals.new_zeros(reals.shape[0])

    monkeypatch.setattr(loss_module, "gradient_penalty", no_penalty)
    state.images_shown = images
    with FlopCounterMode(display=False) as rest:
        train_step(state)
    monkeypatch.undo()
    seen["D"].requires_grad_(True)  # as in the D step (the G step froze it)
    with StepFlopCounter() as penalty:
        gradient_penalty(seen["D"], seen["reals"], seen["fakes"], seen["level"], seen["alpha"],
                         seen["target"]).mean().backward()
    assert penalty.get_total_flops() > 0
    assert whole.get_total_flops() == rest.get_total_flops() + penalty.get_total_flops()


def test_the_counter_hands_modules_views_of_leaves_only_while_it_counts():
    x = torch.randn(2, 3, requires_grad=True)
    layer = nn.Linear(3, 4, bias=False)
    received = []
    layer.register_forward_pre_hook(lambda module, args: received.append(args[0] is x))
    counter = StepFlopCounter()
    with pytest.raises(RuntimeError, match="inside"):
        with counter:
            layer(x)
            raise RuntimeError("inside")
    with counter:
        layer(x)
    layer(x)
    assert received == [False, False, True]
    assert counter.get_total_flops() == 2 * 2 * 3 * 4  # the last block's alone


def test_the_stopwatch_times_its_block_by_the_clock_it_is_given():
    ticks = iter([10.0, 12.5])
    with Stopwatch(torch.device("cpu"), clock=lambda: next(ticks)) as watch:
        pass
    assert watch.seconds == 2.5
    with Stopwatch(torch.device("cpu")) as watch:
        time.sleep(0.01)
    assert watch.seconds >= 0.01


def test_state_bytes_and_used_parameters():
    state = {"G": {"w": torch.zeros(3, 4)}, "opt": [torch.zeros(2, dtype=torch.float64)], "step": 7}
    assert state_bytes(state) == 3 * 4 * 4 + 2 * 8
    layers = nn.Sequential(nn.Linear(3, 4), nn.Linear(3, 5))
    layers[0](torch.randn(2, 3)).sum().backward()
    assert used_parameters(layers) == 3 * 4 + 4


def test_peak_memory_on_the_cpu_is_the_resident_set():
    memory = PeakMemory(torch.device("cpu"))
    memory.reset()
    assert memory.read() > 0 and "resident set" in memory.kind
