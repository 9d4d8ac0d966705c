"""Where the training step's time goes, per level, with torch.profiler (issue: performance).

``pgsound.trainer.train_step`` (same networks, loader, losses, optimizers and EMA, from a ``TrainState``), cut
into labelled parts with ``torch.profiler.record_function``:

- ``data``: the loader's faded real batch;
- ``G fwd (D step)``: fakes for the D step, without gradients;
- ``D fwd real+fake`` and ``D bwd real+fake``: D's WGAN scores and drift, their backward;
- ``penalty``: ``pgsound.loss.gradient_penalty`` (D on the mixed batch, the input gradient with its graph) and
  its double backward;
- ``G fwd + D fwd (G step)``, ``G step bwd``: the G step;
- ``optimizer``: both Adam steps and zero_grad; ``EMA``: ``update_ema``.

To attribute the penalty's double backward, the D loss is backpropagated in two calls (WGAN terms, then the
penalty) instead of one; the gradients are the same sums and the work is the same. The shares come from the
profiler's (wall-clock) times of the labelled parts. The last column is a real ``train_step`` timed alone for
comparison, by this process's CPU time on a CPU with one thread (as ``bench_train_step.py``), else wall time.
The column ``conv ops`` is the share of the operators' own CPU time spent in convolutions and their backward
(``aten::*conv*``), whatever part they belong to.

    .venv/bin/python benchmarks/profile_step.py [--resolutions 8,32,128] [--batch 16] [--widths 8192,64]
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

sys.path.insert(0, str(Path(__file__).parent))
from bench_train_step import TrainerPath, make_data  # noqa: E402

from pgsound.device import configure_process  # noqa: E402
from pgsound.ema import update_ema  # noqa: E402
from pgsound.loss import gradient_penalty, split_output  # noqa: E402
from pgsound.measure import Stopwatch  # noqa: E402
from pgsound.trainer import draw_latents  # noqa: E402

PARTS = ("data", "G fwd (D step)", "D fwd real+fake", "D bwd real+fake", "penalty", "G fwd + D fwd (G step)",
         "G step bwd", "optimizer", "EMA")


def labelled_step(state, level: int, alpha: float, batch: int) -> None:
    """One step of train_step's work (unconditional WGAN-GP), its parts labelled for the profiler."""
    config, G, D = state.config, state.G, state.D
    with record_function("data"):
        reals = state.loader.batch(level, batch, alpha)
    with record_function("G fwd (D step)"), torch.no_grad():
        fakes = G(draw_latents(state, batch), level, alpha)
    D.requires_grad_(True)
    with record_function("D fwd real+fake"):
        real_scores, _ = split_output(D(reals, level, alpha))
        fake_scores, _ = split_output(D(fakes, level, alpha))
        loss = fake_scores.mean() - real_scores.mean() + config.loss.drift * real_scores.square().mean()
    with record_function("optimizer"):
        state.opt_d.zero_grad(set_to_none=True)
    with record_function("D bwd real+fake"):
        loss.backward()
    with record_function("penalty"):
        penalty = gradient_penalty(D, reals, fakes, level, alpha, config.loss.gp_target, state.penalty_rng)
        (config.loss.gp_lambda * penalty.mean()).backward()
    with record_function("optimizer"):
        state.opt_d.step()
    D.requires_grad_(False)
    with record_function("G fwd + D fwd (G step)"):
        scores, _ = split_output(D(G(draw_latents(state, batch), level, alpha), level, alpha))
        loss_g = -scores.mean()
    with record_function("optimizer"):
        state.opt_g.zero_grad(set_to_none=True)
    with record_function("G step bwd"):
        loss_g.backward()
    with record_function("optimizer"):
        state.opt_g.step()
    with record_function("EMA"):
        update_ema(state.Gs, state.G, state.config.ema_beta)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resolutions", default="8,32,128")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--widths", default="8192,64", help="FMAP_BASE,FMAP_MAX (as bench_train_step.py)")
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=3, help="profiled steps per resolution (after one warm-up)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    fmap_base, fmap_max = map(int, args.widths.split(","))
    resolutions = sorted(int(r) for r in args.resolutions.split(","))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    configure_process(device)  # as pgsound train does
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    print(f"# {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, device {device}, "
          f"batch {args.batch}, widths {fmap_base},{fmap_max}, alpha {args.alpha}; share of the step's time per part")
    header = f"{'res':>4} | " + " | ".join(f"{p:>{max(len(p), 5)}}" for p in PARTS)
    cpu_clock = device.type == "cpu" and args.threads == 1
    clock = time.process_time if cpu_clock else time.perf_counter
    header += f" | {'conv ops':>8} | {'sum ms/step':>11} | {'train_step ms':>15}"
    header += " (CPU time)" if cpu_clock else ""
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "random.h5"
        make_data(data, max(resolutions), count=max(2 * args.batch, 32))
        path = TrainerPath(data, fmap_base, fmap_max, args.batch, device)
        state = path.state
        for resolution in resolutions:
            level = int(math.log2(resolution)) - 2
            path.at(resolution, args.alpha)
            labelled_step(state, level, args.alpha, args.batch)  # warm-up
            with profile(activities=activities) as prof:
                for _ in range(args.steps):
                    labelled_step(state, level, args.alpha, args.batch)
            totals = {p: 0.0 for p in PARTS}
            for event in prof.key_averages():
                if event.key in totals:
                    device_us = getattr(event, "device_time_total", 0) if device.type == "cuda" else 0
                    totals[event.key] += max(event.cpu_time_total, device_us)
            total = sum(totals.values())
            ops = [e for e in prof.key_averages() if e.key.startswith("aten::")]
            conv_share = sum(e.self_cpu_time_total for e in ops if "conv" in e.key) / sum(
                e.self_cpu_time_total for e in ops
            )
            # The real thing, for comparison (not profiled).
            path.step(None, resolution, args.alpha)
            with Stopwatch(device, clock) as watch:
                for _ in range(args.steps):
                    path.step(None, resolution, args.alpha)
            trainer_ms = watch.seconds / args.steps * 1e3
            row = f"{resolution:>4} | " + " | ".join(
                f"{100 * totals[p] / total:>{max(len(p), 5) - 1}.0f}%" for p in PARTS
            )
            row += f" | {100 * conv_share:>7.0f}% | {total / args.steps / 1e3:>11.0f} | {trainer_ms:>15.0f}"
            print(row, flush=True)


if __name__ == "__main__":
    main()
