"""The training loop: a state, a D step and a G step, and one ``train()`` that reads top to bottom (book: chapter 7).

The loop is generic: it trains a progressive GAN on any prepared dataset and knows nothing about audio (the
samples it writes go through ``pgsound.samples``, which does). Its shape follows stylegan2-ada-pytorch:

- everything that changes over a run comes from ``state.schedule.phase(images_shown)``, so resuming is exact;
- per step: one D step (WGAN-GP on faded reals and G's fakes), one G step with fresh latents, the EMA update;
- statistics are summed on the device and read once per tick: no host synchronisation per step;
- at the end of a tick, :func:`end_of_tick`: the log line, samples, metrics, a checkpoint (only of a finite
  state).

:class:`TrainState` holds what a run is (networks, optimizers, random streams, images shown) and is exactly
what a checkpoint stores, with the config and the data spec; :class:`RunFolder` holds what a run writes.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pgsound.checkpoint import TRAINING_KEYS, CheckpointError, load_checkpoint, save_checkpoint
from pgsound.config import TrainConfig
from pgsound.datasets import LevelLoader
from pgsound.datasets.protocol import Dataset
from pgsound.device import default_device, describe_machine
from pgsound.distributed import ProcessGroup, average_gradients, average_tensor, split_batch
from pgsound.ema import ema_beta_at, make_ema, update_ema
from pgsound.evaluate import evaluate_generator
from pgsound.files import append_whole
from pgsound.generate import sample
from pgsound.loss import discriminator_loss, generator_loss
from pgsound.memory import check_fits
from pgsound.networks import Alpha
from pgsound.plan import check_run
from pgsound.runlog import RunLog
from pgsound.runs import (
    STRETCHES,
    DataSpec,
    build_networks,
    checkpoint_path,
    hold_run_dir,
    latest_good_checkpoint,
    load_into,
)
from pgsound.samples import write_sample_set
from pgsound.schedule import Phase, Schedule

STAT_NAMES = ("loss_d", "loss_g", "penalty", "drift", "score_real", "score_fake")


class TrainingDiverged(RuntimeError):
    """A loss became NaN or Inf; the message names the last good checkpoint."""


# ---------------------------------------------------------------------- the state
@dataclass(eq=False)
class TrainState:
    """G, D, their EMA Gs, both optimizers, the random streams and the count of images shown.

    Build one with :func:`new_state` or :func:`resume_state`; ``state_dict()`` is the checkpoint.
    """

    config: TrainConfig
    data: DataSpec
    G: torch.nn.Module
    D: torch.nn.Module
    Gs: torch.nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    loader: LevelLoader  # the reals, with the data-order and mirror streams
    latent_rng: torch.Generator
    penalty_rng: torch.Generator
    group: ProcessGroup
    schedule: Schedule  # built once from the config and the networks' levels; everything else asks it
    images_shown: int = 0
    tick: int = 0
    # The continuous level of the previous step (NVIDIA's prev_lod): Adam resets when its floor or ceiling
    # changes. -1 before the first step.
    last_progress: float = -1.0
    # What the steps call for G's and D's forward passes: the modules, or their torch.compile'd versions.
    g_forward: Callable[..., torch.Tensor] = field(default=None, repr=False)  # type: ignore[assignment]
    d_forward: Callable[..., torch.Tensor] = field(default=None, repr=False)  # type: ignore[assignment]

    @property
    def device(self) -> torch.device:
        return self.loader.device

    @property
    def max_level(self) -> int:
        return self.schedule.max_level

    def phase(self) -> Phase:
        """The level, alpha, minibatch and learning rate after the images shown so far."""
        return self.schedule.phase(self.images_shown)

    def progress(self) -> float:
        """The continuous level after the images shown so far (2.25: level 3 faded in by a quarter)."""
        return self.schedule.progress(self.images_shown)

    def state_dict(self) -> dict[str, Any]:
        """Everything a resume needs, as plain tensors, numbers and dicts."""
        rng = {"latent": self.latent_rng.get_state(), "penalty": self.penalty_rng.get_state(),
               "loader": self.loader.state_dict(), "torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "G": self.G.state_dict(), "D": self.D.state_dict(), "Gs": self.Gs.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "images_shown": self.images_shown, "tick": self.tick, "last_progress": self.last_progress,
            "rng": rng, "config": self.config.to_dict(), "data": self.data.to_dict(),
        }

    def load_state_dict(self, state: dict[str, Any], path: Path | None = None) -> None:
        """Take over a checkpoint's state; ``path`` names the file in the error when the networks do not fit."""
        for name in ("G", "D", "Gs"):
            load_into(getattr(self, name), state[name], path or Path("this state"))
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.images_shown = int(state["images_shown"])
        self.tick = int(state["tick"])
        self.last_progress = float(state["last_progress"])
        rng = state["rng"]
        self.latent_rng.set_state(rng["latent"].cpu())
        self.penalty_rng.set_state(rng["penalty"].cpu())
        self.loader.load_state_dict(rng["loader"])
        torch.set_rng_state(rng["torch"].cpu())
        if self.device.type == "cuda" and "cuda" in rng:
            torch.cuda.set_rng_state(rng["cuda"].cpu(), self.device)


