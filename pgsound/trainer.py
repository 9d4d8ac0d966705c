"""The training loop: a state, a D step and a G step, and one ``train()`` that reads top to bottom (book: chapter 7).

The loop is generic: it trains a progressive GAN on any prepared dataset and knows nothing about audio (the
samples it writes go through ``pgsound.samples``, which does). Its shape follows stylegan2-ada-pytorch:

- everything that changes over a run comes from ``state.schedule.phase(images_shown)``, so resuming is exact;
- per step: one D step (WGAN-GP on faded reals and G's fakes), one G step with fresh latents, the EMA update;
- statistics are summed on the device and read once per tick: no host synchronisation per step;
- at the end of a tick, :func:`end_of_tick`: the log line, samples, metrics, a checkpoint (only of a finite
  state).

:class:`~pgsound.train_state.TrainState` (from ``pgsound.train_state``, and handed on here with
:func:`new_state` and :func:`resume_state`) holds what a run is; ``pgsound.run_outputs`` writes the log, samples
and checkpoints into the run folder, whose layout is ``pgsound.run_folder``'s. Errors are typed
(:class:`TrainingDiverged`, ``pgsound.run_folder.RunWriteError``); the commands word the advice.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from pgsound.config import TrainConfig
from pgsound.datasets.protocol import Dataset
from pgsound.distributed import ProcessGroup, average_gradients, average_tensor, split_batch
from pgsound.ema import ema_beta_at, update_ema
from pgsound.evaluate import evaluate_generator
from pgsound.loop_controls import progress_bar, stop_on_signals
from pgsound.loss import discriminator_loss, generator_loss
from pgsound.networks import Alpha
from pgsound.run_folder import RunWriteError
from pgsound.run_outputs import OpenRun, open_run, save_state, write_fakes
from pgsound.schedule import Phase
from pgsound.train_state import TrainState, new_state, resume_state

__all__ = ["TrainState", "TrainingDiverged", "new_state", "resume_state", "train", "train_step"]

STAT_NAMES = ("loss_d", "loss_g", "penalty", "drift", "score_real", "score_fake")


class TrainingDiverged(RuntimeError):
    """A loss became NaN or Inf; the message names the last good checkpoint."""


# ---------------------------------------------------------------------- one step
def autocast(state: TrainState) -> contextlib.AbstractContextManager:
    """bf16 autocast when the config asks for it (on the CPU only with ``cpu_bf16``), else nothing."""
    config, device = state.config, state.device
    if config.precision == "bf16" and (device.type == "cuda" or config.cpu_bf16):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def draw_latents(state: TrainState, n: int) -> torch.Tensor:
    return torch.randn(n, state.G.latent_size, device=state.device, generator=state.latent_rng)


def draw_labels(state: TrainState, n: int) -> torch.Tensor | None:
    """Labels of random real images for G's fakes (None unless conditional).

    As NVIDIA's ``get_random_labels_tf``: G sees each class as often as D does (uniform labels over-ask rare
    classes, and D's label term then fights the data). NVIDIA's G loss draws them so; its D loss gives the fakes
    the reals' own labels. Here both steps draw: the same distribution, and the D step's fakes do not depend on
    which reals it drew.
    """
    if not state.config.conditional:
        return None
    labels = state.loader.labels
    return labels[torch.randint(len(labels), (n,), device=state.device, generator=state.latent_rng)]


def d_step(
    state: TrainState, level: int, alpha: Alpha, fade_alpha: float, batch: int
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One optimizer step of D: WGAN-GP on a batch of faded reals and a batch of G's fakes.

    ``alpha`` goes to the networks (a tensor during a fade-in), ``fade_alpha`` (the same value as a float) to the
    loader, which fades the reals as the networks fade their paths. Returns D's loss and its parts.
    (book: chapter 7, "One D step, one G step")
    """
    if state.config.conditional:
        reals, real_labels = state.loader.batch(level, batch, fade_alpha, with_labels=True)
    else:
        reals, real_labels = state.loader.batch(level, batch, fade_alpha), None
    fake_labels = draw_labels(state, batch)
    with torch.no_grad(), autocast(state):  # fakes without a graph back into G
        fakes = state.g_forward(draw_latents(state, batch), level, alpha, fake_labels)
    state.D.requires_grad_(True)
    with autocast(state):
        loss_d, parts = discriminator_loss(
            state.d_forward, reals, fakes.float(), level, alpha, state.config.loss,
            real_labels=real_labels, fake_labels=fake_labels, generator=state.penalty_rng,
            penalty_net=state.D,  # eager: compiled graphs have no double backward
        )
    state.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    average_gradients(state.D, state.group)
    state.opt_d.step()
    return loss_d, parts


def g_step(state: TrainState, level: int, alpha: Alpha, batch: int) -> torch.Tensor:
    """One optimizer step of G on fresh latents, through a D whose weights are frozen; returns G's loss.

    (book: chapter 7, "One D step, one G step")
    """
    state.D.requires_grad_(False)  # the gradient flows through D to G; none is stored for D's weights
    fake_labels = draw_labels(state, batch)
    with autocast(state):
        fakes = state.g_forward(draw_latents(state, batch), level, alpha, fake_labels)
        loss_g = generator_loss(state.d_forward, fakes, level, alpha, state.config.loss, fake_labels=fake_labels)
    state.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    average_gradients(state.G, state.group)
    state.opt_g.step()
    return loss_g


