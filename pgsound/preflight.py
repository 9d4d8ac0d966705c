"""Walk a run's whole schedule before training it: one real step per phase (book: chapter 10, Before renting a GPU).

A progressive run meets its largest pictures, its smallest minibatch and its largest memory only after hours.
``preflight`` resolves the config as ``train`` does, checks it by arithmetic (``pgsound.plan``), then for every
phase of the schedule (the base level, each level's fade-in and its stable phase) sets the run to the middle of
that phase and times one real training step there, after an untimed one where the shapes are new: faded reals
from the loader, the D step with its penalty, the G step, the EMA, Adam's reset where the schedule resets it.
Each row of its table says what the phase costs on this device, measured with ``pgsound.measure``: FLOPs per
image (``torch.utils.flop_counter``), the step's time, peak memory and checkpoint size, and the hours the phase
would take at that step time. ``--widths narrow`` walks ``pgsound.plan.narrow_config``'s networks. Finally it
writes a checkpoint two steps before the end of a fade-in, and another two steps before the next level starts
to fade in, resumes from each across that boundary and checks that the resumed runs are bit-identical to the
uninterrupted ones (``pgsound.resume_check``).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from pgsound.config import TrainConfig
from pgsound.datasets.protocol import Dataset
from pgsound.device import configure_process, default_device, describe_device
from pgsound.errors import UserError
from pgsound.measure import PeakMemory, StepFlopCounter, Stopwatch, state_bytes, used_parameters
from pgsound.memory import format_bytes
from pgsound.plan import check_run, narrow_config, per_process_config, run_schedule
from pgsound.resume_check import resumes_bit_exactly
from pgsound.schedule import PhaseWindow, Schedule
from pgsound.trainer import TrainState, new_state, starts_new_stage, train_step


class PreflightError(UserError):
    """A phase that fails; the message names the phase, the setting and the fix."""


@dataclass
class PhaseRow:
    """What one phase's step measured."""

    phase: str  # "256x256 fade"
    level: int
    kind: str
    minibatch: int
    per_process: int
    alpha: float
    lr: float
    adam_reset: bool
    g_params: int  # parameters that took part in the step
    d_params: int
    gflop_per_image: float
    step_seconds: float
    peak_memory_bytes: int
    checkpoint_bytes: int
    kimg: float
    hours: float  # kimg / minibatch steps at step_seconds each


@dataclass
class PreflightReport:
    device: str
    memory_kind: str  # how peak memory was measured
    widths: str
    nproc: int
    rows: list[PhaseRow] = field(default_factory=list)
    resume_exact: bool | None = None
    resume_checkpoint_bytes: int = 0
    wall_seconds: float = 0.0

    @property
    def total_hours(self) -> float:
        return sum(row.hours for row in self.rows)

    def table(self) -> str:
        """The report as a fixed-width text table."""
        head = ("phase", "batch", "alpha", "lr", "reset", "G params", "D params", "GFLOP/img", "s/step",
                "peak mem", "ckpt", "kimg", "hours")
        lines = []
        for r in self.rows:
            batch = f"{r.minibatch}" if self.nproc == 1 else f"{r.minibatch}/{self.nproc}={r.per_process}"
            lines.append((
                r.phase, batch, f"{r.alpha:.2f}", f"{r.lr:g}", "yes" if r.adam_reset else "", f"{r.g_params:,}",
                f"{r.d_params:,}", format_number(r.gflop_per_image), format_number(r.step_seconds),
                format_bytes(r.peak_memory_bytes), format_bytes(r.checkpoint_bytes), f"{r.kimg:g}",
                format_number(r.hours),
            ))
        widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(head)]
        left = {0}

        def fmt(cells: tuple[str, ...]) -> str:
            return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

        out = [fmt(head), "  ".join("-" * w for w in widths), *(fmt(line) for line in lines)]
        kimg = sum(r.kimg for r in self.rows)
        out.append(f"total: {kimg:g} kimg in {format_number(self.total_hours)} hours of training steps on "
                   f"{self.device} (peak memory: {self.memory_kind})")
        if self.resume_exact is not None:
            verdict = "bit-identical" if self.resume_exact else "DIFFERENT"
            out.append(f"resume from a checkpoint ({format_bytes(self.resume_checkpoint_bytes)}) across the end of a "
                       f"fade-in and across the start of the next level: {verdict} to the uninterrupted run")
        return "\n".join(out)


def format_number(x: float) -> str:
    """Three significant digits, without an exponent: 0.00123, 45.6, 1,270."""
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _phase_error(name: str, plan_batch: int, error: BaseException, device: torch.device) -> PreflightError:
    if isinstance(error, torch.OutOfMemoryError):
        return PreflightError(
            f"{name} (minibatch {plan_batch}): out of memory on {device}: lower that resolution's entry in "
            f"schedule.minibatch, train with more processes, or narrow the networks (g.fmap_max, d.fmap_max)"
        )
    return PreflightError(f"{name} (minibatch {plan_batch}) failed: {type(error).__name__}: {error}")


