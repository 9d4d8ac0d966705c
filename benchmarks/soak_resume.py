"""Fault soak: train, SIGKILL at random moments, resume, again; the end must equal an uninterrupted run bit for bit.

    python benchmarks/soak_resume.py --kills 50 [--seed 0] [--work DIR]

A smoke run on a small spectrogram set (so that ticks write checkpoints, sample grids and Griffin-Lim WAV
files) is trained once without interruption. The same command is then started, killed with SIGKILL after a
random delay (drawn from half the start-up time to the start-up plus three ticks, so kills land in start-up,
steps, checkpoint writes and sample writes alike), resumed with ``pgsound train --resume``, killed again, and
so on for ``--kills`` kills, then resumed to the end. It passes when no resume needed a hand repair (every one
either was killed or exited 0), the final G, D, Gs and optimizer states equal the uninterrupted run's bit for
bit, ``log.jsonl`` holds each tick exactly once (the uninterrupted run's ticks), and no temporary file is left.
It prints a table and exits 1 on any failure. ``tests/test_soak.py`` runs a short version.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from pgsound.run_folder import latest_checkpoint
from pgsound.runlog import read_log

TICK_KIMG = 0.064  # the smoke preset's tick
CHECKPOINT_KIMG = re.compile(r"ckpt-(\d+\.\d+)kimg\.pt$")


def pgsound(*args: str) -> list[str]:
    return [sys.executable, "-m", "pgsound.cli", *args]


def temporaries(run: Path) -> list[Path]:
    """Files a write in progress leaves: the hidden temporaries beside checkpoints, samples and logs."""
    return [p for p in run.rglob(".*") if p.is_file() and p.name != ".lock"]


def newest_kimg(run: Path) -> float:
    newest = latest_checkpoint(run) if (run / "checkpoints").exists() else None
    match = CHECKPOINT_KIMG.search(newest.name) if newest else None
    return float(match.group(1)) if match else 0.0


def compare_states(a: Path, b: Path) -> tuple[list[str], int]:
    """Keys whose tensors differ between two checkpoints, and the bytes compared."""
    one, two = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    differ, compared = [], 0

    def walk(x, y, key: str) -> None:
        nonlocal compared
        if isinstance(x, torch.Tensor):
            compared += x.numel() * x.element_size()
            if not (isinstance(y, torch.Tensor) and x.dtype == y.dtype and torch.equal(x, y)):
                differ.append(key)
        elif isinstance(x, dict):
            if not isinstance(y, dict) or x.keys() != y.keys():
                differ.append(key)
                return
            for k in x:
                walk(x[k], y[k], f"{key}.{k}")
        elif isinstance(x, (list, tuple)):
            if not isinstance(y, (list, tuple)) or len(x) != len(y):
                differ.append(key)
                return
            for i, (u, v) in enumerate(zip(x, y)):
                walk(u, v, f"{key}[{i}]")
        elif x != y:
            differ.append(key)

    for key in ("G", "D", "Gs", "opt_g", "opt_d", "images_shown", "tick"):
        walk(one[key], two[key], key)
    return differ, compared


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill delays")
    parser.add_argument("--work", help="folder for the data and both runs (default: a new temporary folder)")
    args = parser.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="pgsound-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    rng = random.Random(args.seed)
    data = work / "piano32.h5"
    subprocess.run(pgsound("prepare", "synthetic-piano", "--size", "32x32", "--minutes", "0.5", "-o", str(data)),
                   check=True, env=env, capture_output=True)
    # Enough ticks that the kills fit before the end: a cycle gains one or two ticks on average, up to four where
    # a resume starts faster than the uninterrupted run did.
    kimg = round(max(0.4, TICK_KIMG * (3 * args.kills + 4)), 3)
    common = ["--data", str(data), "--kimg", str(kimg), "--no-progress"]

    started = time.perf_counter()
    reference = subprocess.Popen(pgsound("train", "--preset", "smoke", "--out", str(work / "reference"), *common),
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first_tick = None
    for line in reference.stdout:  # type: ignore[union-attr]
        if first_tick is None and line.startswith("tick"):
            first_tick = time.perf_counter() - started
    if reference.wait() != 0:
        print("the uninterrupted run failed", file=sys.stderr)
        return 1
    wall = time.perf_counter() - started
    (reference_run,) = (work / "reference").iterdir()
    ticks = len(read_log(reference_run))
    tick_seconds = (wall - (first_tick or 0.0)) / max(1, ticks - 1)
    startup = max(0.5, (first_tick or 1.0) - tick_seconds)

    soak_root = work / "soak"
    first = subprocess.Popen(pgsound("train", "--preset", "smoke", "--out", str(soak_root), *common), env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not list(soak_root.glob("*/checkpoints/ckpt-*.pt")) and first.poll() is None:
        time.sleep(0.05)  # a kill before the first checkpoint leaves nothing to resume: the user starts again
    kills, left_temporary, repairs = 0, 0, []
    if first.poll() is None:
        first.send_signal(signal.SIGKILL)
        first.wait()
        kills += 1
    (run,) = soak_root.iterdir()
    cycles = 0
    while newest_kimg(run) < kimg:
        cycles += 1
        last = kills >= args.kills
        proc = subprocess.Popen(pgsound("train", "--resume", str(run), *common), env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if not last:
            time.sleep(rng.uniform(0.5 * startup, startup + 3 * tick_seconds))
        if not last and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            left_temporary += bool(temporaries(run))
            continue
        output = proc.communicate()[0]
        if proc.returncode != 0:
            repairs.append(f"cycle {cycles}: exit {proc.returncode}: {output.strip().splitlines()[-1:]}")
            break
    differ, compared = compare_states(latest_checkpoint(reference_run), latest_checkpoint(run))
    log_ok = [r["kimg"] for r in read_log(run)] == [r["kimg"] for r in read_log(reference_run)]
    left = temporaries(run)
    passed = not repairs and not differ and log_ok and not left and kills >= args.kills

    rows = [
        ("uninterrupted run", f"{kimg:g} kimg, {ticks} ticks in {wall:.1f} s (start-up {startup:.1f} s)"),
        ("kills (SIGKILL)", f"{kills} over {cycles} resumes"),
        ("kills that left a temporary file", f"{left_temporary} (removed by the next start)"),
        ("resumes needing a hand repair", str(len(repairs)) + "".join(f"\n    {r}" for r in repairs)),
        ("final G, D, Gs, optimizers", "bit-identical" if not differ else f"differ in {', '.join(differ[:5])}"),
        ("bytes compared", f"{compared:,}"),
        ("log.jsonl", "each tick once, as uninterrupted" if log_ok else "differs from the uninterrupted log"),
        ("temporary files left", str(len(left))),
        ("result", "PASS" if passed else "FAIL"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
