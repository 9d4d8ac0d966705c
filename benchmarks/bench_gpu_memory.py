"""Peak GPU memory and sec/kimg of the training step at 512x512 with the piano512 settings (issue: performance).

``train_step`` with the ``piano512`` preset (the paper's widths, batch 6 at 512x512, one channel), held at the
last level both fully faded in (alpha 1) and half-way through its fade (alpha 0.5, both paths of G and D run):

- **fp32 eager** (the anchor): ``precision=fp32``, ``channels_last=false``;
- **bf16 + channels_last**: the preset's defaults on CUDA (bf16 autocast, channels_last, fused Adam);
- with ``--compile``, also bf16 + channels_last + ``torch.compile`` of G and D (penalty eager).

Peak memory is ``torch.cuda.max_memory_allocated`` over two steps with that variant alone on the GPU (the 2018
PyTorch port needed about 9.5 GB at batch 6); the ratio is the variant's throughput over fp32 eager's, measured
in the same run, interleaved. Both are read with ``pgsound.measure`` (``PeakMemory``, ``Stopwatch``), as
``pgsound preflight`` reads them. The random test data (64 images) is held on the GPU by the loader (64 MB). On a
machine without CUDA it says so and exits with status 0.

    .venv/bin/python benchmarks/bench_gpu_memory.py [--steps 20] [--rounds 3] [--compile]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from pgsound.measure import PeakMemory, Stopwatch
from pgsound.trainer import train_step

REFERENCE_2018_GB = 9.5
RESOLUTION = 512


def make_trainer(data: Path, precision: str, channels_last: bool, compile_: bool, batch: int | None):
    from pgsound.config import resolve_config
    from pgsound.datasets import open_dataset
    from pgsound.device import configure_process
    from pgsound.trainer import new_state

    overrides = [f"precision={precision}", f"channels_last={str(channels_last).lower()}",
                 f"compile={str(compile_).lower()}"]
    if batch is not None:
        overrides.append(f"schedule.minibatch={{{RESOLUTION}: {batch}}}")
    config = resolve_config("piano512", overrides)
    configure_process("cuda")
    return new_state(config, open_dataset(data), device=torch.device("cuda"))


def images_at(trainer, alpha: float) -> int:
    """images_shown at which the trainer's schedule is at its last level with this alpha."""
    schedule = trainer.config.schedule
    level = trainer.max_level
    kimg = (level * (schedule.lod_training_kimg + schedule.lod_transition_kimg) if alpha >= 1.0 else
            (level - 1) * (schedule.lod_training_kimg + schedule.lod_transition_kimg)
            + schedule.lod_training_kimg + alpha * schedule.lod_transition_kimg)
    images = int(round(kimg * 1000))
    trainer.images_shown = images
    phase = trainer.phase()
    assert (phase.level, round(phase.alpha, 6)) == (level, round(alpha, 6)), phase
    return images


def timed_steps(trainer, images: int, steps: int) -> float:
    """Seconds per step, wall time, the GPU's queued work included."""
    with Stopwatch(trainer.device) as watch:
        for _ in range(steps):
            trainer.images_shown = images
            train_step(trainer)
    return watch.seconds / steps


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per variant per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median reported)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per variant and alpha")
    parser.add_argument("--batch", type=int, help="override the preset's batch 6 at 512x512")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile of G and D")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_gpu_memory.py needs a CUDA GPU; none is available here (nothing measured).")
        return 0

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_train_step import make_data

    variants = {"fp32 eager": ("fp32", False, False), "bf16 + channels_last": ("bf16", True, False)}
    if args.compile:
        variants["bf16 + channels_last + compile"] = ("bf16", True, True)
    props = torch.cuda.get_device_properties(0)
    print(f"# {props.name} ({props.total_memory / 2**30:.0f} GiB), torch {torch.__version__}, CUDA "
          f"{torch.version.cuda}, piano512 preset at {RESOLUTION}x{RESOLUTION}")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / f"random{RESOLUTION}.h5"
        make_data(data, RESOLUTION, count=64)
        header = (f"{'variant':>31} | {'alpha':>5} | {'batch':>5} | {'peak GB':>8} | {'sec/step':>8} | "
                  f"{'sec/kimg':>8} | {'vs fp32':>7} | {'vs 2018 9.5 GB':>14}")
        print(header)
        print("-" * len(header))
        for alpha in (1.0, 0.5):
            # Peak memory: one variant alive at a time, so the figure is that run's alone.
            peaks = {}
            for name, settings in variants.items():
                trainer = make_trainer(data, *settings, args.batch)
                timed_steps(trainer, images_at(trainer, alpha), args.warmup)
                memory = PeakMemory(trainer.device)
                memory.reset()
                timed_steps(trainer, images_at(trainer, alpha), 2)
                peaks[name] = memory.read() / 1e9
                del trainer
                torch.cuda.empty_cache()
            # Speed: all variants alive, interleaved rounds.
            trainers = {name: make_trainer(data, *settings, args.batch) for name, settings in variants.items()}
            times = {name: [] for name in variants}
            for trainer in trainers.values():
                timed_steps(trainer, images_at(trainer, alpha), args.warmup)
            for r in range(args.rounds):
                for name in list(variants) if r % 2 == 0 else list(reversed(variants)):
                    trainer = trainers[name]
                    times[name].append(timed_steps(trainer, images_at(trainer, alpha), args.steps))
            base = statistics.median(times["fp32 eager"])
            for name in variants:
                sec = statistics.median(times[name])
                batch = trainers[name].phase().batch_size
                print(f"{name:>31} | {alpha:>5.2f} | {batch:>5} | {peaks[name]:>8.2f} | {sec:>8.3f} | "
                      f"{sec * 1000 / batch:>8.1f} | {base / sec:>6.2f}x | {peaks[name] / REFERENCE_2018_GB:>13.2f}x",
                      flush=True)
            del trainers
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
