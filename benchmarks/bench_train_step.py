"""Training-step throughput at each resolution, against pro_gan_pytorch 3.4 (issue: performance).

A step is what one iteration of a progressive GAN does: a D step with the WGAN-GP penalty and drift, a G step,
the generator EMA; Adam(lr 1e-3, betas (0, 0.99), eps 1e-8) for both networks, one channel, one batch size for
everyone. Three paths, measured interleaved (peer, plain, trainer, peer, plain, trainer, ...) so that load on
a shared machine falls on all of them alike; the figure is the median over rounds:

- **peer** (the anchor): pro_gan_pytorch's ``Generator``/``Discriminator`` and ``WganGP`` loss, stepped as its
  ``ProGAN.optimize_discriminator``/``optimize_generator`` do (G's fakes built with autograd then detached;
  D's weights keep receiving gradients during the G step; EMA with its ``update_average``). Left out, in its
  favour: its per-step NaN check over every gradient and its ``.item()`` reads, and the data loading.
- **plain**: our ``Generator``/``Discriminator`` and ``pgsound.loss``, written the obvious way (fakes under
  ``no_grad``, D's weights still trainable in the G step, ``pgsound.ema.update_ema``). Reals pre-made, as
  for the peer.
- **trainer**: ``pgsound.trainer.train_step`` itself (fp32 eager on the CPU), reals served by its loader
  from a prepared file held in memory, faded on the device.
- **compiled** (only when asked for, ``--paths ...,compiled``): the same with ``compile=True``, G and D under
  ``torch.compile`` and the penalty eager; its warm-up steps include the compilation (use ``--warmup 2``).
- **bf16** (only when asked for): ``train_step`` with bf16 autocast; on CUDA the GPU defaults (with
  channels_last), against **plain** fp32 eager for the issue's 2.5x target; on the CPU ``cpu_bf16=true``, which
  pays only on CPUs with bf16 matrix units (Intel AMX).

The ratios are each path's throughput over the anchor's: the peer's when it runs, else plain's.

Widths match per resolution: the peer's module-level ``nf`` is patched with ``functools.partial`` to our
``fmap_base``/``fmap_max`` (its ``depth`` d is our level d - 2, both with nf(d - 1) channels at 2**d pixels),
and its latent size is our nf(0). Its ``EqualizedConvTranspose2d`` calls torch's private ``_output_padding``
with the pre-2.x signature; the benchmark adapts that one call. The peer is installed with pip, without its
dependencies, into a temporary directory that is only put on ``sys.path`` for this run (with ``--peer-source``
an unpacked sdist is used instead, e.g. offline).

Time is this process's CPU time when it runs on the CPU with one thread (``--clock auto``): on a machine shared
with other jobs, wall time mostly measures when the scheduler let the benchmark run, CPU time what a step costs.

The CPU's flush-denormal mode and ``pgsound.device.keep_freed_memory`` (glibc reuses freed large blocks instead
of page-faulting fresh ones), which the trainer turns on, are process-wide and set for every path alike;
``--keep-denormals`` and ``--system-malloc`` leave them off for all.

    .venv/bin/python benchmarks/bench_train_step.py [--resolutions 8,16,...,512] [--batch 16]
        [--widths 8192,64 | --paper-widths] [--threads 1] [--rounds 3] [--seconds 2] [--system-malloc]
"""

from __future__ import annotations

import argparse
import functools
import math
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import pgsound.device
from pgsound.config import LossConfig, TrainConfig
from pgsound.datasets import DatasetWriter, fade_reals, open_dataset
from pgsound.device import default_device
from pgsound.ema import make_ema, update_ema
from pgsound.loss import discriminator_loss, generator_loss
from pgsound.measure import Stopwatch
from pgsound.networks import Discriminator, Generator, num_features, parameter_count
from pgsound.trainer import new_state, train_step

PEER = "pro-gan-pth==3.4"
ADAM = dict(lr=1e-3, betas=(0.0, 0.99), eps=1e-8)
EMA_BETA = 0.999
PATHS = ("peer", "plain", "trainer", "compiled", "bf16")


# ---------------------------------------------------------------------- the peer
def install_peer(target: Path, source: Path | None) -> None:
    """Put pro_gan_pytorch on sys.path: pip --no-deps into ``target``, or an unpacked sdist."""
    if source is None:
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), PEER]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"could not install {PEER} with pip ({result.stderr.strip()[-300:]}); pass "
                             f"--peer-source DIR (an unpacked sdist) to use a local copy")
        sys.path.insert(0, str(target))
    else:
        if not (source / "pro_gan_pytorch" / "networks.py").exists():
            raise SystemExit(f"--peer-source {source}: expected pro_gan_pytorch/networks.py in it")
        sys.path.insert(0, str(source))