def new_state(
    config: TrainConfig, dataset: Dataset, device: torch.device | str | None = None, group: ProcessGroup | None = None
) -> TrainState:
    """A fresh run's state: networks initialised from the config's seed, Adam, seeded random streams.

    What arithmetic can tell (minibatch splits, widths, data shape) fails here, not hours into a run.
    """
    group = group or ProcessGroup()
    device = torch.device(device) if device is not None else default_device()
    check_run(config, tuple(dataset.resolution), dataset.channels, dataset.num_labels, group.world_size)
    check_fits(config, dataset, device, group.world_size)  # a step that cannot fit, refused before allocating
    # The initial weights come from the config's seed, without touching the process's generator.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        G, D = build_networks(config, dataset)
    G.to(device)
    D.to(device)
    if device.type == "cuda" and config.channels_last:
        G.to(memory_format=torch.channels_last)
        D.to(memory_format=torch.channels_last)
    # No learning rate here: train_step sets the schedule's rate before every step.
    adam = dict(betas=(config.optimizer.beta1, config.optimizer.beta2), eps=config.optimizer.eps,
                fused=device.type == "cuda" or None)
    # Separate, explicit random streams make a resumed run draw exactly what the uninterrupted run drew.
    rank_seed = config.seed + 1000 * group.rank
    loader = LevelLoader(dataset, device, seed=rank_seed, mirror=config.mirror_augment,
                         base_shape=config.base_shape)
    return TrainState(
        config=config, data=DataSpec.of(dataset), G=G, D=D, Gs=make_ema(G),
        opt_g=torch.optim.Adam(G.parameters(), **adam), opt_d=torch.optim.Adam(D.parameters(), **adam),
        loader=loader, group=group, schedule=Schedule(config.schedule, G.num_levels, config.base_shape),
        latent_rng=torch.Generator(device=device).manual_seed(rank_seed + 1),
        penalty_rng=torch.Generator(device=device).manual_seed(rank_seed + 2),
        # The penalty's double backward stays eager; G's and D's forward passes are compiled.
        g_forward=torch.compile(G) if config.compile else G,
        d_forward=torch.compile(D) if config.compile else D,
    )


