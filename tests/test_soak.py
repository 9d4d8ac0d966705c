"""The short fault soak (benchmarks/soak_resume.py): SIGKILLs at random moments, then an exact resume."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "soak_resume.py"


def test_three_random_kills_end_bit_identical_to_an_uninterrupted_run(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), "--kills", "3", "--seed", "1", "--work", str(tmp_path)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bit-identical" in result.stdout and "each tick once" in result.stdout
    assert "kills (SIGKILL)                   3" in result.stdout
