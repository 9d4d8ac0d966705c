"""Device choice and seeding: the same code on CPU and CUDA, reproducible (book: Introduction)."""

from __future__ import annotations

import random

import numpy as np
import torch


def default_device() -> torch.device:
    """CUDA when a GPU is present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every CUDA device).

    Returns a fresh ``torch.Generator`` seeded with ``seed`` for code that prefers an explicit generator.
    """
    if not 0 <= seed < 2**32:
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
    return f"{device} ({torch.get_num_threads()} threads)"
