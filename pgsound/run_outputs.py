"""What a training run writes into its folder: the log, the samples, the checkpoints (book: chapter 7).

The folder's layout (names, rotation, the lock, the stretches record) is ``pgsound.run_folder``'s; this module
holds a run folder open while :func:`pgsound.trainer.train` trains, and writes the state's samples and checkpoints
into it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from pgsound.device import describe_machine
from pgsound.generate import sample
from pgsound.run_folder import hold_run_dir, last_good, record_stretch, sample_stem, samples_folder, write_checkpoint
from pgsound.runlog import RunLog
from pgsound.samples import write_sample_set
from pgsound.train_state import TrainState


@dataclass
class OpenRun:
    """A run folder this process trains: its log open, the fixed latents of its samples, its last checkpoint."""

    path: Path
    log: RunLog
    fixed_latents: torch.Tensor
    fixed_labels: torch.Tensor | None
    last_checkpoint: Path | None = None



@contextlib.contextmanager
def open_run(state: TrainState, path: str | Path | None) -> Iterator[OpenRun | None]:
    """The run folder, held for this process (``pgsound.run_folder.hold_run_dir``), with its log open.

    The log is cut back to the state's images shown (a resumed run logs each tick once); each stretch of
    training is recorded with its machine; a fresh run writes its reals' grid. ``path`` None: nothing is
    written, and this yields None.
    """
    if path is None:
        yield None
        return
    path = Path(path)
    config = state.config
    with hold_run_dir(path):
        rows, cols = config.sample_grid
        generator = torch.Generator().manual_seed(config.seed + 3)  # the same latents in every stretch
        fixed = torch.randn(rows * cols, state.G.latent_size, generator=generator)
        labels = torch.arange(rows * cols) % state.data.num_labels if config.conditional else None
        run = OpenRun(path, RunLog(path, images_shown=state.images_shown), fixed, labels, last_good(path))
        try:
            record_stretch(path, state.images_shown, describe_machine(state.device))
            if state.images_shown == 0:
                reals = state.loader.peek(state.max_level, rows * cols)
                write_sample_set(reals, samples_folder(path), "reals", state.data.metadata, grid=config.sample_grid)
            yield run
        finally:
            run.log.close()


def write_fakes(state: TrainState, run: OpenRun) -> list[Path]:
    """Grid PNG of Gs on the fixed latents (and WAV files for spectrogram data) in the samples folder."""
    phase = state.phase()
    images = sample(state.Gs, run.fixed_latents, phase.level, phase.alpha, run.fixed_labels)
    return write_sample_set(images, samples_folder(run.path), sample_stem(state.images_shown), state.data.metadata,
                            grid=state.config.sample_grid, n_iter=state.config.sample_audio_iters)


def save_state(state: TrainState, run: OpenRun, milestone: bool = False) -> Path:
    """A checkpoint of the state in the run folder (``pgsound.run_folder.write_checkpoint`` rotates them)."""
    return write_checkpoint(state.state_dict(), run.path, state.images_shown, state.config.keep_checkpoints,
                            milestone=milestone)
