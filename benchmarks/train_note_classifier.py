"""Train the note classifier and write the package's weights and manifest (book: chapter 8).

    OMP_NUM_THREADS=1 python benchmarks/train_note_classifier.py [--held-out-soundfont OTHER.sf2] [--out DIR]

Builds the training set (seed 0) and a validation set of the same recipe (seed 1, a quarter of the size) with
:func:`pgsound.note_training.build_set`, trains with :func:`pgsound.note_training.train` on one thread (so
that the weights are the same on every run), and writes ``notes.pt`` (a plain float32 state dict) and
``notes.json`` (the recipe, the commit, the training time, the validation figures) to ``--out`` (default: the
package's ``pgsound/classifiers``). ``--held-out-soundfont`` adds the top-1 pitch accuracy on single notes of
another piano, MIDI 33 to 96 at four velocities, which the classifier never heard (for example the
``TimGM6mb.sf2`` inside pretty_midi's wheel; the project does not ship it).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from pgsound import note_training
from pgsound.device import cpu_model
from pgsound.files import atomic_write
from pgsound.note_classifier import FOLDER

RECIPE = {"notes_per_key": 2, "chords_per_piano": 600, "n_phrases": 1000, "n_music": 2400}
TRAINING = {"epochs": 12, "batch_size": 32, "lr": 2e-3, "width": 16}
VALIDATION_SHARE = 4  # the validation set is a quarter of the training set's size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=FOLDER)
    parser.add_argument("--held-out-soundfont", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    started = time.perf_counter()
    train_set = note_training.build_set(args.seed, **RECIPE, progress=print)
    small = {k: max(1, v // VALIDATION_SHARE) for k, v in RECIPE.items()}
    small["notes_per_key"] = 1
    validation = note_training.build_set(args.seed + 1, **small, progress=print)
    built = time.perf_counter() - started
    print(f"{len(train_set)} training clips, {len(validation)} validation clips ({built:.0f} s)")
    model = note_training.train(train_set, seed=args.seed, progress=print, **TRAINING)
    trained = time.perf_counter() - started - built
    figures = note_training.scores(model, validation)
    print("validation:", figures)
    held_out = {}
    if args.held_out_soundfont:
        notes = note_training.single_notes("sampled", args.seed + 2, pitches=range(33, 97),
                                           soundfont=args.held_out_soundfont)
        held_out = {"soundfont": args.held_out_soundfont.name, "pitches": "MIDI 33-96",
                    "velocities": list(note_training.VELOCITIES),
                    "pitch_accuracy": note_training.scores(model, notes)["pitch_accuracy"]}
        print("held-out piano:", held_out)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    manifest = {
        "what": "note classifier: 16 kHz audio clips of 1-5 s to the probability that each of the 88 piano "
                "keys (MIDI 21-108) sounds",
        "command": "OMP_NUM_THREADS=1 python benchmarks/train_note_classifier.py",
        "recipe": {**RECIPE, "seed": args.seed, "clip_seconds": note_training.CLIP_SECONDS,
                   "velocities": list(note_training.VELOCITIES), "pianos": list(note_training.PIANOS),
                   "training_clips": len(train_set), "validation_clips": len(validation)},
        "training": TRAINING,
        "commit": commit,
        "date": datetime.date.today().isoformat(),
        "machine": f"{cpu_model()}, 1 thread, torch {torch.__version__}, {platform.system()}",
        "data_seconds": round(built, 1),
        "training_seconds": round(trained, 1),
        "embedding_scale": float(model.embedding_scale),
        "validation": {k: round(v, 4) for k, v in figures.items()},
        "held_out_piano": held_out,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    with atomic_write(args.out / "notes.pt") as temp:
        torch.save(state, temp)
    with atomic_write(args.out / "notes.json") as temp:
        temp.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"written {args.out / 'notes.pt'} ({np.round((args.out / 'notes.pt').stat().st_size / 2**20, 2)} MiB)")


if __name__ == "__main__":
    main()
