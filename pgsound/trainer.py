"""The training loop: phases from images shown, D and G steps, EMA, ticks, checkpoints (book: chapter 7).

The loop is generic: it trains a progressive GAN on any prepared dataset and knows nothing about audio (the
samples it writes go through ``pgsound.samples``, which does). Its shape follows stylegan2-ada-pytorch:

- everything that changes over a run comes from ``phase_at(images_shown)``, so resuming is exact;
- per step: one D step (WGAN-GP on faded reals and G's fakes), one G step with fresh latents, the EMA update;
- statistics are summed on the device and read once per tick: no host synchronisation per step;
- at the end of a tick: the log line, samples, a checkpoint (only of a finite state), optional metrics.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pgsound.checkpoint import load_checkpoint, save_checkpoint
from pgsound.config import TrainConfig
from pgsound.distributed import ProcessGroup, average_gradients, average_tensor, split_batch
from pgsound.ema import ema_beta_at, make_ema, update_ema
from pgsound.networks import Alpha
from pgsound.plan import check_run
from pgsound.runs import DataSpec, build_networks, checkpoint_path, load_into
from pgsound.schedule import Phase, level_resolution, level_start_kimg, lod_progress, phase_at

STAT_NAMES = ("loss_d", "loss_g", "penalty", "drift", "score_real", "score_fake")


class TrainingDiverged(RuntimeError):
    """A loss became NaN or Inf; the message names the last good checkpoint."""


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


class Trainer:
    """Owns G, D, Gs, the optimizers, the loader and the count of images shown.

    ``Trainer(config, dataset, run_dir)`` starts a run; ``Trainer.resume(run_dir, dataset)`` continues one;
    ``trainer.train()`` runs until ``schedule.total_kimg`` (or ``stop_kimg``) and returns the tick reports.
    """

    def __init__(
        self,
        config: TrainConfig,
        dataset: Any,
        run_dir: str | Path | None,
        device: torch.device | str | None = None,
        group: ProcessGroup | None = None,
        progress: bool = True,
    ) -> None:
        from pgsound.datasets import LevelLoader
        from pgsound.device import default_device

        self.config = config
        self.dataset = dataset
        self.group = group or ProcessGroup()
        self.device = torch.device(device) if device is not None else default_device()
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.progress = progress and self.group.is_main
        self.on_cuda = self.device.type == "cuda"
        # What arithmetic can tell (minibatch splits, widths, data shape) fails here, not hours into a run.
        check_run(config, tuple(dataset.resolution), dataset.channels, dataset.num_labels, self.group.world_size)

        # The networks' initial weights come from the config's seed, without touching the process's generator.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.G, self.D = build_networks(config, dataset)
        self.G.to(self.device)
        self.D.to(self.device)
        if self.on_cuda and config.channels_last:
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        self.Gs = make_ema(self.G)
        self.max_level = self.G.num_levels - 1
        self.base_shape = tuple(config.base_shape)

        adam = dict(betas=(config.optimizer.beta1, config.optimizer.beta2), eps=config.optimizer.eps)
        if self.on_cuda:
            adam["fused"] = True
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=config.schedule.lr_default, **adam)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=config.schedule.lr_default, **adam)

        # Separate, explicit random streams make a resumed run draw exactly what the uninterrupted run drew.
        rank_seed = config.seed + 1000 * self.group.rank
        self.loader = LevelLoader(
            dataset, self.device, seed=rank_seed, mirror=config.mirror_augment, base_shape=tuple(config.base_shape)
        )
        self.latent_rng = torch.Generator(device=self.device).manual_seed(rank_seed + 1)
        self.penalty_rng = torch.Generator(device=self.device).manual_seed(rank_seed + 2)
        fixed = torch.Generator().manual_seed(config.seed + 3)
        rows, cols = config.sample_grid
        self.fixed_latents = torch.randn(rows * cols, self.G.latent_size, generator=fixed).to(self.device)
        self.fixed_labels = (
            torch.arange(rows * cols, device=self.device) % dataset.num_labels if config.conditional else None
        )

        self.images_shown = 0
        self.tick = 0
        # The continuous level of the previous step (NVIDIA's prev_lod): Adam resets when its floor or ceiling
        # changes. -1 before the first step.
        self.last_progress = -1.0
        self.last_checkpoint: Path | None = None
        self._stats = torch.zeros(len(STAT_NAMES), device=self.device)
        self._steps_in_tick = 0
        self._stop_requested = False
        self._d_step_fn, self._g_step_fn = self.D, self.G
        if config.compile:
            # The penalty's double backward stays eager; G and D forward passes are compiled.
            self._g_step_fn = torch.compile(self.G)
            self._d_step_fn = torch.compile(self.D)

    # ------------------------------------------------------------------ the step
    def phase(self) -> Phase:
        return phase_at(self.images_shown, self.config.schedule, self.max_level, self.base_shape)

    def progress_now(self) -> float:
        """The continuous level after the images shown so far (2.25: level 3 faded in by a quarter)."""
        return lod_progress(self.images_shown, self.config.schedule, self.max_level)

    def _autocast(self):
        if self.config.precision == "bf16" and (self.on_cuda or self.config.cpu_bf16):
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _latents(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.G.latent_size, device=self.device, generator=self.latent_rng)

    def _labels(self, n: int) -> torch.Tensor | None:
        if not self.config.conditional:
            return None
        # Labels of random real images, as NVIDIA's get_random_labels_tf: G sees each class as often as D does
        # (uniform labels over-ask rare classes, and D's label term then fights the data).
        index = torch.randint(len(self.loader.labels), (n,), device=self.device, generator=self.latent_rng)
        return self.loader.labels[index]

    def step(self) -> Phase:
        """One D step, one G step and the EMA at the current phase; returns that phase."""
        phase = self.phase()
        progress = self.progress_now()
        if self.config.optimizer.reset_on_growth and starts_new_stage(self.last_progress, progress):
            self.opt_g.state.clear()
            self.opt_d.state.clear()
        self.last_progress = progress
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = phase.lr
        batch = split_batch(phase.batch_size, self.group)
        level = phase.level
        # During a fade-in alpha goes to the networks as a tensor: a compiled G and D then see one graph for
        # the whole fade, not one per value. The loader's fade is eager and takes the float.
        alpha = torch.full((), phase.alpha, device=self.device) if phase.fading else 1.0
        loss_d, d_stats = d_step(self, level, alpha, phase.alpha, batch)
        loss_g = g_step(self, level, alpha, batch)
        rampup_images = self.images_shown
        if self.config.ema_rampup_from == "level":
            rampup_images -= round(1000 * level_start_kimg(level, self.config.schedule))
        beta = ema_beta_at(self.config.ema_beta, phase.batch_size, rampup_images, self.config.ema_rampup)
        update_ema(self.Gs, self.G, beta)

        self._stats += torch.stack(
            [loss_d.detach(), loss_g.detach()] + [d_stats[name].detach() for name in STAT_NAMES[2:]]
        ).float()
        self._steps_in_tick += 1
        self.images_shown += phase.batch_size
        return phase

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything a resume needs, as plain tensors, numbers and dicts."""
        state = {
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "Gs": self.Gs.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "images_shown": self.images_shown,
            "tick": self.tick,
            "last_progress": self.last_progress,
            "rng": {
                "latent": self.latent_rng.get_state(),
                "penalty": self.penalty_rng.get_state(),
                "loader": self.loader.state_dict(),
                "torch": torch.get_rng_state(),
            },
            "config": self.config.to_dict(),
            "data": DataSpec.of(self.dataset).to_dict(),
        }
        if self.on_cuda:
            state["rng"]["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

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
        self.latent_rng.set_state(rng["latent"].cpu() if self.on_cuda else rng["latent"])
        self.penalty_rng.set_state(rng["penalty"].cpu() if self.on_cuda else rng["penalty"])
        self.loader.load_state_dict(rng["loader"])
        torch.set_rng_state(rng["torch"].cpu())
        if self.on_cuda and "cuda" in rng:
            torch.cuda.set_rng_state(rng["cuda"].cpu(), self.device)

    def save(self, milestone: bool = False) -> Path:
        """Write a checkpoint of the current state; keep the last few plus milestones."""
        assert self.run_dir is not None
        folder = self.run_dir / "checkpoints"
        # Images shown to the image, so that short runs never write two checkpoints under one name.
        name = f"{'milestone' if milestone else 'ckpt'}-{self.images_shown / 1000:010.3f}kimg.pt"
        path = save_checkpoint(self.state_dict(), folder / name)
        for old in sorted(folder.glob("ckpt-*.pt"))[: -self.config.keep_checkpoints]:
            old.unlink()
        self.last_checkpoint = path
        return path

    @classmethod
    def resume(
        cls,
        checkpoint: str | Path,
        dataset: Any,
        run_dir: str | Path | None = None,
        device: torch.device | str | None = None,
        group: ProcessGroup | None = None,
        progress: bool = True,
    ) -> Trainer:
        """Continue from a checkpoint file, or from the newest checkpoint of a run folder."""
        path = checkpoint_path(checkpoint)
        state = load_checkpoint(path)
        config = TrainConfig.from_dict(state["config"])
        DataSpec.from_dict(state["data"]).check_fits(DataSpec.of(dataset), path)
        if run_dir is None:
            run_dir = path.parent.parent
        trainer = cls(config, dataset, run_dir, device=device, group=group, progress=progress)
        trainer.load_state_dict(state, path)
        trainer.last_checkpoint = path
        return trainer

    # ------------------------------------------------------------------ the loop
    def train(self, stop_kimg: float | None = None, max_steps: int | None = None) -> list[TickReport]:
        """Train until ``schedule.total_kimg`` (or ``stop_kimg``, or ``max_steps`` steps); Ctrl-C saves and stops.

        (book: chapter 7, The training loop)
        """
        total_kimg = self.config.schedule.total_kimg if stop_kimg is None else stop_kimg
        total_images = int(round(total_kimg * 1000))
        reports: list[TickReport] = []
        steps = 0
        tick_images, tick_time = self.images_shown, time.perf_counter()
        if self.on_cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        bar = self._progress_bar(total_kimg)
        if self.run_dir is not None and self.group.is_main and self.images_shown == 0:
            self.write_reals()
        with self._stop_on_signals():
            while self.images_shown < total_images and not self._stop_requested:
                phase = self.step()
                steps += 1
                stop_now = max_steps is not None and steps >= max_steps
                tick_done = self.images_shown - tick_images >= phase.tick_kimg * 1000
                last = stop_now or self._stop_requested or self.images_shown >= total_images
                if tick_done or last:
                    elapsed = time.perf_counter() - tick_time
                    report = self._end_tick(phase, elapsed, self.images_shown - tick_images, final=last)
                    reports.append(report)
                    if bar is not None:
                        bar.update(report.kimg - bar.n)
                        bar.set_postfix_str(
                            f"level {phase.level} ({phase.resolution}px) alpha {phase.alpha:.2f} "
                            f"{report.sec_per_kimg:.1f} s/kimg"
                        )
                    tick_images, tick_time = self.images_shown, time.perf_counter()
                if stop_now:
                    break
        if bar is not None:
            bar.close()
        if self._stop_requested and self.group.is_main:
            where = f"; checkpoint {self.last_checkpoint}" if self.last_checkpoint else ""
            print(f"stopped by a signal at {self.images_shown / 1000:.1f} kimg{where}")
        return reports

    def _end_tick(self, phase: Phase, elapsed: float, images: int, final: bool) -> TickReport:
        # The one read from the device per tick.
        means = average_tensor(self._stats / max(self._steps_in_tick, 1), self.group).tolist()
        stats = dict(zip(STAT_NAMES, means))
        self._stats.zero_()
        self._steps_in_tick = 0
        self.tick += 1
        kimg = self.images_shown / 1000.0
        if not all(math.isfinite(v) for v in means):
            bad = ", ".join(f"{k}={v}" for k, v in stats.items() if not math.isfinite(v))
            good = self.last_checkpoint or "none written yet"
            raise TrainingDiverged(
                f"training diverged at {kimg:.3f} kimg (level {phase.level}, alpha {phase.alpha:.3f}): {bad}. "
                f"Nothing was saved from this tick; the last good checkpoint is {good}."
            )
        peak = torch.cuda.max_memory_allocated(self.device) / 2**30 if self.on_cuda else None
        sec_per_kimg = elapsed / max(images / 1000.0, 1e-9)
        checkpoint = None
        if self.group.is_main and self.run_dir is not None:
            from pgsound.runlog import RunLog

            if not hasattr(self, "_log"):
                self._log = RunLog(self.run_dir)
            record = {
                "tick": self.tick, "kimg": kimg, "level": phase.level,
                "resolution": "x".join(map(str, level_resolution(phase.level, self.base_shape))),
                "alpha": phase.alpha,
                "batch": phase.batch_size, "lr": phase.lr, **stats, "sec_per_kimg": sec_per_kimg,
                "peak_mem_gb": peak, "time": time.time(),
            }
            if self.config.metrics and self.config.metrics_every_ticks and (
                self.tick % self.config.metrics_every_ticks == 0 or final
            ):
                record.update(self.evaluate(self.config.metrics, self.config.metrics_images))
            line = self._log.tick(record)
            if not self.progress:
                print(line, flush=True)
            if final or self.tick % self.config.samples_every_ticks == 0:
                self.write_samples()
            milestone_images = int(self.config.milestone_every_kimg * 1000)
            crossed = milestone_images > 0 and (self.images_shown // milestone_images) > (
                (self.images_shown - images) // milestone_images
            )
            if final or crossed or self.tick % self.config.checkpoint_every_ticks == 0:
                checkpoint = self.save(milestone=crossed)
        return TickReport(self.tick, kimg, phase, stats, sec_per_kimg, peak, checkpoint)

    def _progress_bar(self, total_kimg: float):
        if not self.progress:
            return None
        from tqdm.auto import tqdm

        return tqdm(
            total=round(total_kimg, 3), initial=round(self.images_shown / 1000, 3), unit="kimg",
            bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} kimg [{elapsed}<{remaining}{postfix}]",
        )

    @contextlib.contextmanager
    def _stop_on_signals(self):
        """SIGINT and SIGTERM finish the current step, write a checkpoint and return cleanly."""

        def request_stop(signum, frame):
            self._stop_requested = True

        previous = {}
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, request_stop)
        except ValueError:  # not the main thread: leave signals alone
            previous = {}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # ------------------------------------------------------------------ samples and metrics
    @torch.no_grad()
    def generate(
        self, latents: torch.Tensor, labels: torch.Tensor | None = None, use_ema: bool = True
    ) -> torch.Tensor:
        """Images from Gs (or raw G) at the current level and alpha, in [-1, 1] (values may overshoot)."""
        phase = self.phase()
        net = self.Gs if use_ema else self.G
        return net(latents.to(self.device), phase.level, phase.alpha, labels).float()

    def write_samples(self) -> Path | None:
        """Grid PNG of Gs on the fixed latents (and WAV files for spectrogram data) under ``samples/``."""
        if self.run_dir is None:
            return None
        from pgsound.samples import write_sample_set

        images = self.generate(self.fixed_latents, self.fixed_labels)
        return write_sample_set(
            images, self.run_dir / "samples", f"fakes{self.images_shown // 1000:06d}", self.dataset,
            grid=self.config.sample_grid, n_iter=self.config.sample_audio_iters,
        )

    def write_reals(self) -> Path | None:
        if self.run_dir is None:
            return None
        from pgsound.samples import write_sample_set

        rows, cols = self.config.sample_grid
        reals = self.loader.peek(self.max_level, rows * cols)
        return write_sample_set(reals, self.run_dir / "samples", "reals", self.dataset, grid=self.config.sample_grid)

    def evaluate(self, metrics: list[str], n_images: int) -> dict[str, float]:
        """Chosen metrics of Gs against the dataset at the current level (see ``pgsound.metrics``)."""
        from pgsound.datasets import fade_reals
        from pgsound.metrics import evaluate_metrics

        phase = self.phase()
        # Reals as D sees them now: faded with the networks' alpha. Fakes get the labels of those reals, so
        # the classes appear as often as in the data (as in training).
        reals = fade_reals(self.loader.peek(phase.level, n_images), phase.alpha)
        labels = self.loader.peek_labels(n_images) if self.config.conditional else None
        generator = torch.Generator(device=self.device).manual_seed(self.config.seed + 7)
        fakes = []
        for start in range(0, len(reals), 64):
            n = min(64, len(reals) - start)
            z = torch.randn(n, self.G.latent_size, device=self.device, generator=generator)
            batch_labels = labels[start : start + n] if labels is not None else None
            fakes.append(self.generate(z, batch_labels).clamp(-1, 1).cpu())
        return evaluate_metrics(reals.cpu(), torch.cat(fakes), metrics=metrics, seed=self.config.seed)