def load_peer(fmap_base: int, fmap_max: int):
    """The peer's modules, with our widths and the private-call adapter."""
    import pro_gan_pytorch.custom_layers as layers
    import pro_gan_pytorch.losses as losses
    import pro_gan_pytorch.networks as networks

    # Its networks look nf up globally: our fmap_base and fmap_max give both packages the same widths.
    networks.nf = functools.partial(networks.nf.func if isinstance(networks.nf, functools.partial) else networks.nf,
                                    fmap_base=fmap_base, fmap_max=fmap_max)

    # torch 2.x added num_spatial_dims (and dilation) to _output_padding; its call uses the 1.x signature.
    def output_padding(self, input, output_size, stride, padding, kernel_size):  # noqa: A002 - torch's name
        return torch.nn.ConvTranspose2d._output_padding(
            self, input, output_size, stride, padding, kernel_size, 2, self.dilation
        )

    layers.EqualizedConvTranspose2d._output_padding = output_padding
    return networks, losses, layers


class PeerPath:
    def __init__(self, peer, max_res: int, latent: int, device: torch.device) -> None:
        networks, losses, layers = peer
        depth = int(math.log2(max_res))
        self.G = networks.Generator(depth=depth, num_channels=1, latent_size=latent).to(device)
        self.D = networks.Discriminator(depth=depth, num_channels=1, latent_size=latent).to(device)
        self.Gs = networks.Generator(depth=depth, num_channels=1, latent_size=latent).to(device)
        self.update_average = layers.update_average
        self.update_average(self.Gs, self.G, beta=0)
        self.loss = losses.WganGP(drift=0.001)
        self.opt_g = torch.optim.Adam(self.G.parameters(), **ADAM)
        self.opt_d = torch.optim.Adam(self.D.parameters(), **ADAM)
        self.latent, self.device = latent, device

    def step(self, reals: torch.Tensor, resolution: int, alpha: float) -> None:
        depth = int(math.log2(resolution))
        noise = torch.randn(reals.shape[0], self.latent, device=self.device)
        # ProGAN.optimize_discriminator
        fakes = self.G(noise, depth, alpha).detach()
        loss_d = self.loss.dis_loss(self.D, reals, fakes, depth, alpha)
        self.opt_d.zero_grad()
        loss_d.backward()
        self.opt_d.step()
        # ProGAN.train: EMA between the two steps
        self.update_average(self.Gs, self.G, beta=EMA_BETA)
        # ProGAN.optimize_generator
        fakes = self.G(noise, depth, alpha)
        loss_g = self.loss.gen_loss(self.D, reals, fakes, depth, alpha)
        self.opt_g.zero_grad()
        loss_g.backward()
        self.opt_g.step()


# ---------------------------------------------------------------------- ours
class PlainPath:
    def __init__(self, max_res: int, fmap_base: int, fmap_max: int, device: torch.device) -> None:
        kw = dict(resolution=max_res, channels=1, fmap_base=fmap_base, fmap_max=fmap_max)
        self.G, self.D = Generator(**kw).to(device), Discriminator(**kw).to(device)
        self.Gs = make_ema(self.G)
        self.opt_g = torch.optim.Adam(self.G.parameters(), **ADAM)
        self.opt_d = torch.optim.Adam(self.D.parameters(), **ADAM)
        self.loss = LossConfig()
        self.device = device

    def step(self, reals: torch.Tensor, resolution: int, alpha: float) -> None:
        level = int(math.log2(resolution)) - 2
        n = reals.shape[0]
        with torch.no_grad():
            fakes = self.G(torch.randn(n, self.G.latent_size, device=self.device), level, alpha)
        loss_d, _ = discriminator_loss(self.D, reals, fakes, level, alpha, self.loss)
        self.opt_d.zero_grad()
        loss_d.backward()
        self.opt_d.step()
        fakes = self.G(torch.randn(n, self.G.latent_size, device=self.device), level, alpha)
        loss_g = generator_loss(self.D, fakes, level, alpha, self.loss)
        self.opt_g.zero_grad()
        loss_g.backward()
        self.opt_g.step()
        update_ema(self.Gs, self.G, EMA_BETA)


