"""Device choice and seeding: the same code on CPU and CUDA, reproducible (book: Introduction)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import platform
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pgsound.errors import UserError

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def default_device() -> torch.device:
    """CUDA when a GPU is present, else Apple's GPU (``mps``) when it passes :func:`mps_self_check`, else the CPU.

    :func:`choose_device` says why.
    """
    return choose_device().device


@dataclass(frozen=True)
class DeviceChoice:
    """The default device and why: ``note`` is one line, e.g. ``mps: not available: ...``."""

    device: torch.device
    note: str
    notable: bool = False  # MPS chosen, or a Mac's GPU passed over: worth a line when a command trains

    def line(self) -> str:
        """``device mps (mps: self-check passed: ...)``: what ``pgsound info`` and the training commands print."""
        return f"device {self.device} ({self.note})"


@dataclass(frozen=True)
class SelfCheck:
    """The outcome of :func:`self_check`: whether it passed, and one line saying how."""

    passed: bool
    detail: str


# float32 throughout; a relative difference, per result, against the result's largest magnitude on the CPU.
SELF_CHECK_TOLERANCE = 1e-3


def choose_device() -> DeviceChoice:
    """The default device, CUDA, then MPS, then the CPU, with the reason for it (book: Introduction).

    MPS is taken only when torch reports it and a one-step self-check passes (:func:`mps_self_check`: a D step
    with the gradient penalty's double backward and a G step agree with the CPU); the check runs once per
    process. Where it is not taken the note says why: not built into this torch, not available on this machine,
    or how the self-check failed.
    """
    if torch.cuda.is_available():
        return DeviceChoice(torch.device("cuda"), f"CUDA comes first; {torch.cuda.device_count()} CUDA GPU(s)")
    on_mac = sys.platform == "darwin"
    if not torch.backends.mps.is_built():
        return DeviceChoice(torch.device("cpu"), f"no CUDA GPU; mps: not built into torch {torch.__version__}",
                            notable=on_mac)
    if not torch.backends.mps.is_available():
        return DeviceChoice(torch.device("cpu"), "mps: not available: torch is built with MPS but this machine has "
                            "no Apple GPU it can use (Apple silicon and macOS 12.3 or later)", notable=True)
    try:
        check = mps_self_check()
    except Exception as error:  # a check that cannot even run is a failed check
        check = SelfCheck(False, describe_error(error))
    if not check.passed:
        return DeviceChoice(torch.device("cpu"), f"mps: self-check failed: {check.detail}", notable=True)
    return DeviceChoice(torch.device("mps"), f"self-check passed: {check.detail}", notable=True)


@functools.cache
def mps_self_check() -> SelfCheck:
    """:func:`self_check` on ``mps``, once per process (each call after the first returns the first's answer)."""
    return self_check("mps")


def describe_error(error: BaseException) -> str:
    """``RuntimeError: the first line of its message``."""
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0]}" if message else type(error).__name__


def self_check(
    device: torch.device | str,
    step: Callable[[torch.device], dict[str, torch.Tensor]] | None = None,
    reference: Callable[[torch.device], dict[str, torch.Tensor]] | None = None,
    tolerance: float = SELF_CHECK_TOLERANCE,
) -> SelfCheck:
    """Whether ``step`` on ``device`` runs, gives finite results and agrees with ``reference`` on the CPU.

    ``step`` and ``reference`` default to :func:`check_step`. Each result is compared by its largest absolute
    difference, relative to the result's largest magnitude on the CPU. Never raises: an error is a failed check.
    """
    device = torch.device(device)
    step = step or check_step
    reference = reference or check_step
    try:
        got = step(device)
        want = reference(torch.device("cpu"))
    except Exception as error:
        return SelfCheck(False, describe_error(error))
    worst_name, worst = "", 0.0
    for name, expected in want.items():
        value = got[name].detach().to("cpu", torch.float32)
        if not torch.isfinite(value).all():
            return SelfCheck(False, f"{name} is not finite on {device}")
        expected = expected.detach().to("cpu", torch.float32)
        scale = max(float(expected.abs().max()), 1e-12)
        difference = float((value - expected).abs().max()) / scale
        if not difference <= tolerance:
            return SelfCheck(False, f"{name} on {device} differs from the CPU's by {difference:.1e} of its "
                             f"largest value (tolerance {tolerance:.0e})")
        if difference >= worst:
            worst_name, worst = name, difference
    return SelfCheck(True, f"G and D steps agree with the CPU within {tolerance:.0e} (largest difference "
                     f"{worst:.1e}, in {worst_name})")


