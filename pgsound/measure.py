"""Measuring a training step: its FLOPs, its time and its peak memory (book: chapter 10, Before renting a GPU).

``pgsound preflight`` and the benchmarks measure with these: :class:`StepFlopCounter` counts a whole step's
arithmetic, the gradient penalty's double backward included, through torch's public FLOP counter;
:class:`Stopwatch` times a block with the device's queued work in it; :class:`PeakMemory` reads the peak memory
of an interval on CUDA, Apple's GPU or the CPU; :func:`state_bytes` is a checkpoint's size before it is written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.nn.modules.module import register_module_forward_pre_hook
from torch.utils.flop_counter import FlopCounterMode
from torch.utils.hooks import RemovableHandle


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work: GPUs run asynchronously, and a step's time must include its work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


class Stopwatch:
    """Seconds that a ``with`` block takes by ``clock``, the device's work queued in it included.

    ``clock``: ``time.perf_counter`` (wall time) or ``time.process_time`` (this process's CPU time, which on a
    shared machine measures what the work costs rather than when the scheduler let it run).
    """

    def __init__(self, device: torch.device, clock: Callable[[], float] = time.perf_counter) -> None:
        self.device, self.clock = device, clock
        self.seconds = 0.0

    def __enter__(self) -> Stopwatch:
        synchronize(self.device)  # work queued before the block is not the block's
        self.start = self.clock()
        return self

    def __exit__(self, *exc: object) -> None:
        synchronize(self.device)
        self.seconds = self.clock() - self.start


def _leaves_as_views(module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """A module's positional inputs with every leaf tensor that requires grad replaced by a view of itself."""
    if not any(isinstance(a, torch.Tensor) and a.is_leaf and a.requires_grad for a in args):
        return None  # unchanged
    return tuple(a.view_as(a) if isinstance(a, torch.Tensor) and a.is_leaf and a.requires_grad else a
                 for a in args)


class StepFlopCounter:
    """``torch.utils.flop_counter.FlopCounterMode`` for a whole training step, the penalty's double backward included.

    FlopCounterMode also tracks which module each FLOP belongs to: it hooks the gradient of every module's
    inputs, and on an input that is a leaf (the penalty's mixed batch of reals and fakes, R1's reals) that hook
    raises inside ``torch.autograd.grad``. While counting, a global forward pre-hook
    (``torch.nn.modules.module.register_module_forward_pre_hook``, registered before the counter's own, so it
    runs first) hands such a module a view of the leaf instead: the same values, the same gradient reaching the
    leaf through the view, and nothing for the tracker to refuse. Only torch's public API is used, and nothing
    is left out of the count: :func:`get_total_flops` is every counted operator of the block (matrix
    products, convolutions and their backward, as ``torch.utils.flop_counter`` defines them).

    ``with StepFlopCounter() as flops: train_step(state)`` then ``flops.get_total_flops()``.
    """

    def __init__(self) -> None:
        self.mode = FlopCounterMode(display=False)
        self.hook: RemovableHandle | None = None

    def __enter__(self) -> StepFlopCounter:
        self.hook = register_module_forward_pre_hook(_leaves_as_views)
        try:
            self.mode.__enter__()
        except BaseException:
            self.hook.remove()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.mode.__exit__(*exc)
        finally:
            if self.hook is not None:
                self.hook.remove()
            self.hook = None

    def get_total_flops(self) -> int:
        """FLOPs counted in the last ``with`` block."""
        return int(self.mode.get_total_flops())


class PeakMemory:
    """Peak memory of the next interval: CUDA's allocator peak, or the process's peak resident set on Linux.

    On Apple's GPU (MPS), which keeps no peak and whose buffers the resident set does not count, it is the
    memory the MPS driver holds at the end of the interval. ``reset()`` starts the interval, ``read()`` ends it.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.clear_refs = Path("/proc/self/clear_refs")
        if device.type == "cuda":
            self.kind = f"max_memory_allocated on {device}"
        elif device.type == "mps":
            self.kind = "driver_allocated_memory on mps after the step (MPS keeps no peak)"
        elif self.clear_refs.exists():
            self.kind = "peak resident set of this process (VmHWM, reset per phase)"
        else:
            self.kind = "peak resident set of this process since it started"

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        if self.device.type == "mps":
            return
        try:
            self.clear_refs.write_text("5")  # Linux: "5" resets the peak resident set to the current one
        except OSError:
            pass

    def read(self) -> int:
        """Bytes."""
        if self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device))
        if self.device.type == "mps":
            return int(torch.mps.driver_allocated_memory())
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def state_bytes(value: Any) -> int:
    """Bytes of the tensors in a nested state dict (a checkpoint's size, less a little pickle overhead)."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(state_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(state_bytes(v) for v in value)
    return 0


def used_parameters(module: torch.nn.Module) -> int:
    """Parameters that took part in the last backward: those that hold a gradient."""
    return sum(p.numel() for p in module.parameters() if p.grad is not None)
