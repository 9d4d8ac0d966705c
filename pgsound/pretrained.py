"""Trained runs shipped with the package, so that a reader can skip a training run (book: chapters 9 and 10).

Each shipped run is two files in ``pgsound/pretrained_runs/``: ``NAME.pt``, a slim checkpoint (Gs in float16,
the config, the data spec, the images shown; it loads with ``weights_only=True`` like every checkpoint), and
``NAME.json``, its manifest: the commands that made it (``pgsound prepare`` and ``pgsound train``, with ``DATA``
for the dataset file), the package commit, kimg, wall time and machine, the decode settings and the metrics
measured on the shipped file, and, where the run was trained toward targets, each target with what the shipped
file reached (:func:`assess_targets`). The commands also regenerate the real data, so the metrics can be checked.

    G, run = pgsound.pretrained.load("piano-cpu")
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
from pathlib import Path
from typing import Any

import torch

from pgsound.checkpoint import GENERATOR_KEYS, load_checkpoint, save_checkpoint
from pgsound.errors import UserError
from pgsound.evaluate import evaluate_run
from pgsound.files import atomic_write
from pgsound.run_folder import checkpoint_path
from pgsound.runs import TrainedRun, load_generator

FOLDER = Path(__file__).with_name("pretrained_runs")
DATA = "DATA"  # the dataset file in a manifest's commands


def names(folder: Path = FOLDER) -> list[str]:
    """The names of the shipped runs."""
    return sorted(p.stem for p in Path(folder).glob("*.json") if (p.with_suffix(".pt")).exists())


def path(name: str, folder: Path = FOLDER) -> Path:
    """The shipped checkpoint of ``name``; an unknown name is an error that lists the known ones."""
    found = Path(folder) / f"{name}.pt"
    if not found.exists() or not found.with_suffix(".json").exists():
        known = ", ".join(names(folder)) or "none"
        raise UserError(f"no shipped run {name!r}; the package ships: {known}")
    return found


def manifest(name: str, folder: Path = FOLDER) -> dict[str, Any]:
    """The manifest of a shipped run: how it was made and what it measures."""
    return json.loads(path(name, folder).with_suffix(".json").read_text())


def load(name: str, device: torch.device | str | None = None, folder: Path = FOLDER
         ) -> tuple[torch.nn.Module, TrainedRun]:
    """Gs of a shipped run, in eval mode, and its record (the data spec holds the decode settings)."""
    return load_generator(path(name, folder), device=device)


def commands(record: dict[str, Any], data: str | Path) -> list[list[str]]:
    """The manifest's ``pgsound`` commands with ``DATA`` replaced by ``data``."""
    return [[str(data) if word == DATA else word for word in command] for command in record["commands"]]


# What a target of a shipped run measures, from its manifest's metrics: the generator's figure against the one
# between two sets of real pictures (chapter 8). Each target is met when the figure is at most its limit.
TARGET_MEASURES = {
    "swd_over_floor": ("SWD (average over levels) divided by its real-against-real floor",
                       lambda m: m["swd_avg"] / m["swd_avg_real"]),
    "ms_ssim_from_real": ("MS-SSIM of generated pairs minus that of real pairs, in absolute value (diversity)",
                          lambda m: abs(m["ms_ssim_fake"] - m["ms_ssim_real"])),
    "consistency_above_real_db": ("spectral consistency of generated pictures minus real pictures', in dB",
                                  lambda m: m["sc_fake_db"] - m["sc_real_db"]),
}


def check_target_names(limits: dict[str, float]) -> None:
    unknown = sorted(set(limits) - set(TARGET_MEASURES))
    if unknown:
        raise UserError(f"unknown target(s) {', '.join(unknown)}: expected {', '.join(TARGET_MEASURES)}")


def assess_targets(metrics: dict[str, float], limits: dict[str, float]) -> dict[str, dict[str, Any]]:
    """Each target (a name of :data:`TARGET_MEASURES` and its limit): what it measures, the value reached, met."""
    check_target_names(limits)
    assessed = {}
    for name, limit in limits.items():
        what, measure = TARGET_MEASURES[name]
        reached = float(measure(metrics))
        assessed[name] = {"what": what, "limit": float(limit), "reached": reached, "met": reached <= limit}
    return assessed