class _PinnedPoint(torch.nn.Module):
    """D evaluated at ``point`` wherever the gradient penalty asks for it, with the penalty's gradients intact.

    The penalty draws its interpolation on the device, and devices draw different numbers from the same seed;
    ``x + (point - x).detach()`` has the value ``point`` and the derivative 1 with respect to ``x``, so both
    devices differentiate D (twice) at the same point, one drawn on the CPU.
    """

    def __init__(self, D: torch.nn.Module, point: torch.Tensor) -> None:
        super().__init__()
        self.D, self.point = D, point

    def forward(self, x: torch.Tensor, level: int, alpha: object) -> object:
        return self.D(x + (self.point - x).detach(), level, alpha)


def check_step(device: torch.device | str) -> dict[str, torch.Tensor]:
    """A D step (WGAN-GP, with the penalty's double backward) and a G step of this package's networks on ``device``.

    Networks of the smoke preset's widths for 1x8x8 pictures, halfway through the fade-in from 4x4, in float32,
    with the paper's loss and Adam settings. The weights and every random input are drawn on the CPU, so any
    device should give the CPU's numbers up to rounding. Returns the losses and the gradients by name (on the
    CPU). Then both Adam steps, a second D pass and a batch from the training loader (its flips drawn by a
    generator on the device) must be finite, else ``FloatingPointError``. Leaves the process's random state as it
    was. (The trainer itself imports this module, so the step is built from the networks and losses directly.)
    """
    from pgsound.config import TrainConfig
    from pgsound.datasets.arrays import ArrayDataset
    from pgsound.datasets.loader import LevelLoader, fade_reals
    from pgsound.loss import discriminator_loss, generator_loss
    from pgsound.networks import Discriminator, Generator

    device = torch.device(device)
    config = TrainConfig()
    level, fade, batch = 1, 0.5, 4
    dataset = ArrayDataset.random(batch, 1, (8, 8), seed=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        G = Generator(resolution=(8, 8), channels=1, fmap_base=64, fmap_max=16, latent_size=16).to(device)
        D = Discriminator(resolution=(8, 8), channels=1, fmap_base=64, fmap_max=16).to(device)
    cpu = torch.Generator().manual_seed(1)
    alpha = torch.full((), fade, device=device)  # a tensor during a fade-in, as the trainer passes it
    reals = fade_reals(torch.from_numpy(dataset.images(8, 8)[:]).to(device), fade)
    latents = torch.randn(2, batch, G.latent_size, generator=cpu).to(device)
    mix = torch.rand(batch, 1, 1, 1, generator=cpu).to(device)
    with torch.no_grad():
        fakes = G(latents[0], level, alpha)
    loss_d, parts = discriminator_loss(
        D, reals, fakes, level, alpha, config.loss, generator=torch.Generator(device=device).manual_seed(0),
        penalty_net=_PinnedPoint(D, torch.lerp(reals, fakes, mix)))
    loss_d.backward()
    D.requires_grad_(False)  # as the trainer's G step: the gradient flows through D to G
    loss_g = generator_loss(D, G(latents[1], level, alpha), level, alpha, config.loss)
    loss_g.backward()
    D.requires_grad_(True)
    results = {"D's loss": loss_d, "the gradient penalty": parts["penalty"], "D's gradients": _flat_gradients(D),
               "G's loss": loss_g, "G's gradients": _flat_gradients(G)}
    results = {name: value.detach().cpu() for name, value in results.items()}
    for net in (G, D):
        adam = torch.optim.Adam(net.parameters(), lr=config.schedule.lr_default, eps=config.optimizer.eps,
                                betas=(config.optimizer.beta1, config.optimizer.beta2))
        adam.step()
    _require_finite(device, "the weights after Adam's steps", _flat_weights(G), _flat_weights(D))
    loader = LevelLoader(dataset, device, seed=0, mirror=True)
    with torch.no_grad():
        scores = D(loader.batch(level, batch, fade), level, alpha)
    _require_finite(device, "D's scores after its step, on the loader's reals", scores)
    return results


def _flat_gradients(net: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in net.parameters() if p.grad is not None])