def starts_new_stage(previous: float, current: float) -> bool:
    """Whether the floor or the ceiling of the continuous level changed: a fade-in began or ended.

    NVIDIA's rule for resetting the optimizers (``reset_opt_for_new_lod``): new layers get fresh moments
    when they appear, and again when the old path is gone. (book: chapter 7, The training loop)
    """
    return math.floor(previous) != math.floor(current) or math.ceil(previous) != math.ceil(current)


def train_step(state: TrainState) -> tuple[Phase, torch.Tensor]:
    """One D step, one G step and the EMA at the current phase.

    Returns the phase and the step's statistics (:data:`STAT_NAMES`) as one tensor on the device, unread.
    (book: chapter 7, The training loop)
    """
    config = state.config
    phase = state.phase()
    level = state.continuous_level()
    if config.optimizer.reset_on_growth and starts_new_stage(state.last_level, level):
        state.opt_g.state.clear()
        state.opt_d.state.clear()
    state.last_level = level
    for opt in (state.opt_g, state.opt_d):
        for group in opt.param_groups:
            group["lr"] = phase.lr
    batch = split_batch(phase.batch_size, state.group)
    # During a fade-in alpha goes to the networks as a tensor: a compiled G and D then see one graph for the
    # whole fade, not one per value. The loader's fade is eager and takes the float.
    alpha = torch.full((), phase.alpha, device=state.device) if phase.fading else 1.0
    loss_d, parts = d_step(state, phase.level, alpha, phase.alpha, batch)
    loss_g = g_step(state, phase.level, alpha, batch)
    rampup_images = state.images_shown
    if config.ema_rampup_from == "level":
        rampup_images -= round(1000 * state.schedule.level_start_kimg(phase.level))
    # After the G step: Gs follows the newest G (NVIDIA updates Gs with the next D step, one G step behind).
    update_ema(state.Gs, state.G, ema_beta_at(config.ema_beta, phase.batch_size, rampup_images, config.ema_rampup))
    state.images_shown += phase.batch_size
    stats = [loss_d, loss_g] + [parts[name] for name in STAT_NAMES[2:]]
    return phase, torch.stack([s.detach().float() for s in stats])


# ---------------------------------------------------------------------- the loop
@dataclass
class TickReport:
    """What one tick did, as read from the device once at its end."""

    tick: int
    kimg: float
    phase: Phase
    stats: dict[str, float]
    sec_per_kimg: float
    peak_mem_gb: float | None
    checkpoint: Path | None


@dataclass
class TrainResult:
    """What :func:`train` returns: the state it ended in, its ticks, the last checkpoint, why it stopped."""

    state: TrainState
    ticks: list[TickReport]
    checkpoint: Path | None
    stop_signal: int | None  # the SIGINT or SIGTERM that stopped it early, if one did