class TrainerPath:
    """``train_step`` held at one level and alpha by setting ``images_shown`` before each step."""

    PHASE_KIMG = 1.0  # lod_training_kimg = lod_transition_kimg: level k is fully in at 2k kimg

    def __init__(self, data_path: Path, fmap_base: int, fmap_max: int, batch: int, device: torch.device,
                 compile_: bool = False, precision: str = "fp32") -> None:
        net = {"fmap_base": fmap_base, "fmap_max": fmap_max}
        config = TrainConfig.from_dict({
            "g": net, "d": net, "precision": precision, "compile": compile_, "channels_last": precision == "bf16",
            "cpu_bf16": precision == "bf16" and device.type == "cpu",
            "schedule": {"total_kimg": 1e6, "lod_training_kimg": self.PHASE_KIMG,
                         "lod_transition_kimg": self.PHASE_KIMG, "minibatch_default": batch},
        })
        self.state = new_state(config, open_dataset(data_path), device=device)
        self.images = 0

    def images_at(self, level: int, alpha: float) -> int:
        t = self.PHASE_KIMG
        kimg = 2 * t * level if alpha >= 1.0 else 2 * t * (level - 1) + t + alpha * t
        images = int(round(kimg * 1000))
        self.state.images_shown = images
        phase = self.state.phase()
        assert (phase.level, round(phase.alpha, 6)) == (level, round(alpha, 6)), phase
        return images

    def step(self, reals: torch.Tensor, resolution: int, alpha: float) -> None:
        del reals  # the state's loader serves its own
        self.state.images_shown = self.images
        train_step(self.state)

    def at(self, resolution: int, alpha: float) -> None:
        self.images = self.images_at(int(math.log2(resolution)) - 2, alpha)


# ---------------------------------------------------------------------- measuring
def time_steps(step, steps: int, device: torch.device, clock=time.perf_counter) -> float:
    """Seconds per step by ``clock``: wall time, or this process's CPU time (``time.process_time``)."""
    with Stopwatch(device, clock) as watch:
        for _ in range(steps):
            step()
    return watch.seconds / steps


def measure_cell(paths: dict, reals: torch.Tensor, resolution: int, alpha: float, args, device) -> dict:
    """Seconds per step of each path, interleaved over ``args.rounds`` rounds; the median of each."""
    steps = {}
    for name, path in paths.items():
        fn = functools.partial(path.step, reals, resolution, alpha)
        # Warm-up (allocations, Adam state for new layers); its time sizes the rounds.
        warm = [time_steps(fn, 1, device, args.clock) for _ in range(args.warmup)]
        steps[name] = max(1, math.ceil(args.seconds / min(warm))) if warm else 1
    times = {name: [] for name in paths}
    for r in range(args.rounds):
        order = list(paths) if r % 2 == 0 else list(reversed(paths))
        for name in order:
            fn = functools.partial(paths[name].step, reals, resolution, alpha)
            times[name].append(time_steps(fn, steps[name], device, args.clock))
    return {name: statistics.median(t) for name, t in times.items()}


