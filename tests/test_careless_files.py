"""Files and processes a careless user, a full disk or a crash leave behind (issue 46).

Killed parents whose workers live on, recordings too long for one STFT, symbolic links, truncated and damaged
files, a full disk under a checkpoint or a picture, damaged pixels in a prepared dataset, a recording's tail.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def noise_wav(path: Path, seconds: float, rate: int = 16000, seed: int = 0) -> Path:
    audio = np.random.default_rng(seed).uniform(-0.5, 0.5, int(seconds * rate)).astype(np.float32)
    sf.write(path, audio, rate, subtype="PCM_16")
    return path


# ---- workers end with their parent ------------------------------------------------------------------------------
def children_of(pid: int) -> list[int]:
    """PIDs whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_of_prepare_audio_ends_its_workers_and_resource_tracker(tmp_path):
    folder = tmp_path / "takes"
    folder.mkdir()
    for i in range(12):
        noise_wav(folder / f"take{i:02d}.wav", 60.0, seed=i)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    log = tmp_path / "stderr.txt"
    with open(log, "w") as stderr:
        # What `pgsound prepare audio FOLDER -o takes.h5 --workers 2` runs, with its progress bar.
        code = (f"from pgsound.datasets.prepare import prepare_audio; "
                f"prepare_audio({str(tmp_path / 'takes.h5')!r}, {str(folder)!r}, workers=2, progress=True)")
        parent = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    children: list[int] = []
    try:
        deadline = time.monotonic() + 180
        while " 2/12 " not in log.read_text() and time.monotonic() < deadline and parent.poll() is None:
            time.sleep(0.05)  # two files done: both workers are past their start-up and busy
        children = [pid for pid in children_of(parent.pid) if "multiprocessing" in command_line(pid)]
        assert parent.poll() is None and len(children) == 3, "the preparation ended before it could be killed"
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in children if alive(pid)]
    finally:
        for pid in children:  # what this test started, if the assertion failed
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if parent.poll() is None:
            parent.kill()
