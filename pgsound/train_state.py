"""What a training run is: its state, built fresh or from a checkpoint (book: chapter 7, The training loop).

:class:`TrainState` holds G, D, their EMA Gs, both optimizers, the loader of reals, the random streams, the
count of images shown and the run's :class:`~pgsound.schedule.Schedule`; ``state_dict()`` is exactly what a
checkpoint stores, with the config and the data spec, so a resumed run is bit-identical to an uninterrupted
one on the CPU. (On CUDA, cuDNN's benchmark mode, chosen for speed, may pick other convolution algorithms in
another process: the same run to float rounding. On another kind of device, see
:func:`pgsound.device.restore_generator`.) ``pgsound.trainer`` steps it and runs the loop (and hands these
names on).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pgsound.checkpoint import TRAINING_KEYS
from pgsound.config import TrainConfig
from pgsound.datasets import LevelLoader
from pgsound.datasets.protocol import Dataset
from pgsound.device import default_device, restore_generator
from pgsound.distributed import ProcessGroup
from pgsound.ema import make_ema
from pgsound.memory import check_fits
from pgsound.metrics import check_metrics_apply
from pgsound.plan import check_run
from pgsound.run_folder import SavedCheckpoint, read_checkpoint
from pgsound.runs import DataSpec, build_networks, load_into
from pgsound.schedule import Phase, Schedule


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
    last_level: float = -1.0  # the continuous level at the last step: a change of stage resets Adam
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

    def continuous_level(self) -> float:
        """The continuous level after the images shown so far (2.25: level 3 faded in by a quarter)."""
        return self.schedule.continuous_level(self.images_shown)

    def state_dict(self) -> dict[str, Any]:
        """Everything a resume needs, as plain tensors, numbers and dicts: ``pgsound.checkpoint.TRAINING_KEYS``."""
        rng = {"latent": self.latent_rng.get_state(), "penalty": self.penalty_rng.get_state(),
               "loader": self.loader.state_dict(), "torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "G": self.G.state_dict(), "D": self.D.state_dict(), "Gs": self.Gs.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "images_shown": self.images_shown, "tick": self.tick, "last_level": self.last_level,
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
        self.last_level = float(state["last_level"])
        rng = state["rng"]
        exact = [restore_generator(self.latent_rng, rng["latent"]),
                 restore_generator(self.penalty_rng, rng["penalty"]),
                 self.loader.load_state_dict(rng["loader"])]
        torch.set_rng_state(rng["torch"].cpu())
        if self.device.type == "cuda" and "cuda" in rng:
            torch.cuda.set_rng_state(rng["cuda"].cpu(), self.device)
        if not all(exact):
            warnings.warn(f"{path or 'this state'} was saved on another kind of device than {self.device.type}: "
                          f"its random streams restart from seeds drawn from the saved ones, so the run goes on "
                          f"but does not draw what the uninterrupted run would have", stacklevel=2)


def new_state(
    config: TrainConfig, dataset: Dataset, device: torch.device | str | None = None, group: ProcessGroup | None = None
) -> TrainState:
    """A fresh run's state: networks initialised from the config's seed, Adam, seeded random streams.

    What arithmetic can tell (minibatch splits, widths, data shape, metrics the data cannot feed) fails here,
    not hours into a run.
    """
    group = group or ProcessGroup()
    device = torch.device(device) if device is not None else default_device()
    check_run(config, tuple(dataset.resolution), dataset.channels, dataset.num_labels, group.world_size)
    check_fits(config, dataset, device, group.world_size)  # a step that cannot fit, refused before allocating
    if config.metrics and config.metrics_every_ticks:  # refused now, not after the first tick's training
        check_metrics_apply(config.metrics, dataset.channels, dataset.metadata)
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
    checkpoint: str | Path | SavedCheckpoint, dataset: Dataset, device: torch.device | str | None = None,
    group: ProcessGroup | None = None, allow_other_data: bool = False,
) -> TrainState:
    """The state saved in a checkpoint file, or in the newest checkpoint of a run folder, on ``dataset``.

    ``checkpoint`` may be one already read (``pgsound.run_folder.read_checkpoint``): a resume reads it once.
    Other data than the run was trained on is refused unless ``allow_other_data`` (fine-tuning on purpose);
    even then its pictures must have the run's shape, geometry and representation.
    """
    if not isinstance(checkpoint, SavedCheckpoint):
        checkpoint = read_checkpoint(checkpoint, needs=TRAINING_KEYS)
    path, saved = checkpoint.path, checkpoint.state
    DataSpec.from_dict(saved["data"]).check_fits(DataSpec.of(dataset), path, same_data=not allow_other_data)
    state = new_state(TrainConfig.from_dict(saved["config"]), dataset, device, group)
    state.load_state_dict(saved, path)
    return state
