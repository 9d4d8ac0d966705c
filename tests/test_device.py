"""Devices: the library's default (CUDA or the CPU), and what the measurements do on Apple's GPU.

The choice of a device for training, with Apple's GPU and its self-check, is tests/test_device_check.py.
"""

from __future__ import annotations

import torch

from pgsound.device import default_device


def test_library_functions_default_to_cuda_or_the_cpu_never_mps(monkeypatch):
    """Apple's GPU is taken only after its self-check (pgsound.device_check), never by the library's default."""
    monkeypatch.setattr(torch.backends.mps, "is_built", lambda: True)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_device() == torch.device("cuda")


def test_measurements_wait_for_apples_gpu_and_read_its_memory(monkeypatch):
    """MPS runs asynchronously like CUDA: a step's time must include its work; its buffers are the driver's."""
    from pgsound import measure

    calls = []
    monkeypatch.setattr(torch.mps, "synchronize", lambda: calls.append("synchronize"))
    monkeypatch.setattr(torch.mps, "driver_allocated_memory", lambda: 123 << 20)
    measure.synchronize(torch.device("mps"))
    assert calls == ["synchronize"]
    memory = measure.PeakMemory(torch.device("mps"))
    memory.reset()
    assert memory.read() == 123 << 20 and "mps" in memory.kind