# ---------------------------------------------------------------------- helpers around the Trainer
def d_step(
    state: Trainer, level: int, alpha: Alpha, fade_alpha: float, batch: int
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One optimizer step of D: WGAN-GP on a batch of faded reals and a batch of G's fakes.

    ``alpha`` goes to the networks (a tensor during a fade-in), ``fade_alpha`` (the same value as a float) to the
    loader, which fades the reals as the networks fade their paths. Returns D's loss and its parts.
    (book: chapter 7, "One D step, one G step")
    """
    from pgsound.loss import discriminator_loss

    if state.config.conditional:
        reals, real_labels = state.loader.batch(level, batch, fade_alpha, with_labels=True)
    else:
        reals, real_labels = state.loader.batch(level, batch, fade_alpha), None
    fake_labels = state._labels(batch)
    with torch.no_grad(), state._autocast():  # fakes without a graph back into G
        fakes = state._g_step_fn(state._latents(batch), level, alpha, fake_labels)
    state.D.requires_grad_(True)
    with state._autocast():
        loss_d, parts = discriminator_loss(
            state._d_step_fn, reals, fakes.float(), level, alpha, state.config.loss,
            real_labels=real_labels, fake_labels=fake_labels, generator=state.penalty_rng,
            penalty_net=state.D,  # eager: compiled graphs have no double backward
        )
    state.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    average_gradients(state.D, state.group)
    state.opt_d.step()
    return loss_d, parts


def g_step(state: Trainer, level: int, alpha: Alpha, batch: int) -> torch.Tensor:
    """One optimizer step of G on fresh latents, through a D whose weights are frozen; returns G's loss.

    (book: chapter 7, "One D step, one G step")
    """
    from pgsound.loss import generator_loss

    state.D.requires_grad_(False)  # the gradient flows through D to G; none is stored for D's weights
    fake_labels = state._labels(batch)
    with state._autocast():
        fakes = state._g_step_fn(state._latents(batch), level, alpha, fake_labels)
        loss_g = generator_loss(state._d_step_fn, fakes, level, alpha, state.config.loss, fake_labels=fake_labels)
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
