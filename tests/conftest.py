"""Shared test set-up: every test runs under the smoke profile, seeded, with one thread per op pool."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("PGSOUND_PROFILE", "smoke")
os.environ.setdefault("MPLBACKEND", "Agg")
# Under pytest-xdist (make test runs two processes) each process takes its share of the cores, it and the
# kernels and commands it starts: two processes of two threads each on two cores spin-wait on each other.
# Set before torch is imported, which reads it once.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    os.environ.setdefault(
        "OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    )


@pytest.fixture(autouse=True, scope="session")
def _training_process():
    """The process-wide settings pgsound train makes (flush-denormal, glibc's freed-memory reuse)."""
    from pgsound.device import configure_process

    configure_process("cpu")


@pytest.fixture(autouse=True)
def _seeded():
    from pgsound.device import seed_everything

    seed_everything(0)


@pytest.fixture
def one_thread():
    """One torch thread for the test: small FFTs spin-wait on two threads, 20x slower on a shared machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