def _flat_weights(net: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in net.parameters()])


def _require_finite(device: torch.device, what: str, *tensors: torch.Tensor) -> None:
    if not all(bool(torch.isfinite(t).all()) for t in tensors):
        raise FloatingPointError(f"{what} are not finite on {device}")


DEVICE_TYPES = ("cpu", "cuda", "mps")


def parse_device(text: str) -> torch.device:
    """The torch device that ``text`` names, if this machine has it; else a :class:`UserError` saying why.

    Accepts ``cpu``, ``cuda``, ``cuda:N`` and ``mps`` (what ``--device`` takes everywhere).
    """
    kind, _, index = text.strip().lower().partition(":")
    if kind not in DEVICE_TYPES or (index and not index.isdigit()) or (index and kind != "cuda"):
        raise UserError(f"device {text!r} is not one of cpu, cuda, cuda:N or mps")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device {text!r}: this machine has no CUDA GPU that torch {torch.__version__} can use; "
                            f"use --device cpu")
        count = torch.cuda.device_count()
        if index and int(index) >= count:
            raise UserError(f"device {text!r}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}")
    if kind == "mps" and not (torch.backends.mps.is_available()):
        raise UserError(f"device {text!r}: this machine has no Apple GPU that torch {torch.__version__} can use; "
                        f"use --device cpu")
    return torch.device(f"{kind}:{index}" if index else kind)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every CUDA device).

    Returns a fresh ``torch.Generator`` seeded with ``seed`` for code that prefers an explicit generator.
    """
    from pgsound.config import SEED_LIMIT

    if not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


def describe_device(device: torch.device | None = None) -> str:
    """A one-line description: ``cuda:0 (NVIDIA H100, 80 GiB)`` or ``cpu (2 threads)``."""
    device = device or default_device()
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{device} ({props.name}, {props.total_memory / 2**30:.0f} GiB)"
    if device.type == "mps":
        return f"{device} (Apple GPU, memory shared with the CPU)"
    return f"{device} ({torch.get_num_threads()} threads)"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), or what ``platform`` knows elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_machine(device: torch.device | None = None) -> str:
    """The machine a run trains on, for its record: ``AMD EPYC, 2 cores, cpu (2 threads), torch 2.13.0+cpu``."""
    return f"{cpu_model()}, {os.cpu_count()} cores, {describe_device(device)}, torch {torch.__version__}"


def configure_process(device: torch.device | str) -> None:
    """The process-wide settings that training on ``device`` wants; call once, before training.

    On the CPU: flush denormal floats to zero (tiny gradients and Adam moments become denormals, which x86 CPUs
    process up to 50x slower) and :func:`keep_freed_memory`. On CUDA: let cuDNN pick the fastest convolution
    algorithms once per shape (shapes repeat within a level). ``pgsound train`` and ``preflight`` call it,
    and so does every chapter that trains; building networks or a training state never changes the process.
    (book: chapter 7, The training loop)
    """
    device = torch.device(device)
    if device.type == "cpu":
        torch.set_flush_denormal(True)
        keep_freed_memory()
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def keep_freed_memory(limit_bytes: int = 1 << 30) -> bool:
    """Let glibc's malloc reuse freed blocks up to ``limit_bytes`` instead of returning them to the system.

    By default glibc serves every block above 32 MiB with a fresh ``mmap`` and unmaps it on ``free``, so each
    large activation costs the kernel a page fault per 4 KiB page on first touch. A training step at 128x128
    (batch 16, 64 channels: 64 MiB per activation) spent about 40% of its CPU time in those faults. Serving
    such blocks from the heap and keeping the freed heap lets the next step reuse the same pages: the step's
    arithmetic is unchanged. Process-wide, like ``torch.set_flush_denormal``; the process keeps its peak heap
    until it exits. Returns whether both settings took effect (False on systems without glibc).
    (book: chapter 7, The training loop)
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    limit = int(min(limit_bytes, 2**31 - 1))
    return bool(mallopt(_M_MMAP_THRESHOLD, limit)) and bool(mallopt(_M_TRIM_THRESHOLD, limit))
