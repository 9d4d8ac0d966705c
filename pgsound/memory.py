"""Will a run fit? A lower bound on a training step's memory, checked before anything is allocated.

A setting that cannot fit (``--set schedule.minibatch_default=100000000``, ``latent_size=1000000000``) must be
refused with the setting and the estimate, not found by the operating system's out-of-memory killer after the
run folder exists. The networks are built on torch's ``meta`` device, which records shapes and allocates
nothing, so their parameters and one sample's activations are counted exactly, for any size. The bound counts
what a step cannot do without: G, Gs and D's weights, their gradients and Adam's two moments, and for each
level's minibatch the activations of G's forward pass and of D's on the reals and on the fakes (kept for the
backward pass). The real step needs more (the gradient penalty's double backward, temporaries), which
``pgsound preflight`` measures; a bound is enough to refuse what can never fit. (book: chapter 10)
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import torch

from pgsound.config import TrainConfig
from pgsound.errors import UserError

FLOAT_BYTES = 4


@dataclass(frozen=True)
class StepMemory:
    """The lower bound on one training step's memory, and the level where it is largest."""

    state_bytes: int  # weights, gradients and Adam's moments of G, Gs and D
    activation_bytes: int  # G's and D's saved activations for the level's minibatch
    level: int
    resolution: tuple[int, int]
    minibatch: int

    @property
    def total_bytes(self) -> int:
        return self.state_bytes + self.activation_bytes


def format_bytes(n: int) -> str:
    """``1.5 GiB``, ``396 KiB``; ``-`` for nothing."""
    if n <= 0:
        return "-"
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} B"


def _activation_elements(module: torch.nn.Module, *inputs: Any, **kwargs: Any) -> int:
    """Elements of every leaf module's output in one forward pass (on the meta device: nothing computed)."""
    count = 0

    def hook(_module: torch.nn.Module, _inputs: Any, output: Any) -> None:
        nonlocal count
        if isinstance(output, torch.Tensor):
            count += output.numel()

    leaves = [m for m in module.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad():
            module(*inputs, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    return count


def step_memory(config: TrainConfig, data: Any, nproc: int = 1) -> StepMemory:
    """The largest lower bound over the run's levels, for ``data`` (anything with resolution, channels, labels)."""
    from pgsound.plan import level_plans, run_schedule
    from pgsound.runs import build_networks

    with torch.device("meta"):
        G, D = build_networks(config, data)
    g_params = sum(p.numel() for p in G.parameters())
    d_params = sum(p.numel() for p in D.parameters())
    # G: weights, gradients, two Adam moments and Gs's copy; D: weights, gradients, two moments.
    state = FLOAT_BYTES * (5 * g_params + 4 * d_params)
    labels = data.num_labels if config.conditional else 0
    best: StepMemory | None = None
    for plan in level_plans(run_schedule(config, tuple(data.resolution)), nproc):
        batch = max(1, plan.per_process)
        z = torch.empty(1, G.latent_size, device="meta")
        y = torch.zeros(1, dtype=torch.long, device="meta") if labels else None
        g_elements = _activation_elements(G, z, plan.level, 1.0, labels=y)
        image = torch.empty(1, data.channels, *plan.shape, device="meta")
        d_elements = _activation_elements(D, image, plan.level, 1.0)
        activations = FLOAT_BYTES * batch * (g_elements + 2 * d_elements)
        found = StepMemory(state, activations, plan.level, tuple(plan.shape), batch)
        if best is None or found.total_bytes > best.total_bytes:
            best = found
    assert best is not None
    return best


def device_memory(device: torch.device) -> tuple[int, str] | None:
    """(bytes, what they are) that ``device`` can hold at most, or None where the platform does not say."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory, f"{device}'s memory"
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):  # Windows has no sysconf
        return None
    return physical, "this machine's memory" if device.type == "cpu" else f"the memory {device} shares"


def check_fits(config: TrainConfig, data: Any, device: torch.device | str, nproc: int = 1) -> StepMemory:
    """Refuse, naming the settings and the estimate, a run whose step cannot fit in ``device``'s memory."""
    need = step_memory(config, data, nproc)
    limit = device_memory(torch.device(device))
    if limit is not None and need.total_bytes > limit[0]:
        height, width = need.resolution
        raise UserError(
            f"a training step needs at least {format_bytes(need.total_bytes)} and {limit[1]} is "
            f"{format_bytes(limit[0])}: {format_bytes(need.state_bytes)} for the networks and Adam "
            f"(latent_size, g.fmap_base/fmap_max, d.fmap_base/fmap_max) and {format_bytes(need.activation_bytes)} "
            f"for the activations of a minibatch of {need.minibatch} at {height}x{width} "
            f"(schedule.minibatch_default, schedule.minibatch): lower those settings"
        )
    return need


def check_pictures_fit(count: int, shape: tuple[int, ...], what: str, setting: str) -> None:
    """Refuse ``count`` float32 pictures of ``shape`` that this machine's memory cannot hold, naming ``setting``.

    ``pgsound generate`` and ``pgsound evaluate`` hold their pictures in memory; a typo in ``--n`` must not
    take the machine down.
    """
    need = FLOAT_BYTES * count * math.prod(shape)
    limit = device_memory(torch.device("cpu"))
    if limit is not None and need > limit[0]:
        raise UserError(
            f"{what}: {count} pictures of {'x'.join(map(str, shape))} need at least {format_bytes(need)} and "
            f"{limit[1]} is {format_bytes(limit[0])}: lower {setting}"
        )