def train(
    config: TrainConfig,
    dataset: Dataset,
    run_dir: str | Path | None = None,
    *,
    state: TrainState | None = None,
    stop_kimg: float | None = None,
    max_steps: int | None = None,
    device: torch.device | str | None = None,
    group: ProcessGroup | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train until ``schedule.total_kimg`` (or ``stop_kimg`` in all, or ``max_steps`` steps more).

    ``state``: continue this state (from :func:`new_state` or :func:`resume_state`) instead of a fresh one;
    the caller's object is trained in place. ``config`` and ``dataset`` are still given, so that a fresh and a
    continued run read alike, and must be the state's own; ``device`` and ``group`` build a fresh state only,
    and are refused beside one. ``run_dir``: where the log, samples and checkpoints go (None:
    nowhere, for experiments in memory). SIGINT and SIGTERM finish the step, end the tick (checkpoint
    included) and return. (book: chapter 7, The training loop)
    """
    # Set up: the state, the stop conditions, the tick's counters.
    if state is None:
        state = new_state(config, dataset, device, group)
    elif state.config != config or state.loader.dataset is not dataset:
        raise ValueError("train(state=...) continues a state with its own config and dataset: pass those")
    elif device is not None or group is not None:
        raise ValueError("train(state=...) continues a state on its own device and process group: leave out "
                         "device and group")
    main = state.group.is_main
    total_kimg = config.schedule.total_kimg if stop_kimg is None else stop_kimg
    total_images = round(total_kimg * 1000)
    bar = progress_bar(total_kimg, state.images_shown) if progress and main else None
    ticks: list[TickReport] = []
    stats = torch.zeros(len(STAT_NAMES), device=state.device)  # summed on the device, read once per tick
    steps = steps_in_tick = 0
    tick_images, tick_start = state.images_shown, time.perf_counter()
    if state.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(state.device)

    with open_run(state, run_dir if main else None) as run, stop_on_signals() as stop:
        while state.images_shown < total_images and not stop.requested:
            # Train: one D step, one G step, the EMA, at the phase of the images shown.
            phase, step_stats = train_step(state)
            stats += step_stats
            steps += 1
            steps_in_tick += 1

            # Done? At total_kimg, after max_steps, or on SIGINT/SIGTERM: each ends with a tick.
            out_of_steps = max_steps is not None and steps >= max_steps
            final = out_of_steps or stop.requested or state.images_shown >= total_images
            if not final and state.images_shown - tick_images < phase.tick_kimg * 1000:
                continue

            # End of a tick: one read from the device; the log line, samples, metrics and a checkpoint.
            seconds = time.perf_counter() - tick_start
            report = end_of_tick(state, run, phase, stats / steps_in_tick, seconds,
                                 state.images_shown - tick_images, final=final, echo=bar is None)
            ticks.append(report)
            if bar is not None:
                bar.update(report.kimg - bar.n)
                bar.set_postfix_str(f"level {phase.level} ({phase.resolution}px) alpha {phase.alpha:.2f} "
                                    f"{report.sec_per_kimg:.1f} s/kimg")

            # The next tick starts from zero.
            stats.zero_()
            steps_in_tick = 0
            tick_images, tick_start = state.images_shown, time.perf_counter()
            if out_of_steps:
                break

    # Done: what the run ended in.
    if bar is not None:
        bar.close()
    checkpoint = run.last_checkpoint if run else None
    if stop.requested and main:
        print(f"stopped by {signal.Signals(stop.signal).name} at {state.images_shown / 1000:.1f} kimg"
              + (f"; checkpoint {checkpoint}" if checkpoint else ""))
    return TrainResult(state, ticks, checkpoint, stop.signal)


def end_of_tick(
    state: TrainState, run: OpenRun | None, phase: Phase, mean_stats: torch.Tensor, seconds: float,
    images: int, final: bool, echo: bool = True,
) -> TickReport:
    """The tick's one read from the device; then the divergence check, the log line, metrics, samples and a
    checkpoint, each at its interval (all at the end of the run). ``echo`` prints the tick line."""
    config = state.config
    # Whether every weight is finite, read with the statistics: a step can leave an Inf in a weight after the
    # tick's losses were computed, and that state must not be saved as good.
    finite = torch.stack([p.isfinite().all() for net in (state.G, state.D, state.Gs) for p in net.parameters()])
    *means, finite_share = average_tensor(torch.cat([mean_stats, finite.all().float()[None]]), state.group).tolist()
    stats = dict(zip(STAT_NAMES, means))
    state.tick += 1
    kimg = state.images_shown / 1000
    if not all(math.isfinite(v) for v in stats.values()) or finite_share < 1:
        bad = ", ".join(f"{k}={v}" for k, v in stats.items() if not math.isfinite(v)) or "a weight is not finite"
        good = (run.last_checkpoint if run else None) or "none written yet"
        raise TrainingDiverged(
            f"training diverged at {kimg:.3f} kimg (level {phase.level}, alpha {phase.alpha:.3f}): {bad}. "
            f"Nothing was saved from this tick; the last good checkpoint is {good}."
        )
    on_cuda = state.device.type == "cuda"
    peak = torch.cuda.max_memory_allocated(state.device) / 2**30 if on_cuda else None
    report = TickReport(state.tick, kimg, phase, stats, seconds / max(images / 1000, 1e-9), peak, None)
    if run is None:
        return report
    record = {
        "tick": state.tick, "kimg": kimg, "level": phase.level,
        "resolution": "x".join(map(str, state.schedule.level_shape(phase.level))),
        "alpha": phase.alpha, "batch": phase.batch_size, "lr": phase.lr, **stats,
        "sec_per_kimg": report.sec_per_kimg, "peak_mem_gb": peak, "time": time.time(),
    }
    every = config.metrics_every_ticks
    if config.metrics and every and (state.tick % every == 0 or final):
        values, _ = evaluate_generator(state.Gs, state.loader, phase.level, phase.alpha, config.metrics_images,
                                       config.metrics, seed=config.seed, conditional=config.conditional,
                                       held_out=False)
        record.update(values)
    milestone_images = round(config.milestone_every_kimg * 1000)
    crossed = milestone_images > 0 and (
        state.images_shown // milestone_images > (state.images_shown - images) // milestone_images)
    try:
        line = run.log.tick(record)
        if echo:
            print(line, flush=True)
        if final or state.tick % config.samples_every_ticks == 0:
            write_fakes(state, run)
    except OSError as error:
        # A full disk while logging or writing samples: the tick's training is kept if a checkpoint still fits
        # (save_state's own error names the last good one if not). Exact on resume: samples use their own seed.
        kept = run.last_checkpoint = save_state(state, run, milestone=crossed)
        raise RunWriteError(error, f"training stopped, the checkpoint {kept} holds this tick", run.path, kept) from None
    if final or crossed or state.tick % config.checkpoint_every_ticks == 0:
        report.checkpoint = run.last_checkpoint = save_state(state, run, milestone=crossed)
    return report
