"""Evaluating a generator: its samples against real data at the same level and alpha (book: chapter 8).

:func:`evaluate_generator` is the one evaluation path: the training loop calls it on Gs at the end of a tick,
and :func:`evaluate_run` (``pgsound evaluate``) on a run's saved Gs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from pgsound.datasets import LevelLoader, fade_reals, open_dataset
from pgsound.errors import UserError
from pgsound.generate import sample
from pgsound.memory import check_pictures_fit
from pgsound.metrics import evaluate_metrics
from pgsound.run_folder import run_of
from pgsound.runs import DataSpec, load_generator
from pgsound.schedule import level_resolution


def evaluate_generator(
    generator: torch.nn.Module,
    loader: LevelLoader,
    level: int,
    alpha: float,
    n: int,
    metrics: list[str] | None = None,
    seed: int = 0,
    conditional: bool = False,
    held_out: bool = True,
    options: dict[str, dict[str, Any]] | None = None,
) -> tuple[dict[str, float], int]:
    """Metrics of ``generator``'s samples against ``n`` reals at ``level``, faded by ``alpha`` as D sees them.

    The fakes get the labels of the compared reals, so each class appears as often as in the data. With
    ``held_out``, another ``n`` reals give SWD's floor (``swd_avg_real``) at the same count (SWD's bias shrinks
    with the count, so a floor measured at another count would mislead); a dataset smaller than ``2 * n`` is
    split in halves. ``options``: keyword arguments per metric (see :func:`pgsound.metrics.evaluate_metrics`);
    for a conditional run on key-labelled data, the ``notes`` metrics get the pitches the fakes were asked for.
    Returns the metrics and the count used per side. The loader's sampler is not touched.
    """
    pool_size = 2 * n if held_out else n
    pool = fade_reals(loader.peek(level, pool_size, seed=seed), alpha).cpu()
    pool_labels = loader.peek_labels(pool_size, seed=seed) if conditional else None
    per_side = min(n, len(pool) // 2) if held_out else len(pool)
    reals = pool[:per_side]
    held = pool[per_side : 2 * per_side] if held_out else None
    labels = pool_labels[:per_side] if pool_labels is not None else None
    latents = torch.randn(per_side, generator.latent_size, generator=torch.Generator().manual_seed(seed))
    fakes = sample(generator, latents, level, alpha, labels)
    metadata = loader.dataset.metadata
    options = {name: dict(kwargs) for name, kwargs in (options or {}).items()}
    if labels is not None and metadata.get("label_pitches"):
        options.setdefault("notes", {})["pitches"] = np.asarray(metadata["label_pitches"])[labels.cpu().numpy()]
    values = evaluate_metrics(reals, fakes, metrics=metrics, seed=seed, metadata=metadata,
                              held_out_reals=held, options=options)
    return values, per_side


def evaluate_run(
    run: str | Path,
    data: str | Path | None = None,
    n: int = 4096,
    metrics: list[str] | None = None,
    seed: int = 0,
    device: str | None = None,
    options: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Metrics of the run's Gs: ``n`` generated against ``n`` real images at the generator's level and alpha.

    Another ``n`` reals are held out for SWD's floor (``swd_avg_real``); with fewer than ``2 * n`` images in
    the dataset, ``n`` becomes half the dataset (the result's ``"n"`` says which) (book: chapter 8).
    """
    G, record = load_generator(run, device=device)
    data_path = data or record.data.locate()
    if not data_path:
        raise UserError("the checkpoint does not record its dataset path: pass --data")
    dataset = open_dataset(data_path)
    record.data.check_fits(DataSpec.of(dataset), record.checkpoint, same_data=False)  # a test split is welcome
    phase = record.phase
    shape = level_resolution(phase.level, record.config.base_shape)
    # Reals, fakes and held-out reals, each min(n, half the data) pictures, are held at once.
    check_pictures_fit(3 * min(n, dataset.count // 2), (dataset.channels, *shape), "evaluate", "--n")
    loader = LevelLoader(dataset, next(G.parameters()).device, base_shape=record.config.base_shape)
    values, per_side = evaluate_generator(G, loader, phase.level, phase.alpha, n, metrics, seed,
                                          conditional=record.config.conditional, options=options)
    checkpoint = record.checkpoint
    return {
        "checkpoint": str(checkpoint),
        "run_dir": str(run_of(checkpoint)),
        "data": str(data_path),
        "kimg": record.images_shown / 1000,
        "level": phase.level,
        "alpha": phase.alpha,
        "n": per_side,
        "metrics": values,
    }