def resume_state(
    checkpoint: str | Path, dataset: Dataset, device: torch.device | str | None = None,
    group: ProcessGroup | None = None, allow_other_data: bool = False,
) -> TrainState:
    """The state saved in a checkpoint file, or in the newest checkpoint of a run folder, on ``dataset``.

    Other data than the run was trained on is refused unless ``allow_other_data`` (fine-tuning on purpose);
    even then its pictures must have the run's shape, geometry and representation.
    """
    path = checkpoint_path(checkpoint)
    saved = load_checkpoint(path, needs=TRAINING_KEYS)
    DataSpec.from_dict(saved["data"]).check_fits(DataSpec.of(dataset), path, same_data=not allow_other_data)
    state = new_state(TrainConfig.from_dict(saved["config"]), dataset, device, group)
    state.load_state_dict(saved, path)
    return state


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
    classes, and D's label term then fights the data).
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
    progress = state.progress()
    if config.optimizer.reset_on_growth and starts_new_stage(state.last_progress, progress):
        state.opt_g.state.clear()
        state.opt_d.state.clear()
    state.last_progress = progress
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
class RunFolder:
    """What a run writes besides its state: the log, the samples of fixed latents, the checkpoints."""

    path: Path
    log: RunLog
    fixed_latents: torch.Tensor
    fixed_labels: torch.Tensor | None
    last_checkpoint: Path | None = None


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
    the caller's object is trained in place. ``run_dir``: where the log, samples and checkpoints go (None:
    nowhere, for experiments in memory). SIGINT and SIGTERM finish the step, end the tick (checkpoint
    included) and return. (book: chapter 7, The training loop)
    """
    # Set up: the state, the run folder, the stop conditions.
    if state is None:
        state = new_state(config, dataset, device, group)
    elif state.config != config or state.loader.dataset is not dataset:
        raise ValueError("train(state=...) continues a state with its own config and dataset: pass those")
    main = state.group.is_main
    total_kimg = config.schedule.total_kimg if stop_kimg is None else stop_kimg
    total_images = round(total_kimg * 1000)
    bar = progress_bar(total_kimg, state.images_shown) if progress and main else None
    ticks: list[TickReport] = []
    stats = torch.zeros(len(STAT_NAMES), device=state.device)
    steps = steps_in_tick = 0
    tick_images, tick_start = state.images_shown, time.perf_counter()
    if state.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(state.device)

    # The loop: a step per minibatch; a tick's end every tick_kimg, and at the end of the run.
    with run_folder(state, run_dir if main else None) as run, stop_on_signals() as stop:
        while state.images_shown < total_images and not stop.requested:
            phase, step_stats = train_step(state)
            stats += step_stats
            steps += 1
            steps_in_tick += 1
            out_of_steps = max_steps is not None and steps >= max_steps
            final = out_of_steps or stop.requested or state.images_shown >= total_images
            if final or state.images_shown - tick_images >= phase.tick_kimg * 1000:
                seconds = time.perf_counter() - tick_start
                report = end_of_tick(state, run, phase, stats / steps_in_tick, seconds,
                                     state.images_shown - tick_images, final=final, echo=bar is None)
                ticks.append(report)
                if bar is not None:
                    bar.update(report.kimg - bar.n)
                    bar.set_postfix_str(f"level {phase.level} ({phase.resolution}px) alpha {phase.alpha:.2f} "
                                        f"{report.sec_per_kimg:.1f} s/kimg")
                stats.zero_()
                steps_in_tick = 0
                tick_images, tick_start = state.images_shown, time.perf_counter()
            if out_of_steps:
                break
    if bar is not None:
        bar.close()
    checkpoint = run.last_checkpoint if run else None
    if stop.requested and main:
        print(f"stopped by {signal.Signals(stop.signal).name} at {state.images_shown / 1000:.1f} kimg"
              + (f"; checkpoint {checkpoint}" if checkpoint else ""))
    return TrainResult(state, ticks, checkpoint, stop.signal)


def end_of_tick(
    state: TrainState, run: RunFolder | None, phase: Phase, mean_stats: torch.Tensor, seconds: float,
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
        kept = run.last_checkpoint = save_state(state, run.path, milestone=crossed)
        raise OSError(error.errno, f"{error.strerror or error}; training stopped, the checkpoint {kept} holds "
                                   f"this tick (resume with: pgsound train --resume {run.path})",
                      error.filename) from None
    if final or crossed or state.tick % config.checkpoint_every_ticks == 0:
        report.checkpoint = run.last_checkpoint = save_state(state, run.path, milestone=crossed)
    return report


# ---------------------------------------------------------------------- what a run writes
@contextlib.contextmanager
def run_folder(state: TrainState, path: str | Path | None) -> Iterator[RunFolder | None]:
    """The run folder, held for this process (``pgsound.runs.hold_run_dir``), with its log open.

    The log is cut back to the state's images shown (a resumed run logs each tick once); a fresh run writes
    its reals' grid. ``path`` None: nothing is written, and this yields None.
    """
    if path is None:
        yield None
        return
    path = Path(path)
    with hold_run_dir(path):
        run = open_run_folder(state, path)
        try:
            yield run
        finally:
            run.log.close()


def open_run_folder(state: TrainState, path: Path) -> RunFolder:
    """The run folder's log and fixed sample latents; a fresh run also writes its reals' grid."""
    config = state.config
    rows, cols = config.sample_grid
    fixed = torch.randn(rows * cols, state.G.latent_size, generator=torch.Generator().manual_seed(config.seed + 3))
    labels = torch.arange(rows * cols) % state.data.num_labels if config.conditional else None
    run = RunFolder(path, RunLog(path, images_shown=state.images_shown), fixed, labels, last_good(path))
    # One line per stretch of training: a run resumed elsewhere keeps the machine of each part (its manifest
    # names them when it is shipped).
    stretch = {"started": time.time(), "kimg": state.images_shown / 1000, "machine": describe_machine(state.device)}
    append_whole(path / STRETCHES, json.dumps(stretch) + "\n")
    if state.images_shown == 0:
        reals = state.loader.peek(state.max_level, rows * cols)
        write_sample_set(reals, path / "samples", "reals", state.data.metadata, grid=config.sample_grid)
    return run


def write_fakes(state: TrainState, run: RunFolder) -> list[Path]:
    """Grid PNG of Gs on the fixed latents (and WAV files for spectrogram data) under ``samples/``."""
    phase = state.phase()
    images = sample(state.Gs, run.fixed_latents, phase.level, phase.alpha, run.fixed_labels)
    stem = f"fakes{state.images_shown // 1000:06d}"
    return write_sample_set(images, run.path / "samples", stem, state.data.metadata, grid=state.config.sample_grid,
                            n_iter=state.config.sample_audio_iters)


def save_state(state: TrainState, run_dir: Path, milestone: bool = False) -> Path:
    """Write a checkpoint of the state under ``run_dir/checkpoints``; keep the last few plus milestones."""
    folder = run_dir / "checkpoints"
    # Images shown to the image, so that short runs never write two checkpoints under one name.
    name = f"{'milestone' if milestone else 'ckpt'}-{state.images_shown / 1000:010.3f}kimg.pt"
    try:
        path = save_checkpoint(state.state_dict(), folder / name)
    except OSError as error:  # a full disk, say: the file was not written, the last one stands
        good = last_good(run_dir)
        last = f"the last good checkpoint is {good}" if good else "no checkpoint was written yet"
        raise OSError(error.errno, f"{error.strerror or error}; nothing of this tick was saved, {last} "
                                   f"(resume with: pgsound train --resume {run_dir})",
                      error.filename or str(folder / name)) from None
    for old in sorted(folder.glob("ckpt-*.pt"))[: -state.config.keep_checkpoints]:
        old.unlink()
    return path


def last_good(run_dir: Path) -> Path | None:
    """The run's newest whole checkpoint, the one the error messages name (None before the first)."""
    try:
        return latest_good_checkpoint(run_dir)[0]
    except (FileNotFoundError, CheckpointError):
        return None


def progress_bar(total_kimg: float, images_shown: int):
    from tqdm import tqdm  # text bars: the widget bar needs ipywidgets and a kernel

    return tqdm(
        total=round(total_kimg, 3), initial=round(images_shown / 1000, 3), unit="kimg",
        bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} kimg [{elapsed}<{remaining}{postfix}]",
    )


@dataclass
class StopRequest:
    signal: int | None = None  # the signal received, if any

    @property
    def requested(self) -> bool:
        return self.signal is not None


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """SIGINT and SIGTERM set ``requested``: the loop finishes its step and tick, then returns."""
    stop = StopRequest()

    def request_stop(signum, frame):
        stop.signal = signum

    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, request_stop)
    except ValueError:  # not the main thread: leave signals alone
        previous = {}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