def preflight(
    config: TrainConfig,
    dataset: Dataset,
    device: torch.device | str | None = None,
    nproc: int = 1,
    widths: str = "preset",
    check_resume: bool = True,
    on_row: Callable[[PhaseRow], None] | None = None,
) -> PreflightReport:
    """Check ``config`` on ``dataset`` by arithmetic, then take one real training step in every phase.

    ``nproc``: the processes the run will use (each step is one process's share of the minibatch);
    ``widths``: ``"preset"`` (the config's own) or ``"narrow"`` (every width divided by up to 32: seconds on a
    laptop, the same shapes, minibatches and schedule). ``on_row`` is called after each phase.
    Raises :class:`PreflightError` (or ``pgsound.plan.PlanError``) at the first phase that fails.
    (book: chapter 10, Before renting a GPU)
    """

    started = time.perf_counter()
    device = torch.device(device) if device is not None else default_device()
    configure_process(device)  # as pgsound train does: the step's speed and memory are the run's
    resolution = tuple(dataset.resolution)
    # Arithmetic first: a minibatch that cannot split fails here, before any network is built.
    check_run(config, resolution, dataset.channels, dataset.num_labels, nproc)
    schedule = run_schedule(config, resolution)  # the whole run's: its minibatches are the global ones
    num_levels = schedule.num_levels
    if widths not in ("preset", "narrow"):
        raise UserError(f"widths must be 'preset' or 'narrow', got {widths!r}")
    walk_config = narrow_config(config, num_levels) if widths == "narrow" else config
    walk_config = per_process_config(walk_config, nproc)
    check_run(walk_config, resolution, dataset.channels, dataset.num_labels, 1)

    state = new_state(walk_config, dataset, device=device)
    memory = PeakMemory(state.device)
    report = PreflightReport(device=describe_device(state.device), memory_kind=memory.kind, widths=widths,
                             nproc=nproc)
    previous_level = None
    for window in schedule.windows():
        row = _walk_phase(state, schedule, window, memory, new_shapes=window.level != previous_level)
        previous_level = window.level
        report.rows.append(row)
        if on_row is not None:
            on_row(row)
    del state
    if check_resume:
        report.resume_exact, report.resume_checkpoint_bytes = resumes_bit_exactly(walk_config, dataset, device)
    report.wall_seconds = time.perf_counter() - started
    return report


def _walk_phase(state: TrainState, schedule: Schedule, window: PhaseWindow, memory: PeakMemory,
                new_shapes: bool) -> PhaseRow:
    """One phase's row; ``schedule`` is the whole run's, whose minibatch is the global one."""
    middle = round(500 * (window.start_kimg + window.end_kimg))
    global_phase = schedule.phase(middle)
    shape = schedule.level_shape(window.level)
    name = f"{shape[0]}x{shape[1]} {window.kind}"
    state.images_shown = middle
    reset = state.config.optimizer.reset_on_growth and starts_new_stage(state.last_level, state.continuous_level())
    for net in (state.G, state.D):
        net.zero_grad(set_to_none=True)
    flops = StepFlopCounter()
    try:
        if state.device.type != "cpu" or new_shapes:  # a GPU (CUDA, MPS) warms up at every phase
            # A warm-up step counts the FLOPs; the timed step then runs without the counter, whose Python hook
            # per operation would show in a GPU step's time. On CUDA cuDNN picks its algorithms for these shapes
            # in the first step. A CPU's first step at new shapes pays oneDNN's set-up of its kernels and the
            # first touch of the new activations' memory, which would overstate every fade-in's hours.
            with flops:
                train_step(state)
            state.images_shown = middle
            counter = contextlib.nullcontext()
        else:
            counter = flops  # on a CPU the hook per operation is noise beside the arithmetic
        memory.reset()
        with Stopwatch(state.device) as watch, counter:
            phase, stats = train_step(state)
        peak = memory.read()
        losses = stats.tolist()
    except (RuntimeError, ValueError) as error:
        raise _phase_error(name, global_phase.batch_size, error, state.device) from error
    if not all(math.isfinite(v) for v in losses):
        raise PreflightError(f"{name}: the step's losses are not finite ({losses}): the learning rate "
                             f"{phase.lr:g} or the loss settings diverge at once at this phase")
    # G's parameters took part in the G step; D's in the D step (the G step freezes D, so its grads remain).
    steps = window.kimg * 1000 / global_phase.batch_size
    return PhaseRow(
        phase=name, level=window.level, kind=window.kind, minibatch=global_phase.batch_size,
        per_process=phase.batch_size, alpha=phase.alpha, lr=phase.lr, adam_reset=reset,
        g_params=used_parameters(state.G), d_params=used_parameters(state.D),
        gflop_per_image=flops.get_total_flops() / phase.batch_size / 1e9, step_seconds=watch.seconds,
        peak_memory_bytes=peak, checkpoint_bytes=state_bytes(state.state_dict()), kimg=window.kimg,
        hours=steps * watch.seconds / 3600,
    )
