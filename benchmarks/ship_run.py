"""Ship a trained run with the package: ``pgsound/pretrained_runs/NAME.pt`` and its manifest ``NAME.json``.

    python benchmarks/ship_run.py RUN NAME --data FILE --wall-seconds S --description TEXT \\
        --command "prepare synthetic-piano --size 128x128 --minutes 10 -o DATA" \\
        --command "train --preset piano-cpu --data DATA" --target swd_over_floor=1.5

RUN is the run folder ``pgsound train`` wrote (its newest checkpoint is shipped); each ``--command`` is a
``pgsound`` command line as it was run, with ``DATA`` for the dataset file (the test suite reruns them at smoke
size, and ``pgsound evaluate --pretrained`` regenerates the data with the prepare command). The manifest records
this repository's commit, the machine and torch, and the metrics of the shipped float16 Gs against ``--n`` reals.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

import torch

from pgsound import pretrained
from pgsound.device import cpu_model
from pgsound.run_folder import read_stretches


def machines(run: Path, fallback: str) -> str:
    """The machine of each stretch the run was trained in (its ``stretches.jsonl``), or ``fallback``."""
    parts: list[str] = []
    for stretch in read_stretches(run):
        described = f"{stretch['machine']} from {stretch['kimg']:g} kimg"
        if not parts or not parts[-1].startswith(stretch["machine"]):
            parts.append(described)
    return "; ".join(parts) or fallback


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run")
    parser.add_argument("name")
    parser.add_argument("--data", required=True, help="the dataset the run was trained on")
    parser.add_argument("--command", action="append", required=True, help="a pgsound command line, DATA for the data")
    parser.add_argument("--wall-seconds", type=float, required=True, help="wall time of the train command")
    parser.add_argument("--threads", type=int, required=True, help="the torch threads the training used")
    parser.add_argument("--description", required=True)
    parser.add_argument("--n", type=int, default=256, help="reals and fakes per side for the metrics")
    parser.add_argument("--target", action="append", default=[], metavar="NAME=LIMIT",
                        help="a target the run was trained toward, recorded with what the shipped Gs reached: "
                             + ", ".join(pretrained.TARGET_MEASURES) + " (e.g. swd_over_floor=2)")
    parser.add_argument("--commit", help="the commit the run was trained at (default: this checkout's HEAD)")
    parser.add_argument("--machine", help="the machine the run was trained on (default: the run folder's record of "
                                          "each stretch, or for an older run this machine's CPU)")
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parents[1]
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", args.commit or "HEAD"], capture_output=True,
                            text=True, check=True).stdout.strip()
    record = {
        "description": args.description,
        "commands": [shlex.split(c) for c in args.command],
        "commit": commit,
        "wall_seconds": args.wall_seconds,
        "machine": args.machine or machines(Path(args.run), f"{cpu_model()}, {os.cpu_count()} cores, "
                                                              f"{args.threads} torch thread(s), {platform.system()} "
                                                              f"{platform.machine()}"),
        "torch": torch.__version__,
        "made": datetime.date.today().isoformat(),
    }
    limits = {name: float(limit) for name, _, limit in (t.partition("=") for t in args.target)}
    target = pretrained.export(args.run, args.name, record, data=args.data, n=args.n, targets=limits)
    for name, assessed in pretrained.manifest(args.name).get("targets", {}).items():
        print(f"target {name} <= {assessed['limit']:g}: reached {assessed['reached']:.3g}, "
              f"{'met' if assessed['met'] else 'NOT met'}")
    print(f"shipped {target} ({target.stat().st_size / 1e6:.2f} MB) and {target.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