def export(checkpoint: str | Path, name: str, record: dict[str, Any], data: str | Path, n: int = 256,
           seed: int = 0, folder: Path = FOLDER, targets: dict[str, float] | None = None) -> Path:
    """Write a run's newest checkpoint as a shipped run: ``NAME.pt`` (Gs in float16) and ``NAME.json``.

    ``record`` is the manifest's account of how the run was made (``commands``, ``commit``, ``wall_seconds``,
    ``machine``, ...); what the checkpoint says (kimg, level, alpha) is added, and so are the metrics of the
    shipped float16 Gs against ``n`` reals of ``data`` (``pgsound evaluate``'s, seeded by ``seed``), and each of
    ``targets`` (name: limit, see :data:`TARGET_MEASURES`) with what the shipped Gs reached. Both files are
    replaced only at the end: a wrong input, or an error in the minutes of measuring, leaves the shipped run as
    it was.
    """
    check_target_names(targets or {})  # before any work
    if not isinstance(record.get("commands"), list):
        raise UserError("the record needs 'commands': the command lines that made the run (lists of words)")
    metrics = metric_names(data, n)  # opens the data: a wrong path fails here
    source = checkpoint_path(checkpoint)
    state = load_checkpoint(source, needs=GENERATOR_KEYS)
    slim = {
        "Gs": {key: value.half() if value.is_floating_point() else value for key, value in state["Gs"].items()},
        "config": state["config"], "data": state["data"], "images_shown": state["images_shown"],
    }
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=f".{name}-") as scratch:
        staged = save_checkpoint(slim, Path(scratch) / f"{name}.pt")  # measured as shipped: float16
        _, run = load_generator(staged, device="cpu")
        measured = evaluate_run(staged, data=data, n=n, seed=seed, device="cpu", metrics=metrics)
        target = folder / f"{name}.pt"
        os.replace(staged, target)
    record = {"name": name, **record, "kimg": run.images_shown / 1000, "level": run.phase.level,
              "resolution": run.phase.resolution, "alpha": run.phase.alpha,
              "command_lines": [shlex.join(["pgsound", *c]) for c in record["commands"]],
              "decode": {"spectrogram": run.data.metadata["spectrogram"],
                         "representation": run.data.metadata.get("representation", "magnitude"),
                         "griffin_lim_iters": run.config.sample_audio_iters}
              if run.data.metadata.get("spectrogram") else None,  # pictures, not sound
              "evaluation": {"n": measured["n"], "seed": seed, "metrics": measured["metrics"]}}
    if targets:
        record["targets"] = assess_targets(measured["metrics"], targets)
    with atomic_write(folder / f"{name}.json") as tmp:
        Path(tmp).write_text(json.dumps(record, indent=2) + "\n")
    return target


def metric_names(data: str | Path, n: int) -> list[str]:
    """The metrics a shipped run's manifest records: every default one for its data at ``n`` images a side (or
    half the data, as :func:`pgsound.evaluate.evaluate_run` compares), and the note classifier's on sound."""
    from pgsound.datasets import open_dataset
    from pgsound.metrics import default_metrics, notes_apply

    dataset = open_dataset(data)
    names = default_metrics(min(n, dataset.count // 2), dataset.metadata)
    return names + ["notes"] if notes_apply(dataset.metadata) else names


def remeasure(name: str, data: str | Path, folder: Path = FOLDER) -> dict[str, Any]:
    """Measure a shipped run again against ``data`` (regenerated from its manifest) at the manifest's ``n`` and
    seed, with today's :func:`metric_names`, and rewrite the manifest's ``evaluation``; returns the metrics."""
    record = manifest(name, folder)
    n, seed = record["evaluation"]["n"], record["evaluation"]["seed"]
    measured = evaluate_run(path(name, folder), data=data, n=n, seed=seed, device="cpu",
                            metrics=metric_names(data, n))
    record["evaluation"] = {"n": measured["n"], "seed": seed, "metrics": measured["metrics"]}
    with atomic_write(Path(folder) / f"{name}.json") as tmp:
        Path(tmp).write_text(json.dumps(record, indent=2) + "\n")
    return measured["metrics"]
