"""Device choice and seeding: the same code on CPU and CUDA, reproducible (book: Introduction)."""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os
import platform
import random
import sys
from pathlib import Path

import numpy as np
import torch

from pgsound.errors import UserError

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def default_device() -> torch.device:
    """CUDA when a GPU is present, else the CPU: where library functions run when not told.

    Training, and the commands, choose with :func:`pgsound.device_check.choose_device`, which also considers Apple's
    GPU after a one-step self-check.
    """
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


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
    from pgsound.config import check_seed

    check_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


def restore_generator(generator: torch.Generator, state: torch.Tensor) -> bool:
    """Give ``generator`` a saved state; returns whether it could take it as it was.

    The CPU's generator (Mersenne Twister) and the GPUs' (Philox) keep states of other sizes, so a state saved on
    one kind of device does not fit a generator of another: then ``generator`` is seeded from the saved state's
    bytes instead, the same seed every time, so that a run resumed on another kind of device still draws the
    same numbers on each try, though not the numbers the uninterrupted run drew (book: chapter 7, Checkpoints).
    """
    state = state.detach().cpu()
    if state.numel() == generator.get_state().numel():
        try:
            generator.set_state(state)
            return True
        except RuntimeError:  # same size, another generator's layout
            pass
    generator.manual_seed(int.from_bytes(hashlib.sha256(state.numpy().tobytes()).digest()[:8], "little"))
    return False


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
