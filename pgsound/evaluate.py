"""Evaluating a trained run: its generator's samples against real data at the same level (book: chapter 8)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def evaluate_run(
    run: str | Path,
    data: str | Path | None = None,
    n: int = 4096,
    metrics: list[str] | None = None,
    seed: int = 0,
    device: str | None = None,
) -> dict[str, Any]:
    """Metrics of the run's Gs: ``n`` generated against ``n`` real images at the generator's level.

    Another ``n`` reals are held out for SWD's floor (``swd_avg_real``); with fewer than ``2 * n`` images in
    the dataset, ``n`` becomes half the dataset (the result's ``"n"`` says which) (book: chapter 8).
    """
    from pgsound.datasets import LevelLoader, open_dataset
    from pgsound.generate import sample
    from pgsound.metrics import evaluate_metrics
    from pgsound.runs import load_generator

    G, record = load_generator(run, device=device)
    data_path = data or record.data.path
    if not data_path:
        raise ValueError("the checkpoint does not record its dataset path: pass --data")
    dataset = open_dataset(data_path)
    phase = record.phase
    device_used = next(G.parameters()).device
    # Twice n reals: n to compare with the fakes and n held out, for SWD's floor at the same n (SWD has a bias
    # that shrinks with n, so a floor measured at another n would mislead). A dataset smaller than 2n is split
    # in halves and every metric uses that smaller n.
    pool = LevelLoader(dataset, device_used, seed=seed).peek(phase.level, 2 * n).cpu()
    per_side = min(n, len(pool) // 2)
    reals, held_out = pool[:per_side], pool[per_side:2 * per_side]
    rng = torch.Generator().manual_seed(seed)
    latents = torch.randn(len(reals), G.latent_size, generator=rng)
    labels = None
    if record.config.conditional:
        labels = torch.randint(record.data.num_labels, (len(reals),), generator=rng)
    fakes = sample(G, latents, phase.level, phase.alpha, labels)
    values = evaluate_metrics(reals, fakes, metrics=metrics, seed=seed, metadata=dataset.metadata,
                              held_out_reals=held_out)
    checkpoint = record.checkpoint
    return {
        "checkpoint": str(checkpoint),
        "run_dir": str(checkpoint.parent.parent),
        "data": str(data_path),
        "kimg": record.images_shown / 1000,
        "level": phase.level,
        "alpha": phase.alpha,
        "n": len(reals),
        "metrics": values,
    }
