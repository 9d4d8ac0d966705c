"""Resume a run bit-exactly across the schedule's boundaries: ``pgsound preflight``'s last check (book: chapter 10).

Two kinds of boundary change what a step does: the end of a fade-in (the old path goes, Adam resets) and the
start of the next level's fade-in (a new resolution, new layers, Adam resets). A checkpoint written two steps
before such a boundary, resumed and stepped across it, must give the same weights, optimizer moments and random
streams as the run that never stopped.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from pgsound.checkpoint import RESUMED_KEYS, save_checkpoint, state_differences
from pgsound.config import TrainConfig
from pgsound.datasets.protocol import Dataset
from pgsound.plan import run_schedule
from pgsound.schedule import Schedule
from pgsound.trainer import new_state, resume_state, train_step


def resumes_bit_exactly(config: TrainConfig, dataset: Dataset, device: torch.device) -> tuple[bool, int]:
    """Resume across the end of the first fade-in and across the start of the next level's fade-in.

    Returns whether both resumed runs match their uninterrupted twins, and the first checkpoint's size; a run
    at a fixed level or with one level has no boundary to cross: ``(True, 0)``.
    """
    schedule = run_schedule(config, tuple(dataset.resolution))
    if config.schedule.fixed_level is not None or schedule.num_levels < 2:
        return True, 0
    # The image count of the first step in the new stage: the level is exactly 1 where the first fade-in
    # ends, while the next fade begins only past level_start(2), one minibatch later for the step at it.
    firsts = [round(1000 * schedule.reach_kimg(1))]
    if schedule.num_levels > 2 and config.schedule.lod_transition_kimg > 0:
        start = round(1000 * schedule.level_start_kimg(2))
        firsts.append(start + schedule.phase(start).batch_size)
    results = [resume_across(config, dataset, device, schedule, first) for first in firsts]
    return all(same for same, _ in results), results[0][1]


def resume_across(config: TrainConfig, dataset: Dataset, device: torch.device, schedule: Schedule,
                  first_new: int) -> tuple[bool, int]:
    """Steps A, B, C with C taken at ``first_new`` images, the first of a new stage, against A, checkpoint,
    resume, B, C.

    Returns whether the two runs end bit-identical, and the checkpoint's size in bytes.
    """
    batch = schedule.phase(first_new - 1).batch_size
    with tempfile.TemporaryDirectory(prefix="pgsound-preflight-") as folder:
        straight = new_state(config, dataset, device=device)
        straight.images_shown = first_new - 2 * batch  # A and B in the old stage, C the first in the new
        train_step(straight)
        path = save_checkpoint(straight.state_dict(), Path(folder) / "preflight.pt")
        size = path.stat().st_size
        train_step(straight)
        train_step(straight)
        resumed = resume_state(path, dataset, device=device)
        train_step(resumed)
        train_step(resumed)
        a = {k: v for k, v in straight.state_dict().items() if k in RESUMED_KEYS}
        b = {k: v for k, v in resumed.state_dict().items() if k in RESUMED_KEYS}
        return not state_differences(a, b), size