def make_data(path: Path, resolution: int, count: int) -> None:
    rng = np.random.default_rng(0)
    with DatasetWriter(path, (resolution, resolution), 1, "float16") as writer:
        for start in range(0, count, 16):
            n = min(16, count - start)
            writer.add(rng.uniform(-1, 1, size=(n, 1, resolution, resolution)).astype(np.float32))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resolutions", default="8,16,32,64,128,256,512")
    parser.add_argument("--batch", type=int, default=16, help="minibatch for every path (a multiple of 4)")
    parser.add_argument("--widths", default="8192,64",
                        help="FMAP_BASE,FMAP_MAX of nf(stage) = min(base / 2**stage, max); the default gives layers "
                             "64 wide, 32 at 512x512 (CPU sized)")
    parser.add_argument("--paper-widths", action="store_true", help="the paper's 8192,512 (512 wide up to 64x64)")
    parser.add_argument("--alphas", default="1,0.5", help="fade-in values to measure (1 = no fade)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; 1 is the stable choice on a shared 2-core machine")
    parser.add_argument("--clock", choices=("auto", "cpu", "wall"), default="auto",
                        help="cpu: this process's CPU time, robust on a shared machine with --threads 1; wall: "
                             "elapsed time; auto: cpu on a CPU device with one thread, wall otherwise")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per cell (median reported)")
    parser.add_argument("--seconds", type=float, default=2.0, help="about this long per path per round")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per path per cell (0 for large cells)")
    parser.add_argument("--paths", default="peer,plain,trainer", help=f"which of {','.join(PATHS)} to run")
    parser.add_argument("--peer-source", type=Path, help="an unpacked pro-gan-pth 3.4 sdist instead of pip")
    parser.add_argument("--keep-denormals", action="store_true", help="leave the CPU's flush-denormal mode off")
    parser.add_argument("--system-malloc", action="store_true",
                        help="leave glibc's malloc as it is (no keep_freed_memory), for every path")
    args = parser.parse_args(argv)
    if args.batch % 4:
        parser.error(f"--batch {args.batch}: minibatch stddev groups of 4 need a multiple of 4")
    args.resolutions = sorted(int(r) for r in args.resolutions.split(","))
    for r in args.resolutions:
        if r < 8 or r & (r - 1):
            parser.error(f"--resolutions: {r} is not a power of two of at least 8")
    args.fmap_base, args.fmap_max = (8192, 512) if args.paper_widths else map(int, args.widths.split(","))
    args.alphas = [float(a) for a in args.alphas.split(",")]
    args.paths = [p for p in args.paths.split(",") if p]
    unknown = set(args.paths) - set(PATHS)
    if unknown or not args.paths:
        parser.error(f"--paths: expected some of {','.join(PATHS)}, got {args.paths}")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = default_device()
    if args.clock == "auto":
        args.clock = "cpu" if device.type == "cpu" and args.threads == 1 else "wall"
    clock_name, args.clock = args.clock, time.process_time if args.clock == "cpu" else time.perf_counter
    if device.type == "cpu" and not args.keep_denormals:
        torch.set_flush_denormal(True)
    malloc = "system malloc"
    if device.type == "cpu" and not args.system_malloc and pgsound.device.keep_freed_memory():
        malloc = "keep_freed_memory"
    max_res = max(args.resolutions)
    latent = num_features(0, args.fmap_base, 1.0, args.fmap_max)
    widths = [num_features(int(math.log2(r)) - 1, args.fmap_base, 1.0, args.fmap_max) for r in args.resolutions]

    with tempfile.TemporaryDirectory() as tmp:
        paths: dict = {}
        if "peer" in args.paths:
            install_peer(Path(tmp) / "peer", args.peer_source)
            torch.manual_seed(0)
            paths["peer"] = PeerPath(load_peer(args.fmap_base, args.fmap_max), max_res, latent, device)
        if "plain" in args.paths:
            torch.manual_seed(0)
            paths["plain"] = PlainPath(max_res, args.fmap_base, args.fmap_max, device)
        data = Path(tmp) / f"random{max_res}.h5"
        for name in ("trainer", "compiled", "bf16"):
            if name not in args.paths:
                continue
            if not data.exists():
                make_data(data, max_res, count=max(2 * args.batch, 32))
            paths[name] = TrainerPath(data, args.fmap_base, args.fmap_max, args.batch, device,
                                      compile_=name == "compiled", precision="bf16" if name == "bf16" else "fp32")

        print(f"# {platform.machine()} {platform.processor() or ''}, {torch.get_num_threads()} threads, torch "
              f"{torch.__version__}, device {device}, {clock_name} clock, {malloc}, batch {args.batch}, widths "
              f"fmap_base {args.fmap_base} fmap_max {args.fmap_max} (latent {latent}; per resolution: "
              + ", ".join(f"{r}:{w}" for r, w in zip(args.resolutions, widths)) + ")")
        counts = []
        for name, path in paths.items():
            G, D = (path.state.G, path.state.D) if isinstance(path, TrainerPath) else (path.G, path.D)
            counts.append(f"{name} G {parameter_count(G) / 1e6:.3f}M D {parameter_count(D) / 1e6:.3f}M")
        print("# parameters: " + "; ".join(counts))
        header = f"{'res':>4} | {'alpha':>5} |" + "".join(f" {n + ' img/s':>13} |" for n in paths)
        header += "".join(f" {n + ' s/kimg':>14} |" for n in paths)
        anchor = "peer" if "peer" in paths else "plain" if "plain" in paths else None
        ratios = [n for n in paths if n != anchor] if anchor else []
        header += "".join(f" {n + '/' + anchor:>13} |" for n in ratios)
        print(header)
        print("-" * len(header))
        generator = torch.Generator().manual_seed(1)
        for resolution in args.resolutions:
            for alpha in args.alphas:
                reals = torch.rand(args.batch, 1, resolution, resolution, generator=generator) * 2 - 1
                reals = fade_reals(reals.to(device), alpha)
                for path in paths.values():
                    if isinstance(path, TrainerPath):
                        path.at(resolution, alpha)
                sec = measure_cell(paths, reals, resolution, alpha, args, device)
                row = f"{resolution:>4} | {alpha:>5.2f} |"
                row += "".join(f" {args.batch / sec[n]:>13.1f} |" for n in paths)
                row += "".join(f" {sec[n] * 1000 / args.batch:>14.1f} |" for n in paths)
                row += "".join(f" {sec[anchor] / sec[n]:>12.2f}x |" for n in ratios)
                print(row, flush=True)


if __name__ == "__main__":
    main()
