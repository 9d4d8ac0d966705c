"""Files and processes a careless user, a full disk or a crash leave behind (issue 46).

Killed parents whose workers live on, recordings too long for one STFT, symbolic links, truncated and damaged
files, a full disk under a checkpoint or a picture, damaged pixels in a prepared dataset, a recording's tail.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pgsound.cli import main


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


# ---- checkpoints: a full disk, a crash, a bad disk ----------------------------------------------------------------
def run_limited(args: list[str], limit_bytes: int, cwd: Path) -> subprocess.CompletedProcess:
    """``python ARGS`` with files capped at ``limit_bytes``: past it a write fails (EFBIG) as on a full disk."""
    import resource

    def cap() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, preexec_fn=cap, capture_output=True,
                          text=True, timeout=300)


def test_save_checkpoint_onto_a_full_disk_is_an_os_error_naming_the_file(tmp_path):
    code = ("import torch\nfrom pgsound.checkpoint import save_checkpoint\n"
            "try:\n    save_checkpoint({'x': torch.zeros(100000)}, 'ckpt.pt')\n"
            "except OSError as error:\n    print(error.filename, error.errno)\n")
    done = run_limited(["-c", code], 100_000, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ckpt.pt", str(errno.EFBIG)]
    assert list(tmp_path.iterdir()) == []  # no half checkpoint, no temporary file


@pytest.mark.slow
def test_train_onto_a_full_disk_at_its_checkpoint_is_one_line(tmp_path):
    from pgsound.datasets.prepare import prepare_synthetic_shapes

    prepare_synthetic_shapes(tmp_path / "shapes.h5", count=32, resolution=8)
    # The log, the samples and the config fit under 100 kB; the smoke checkpoint (about 300 kB) does not.
    done = run_limited(["-m", "pgsound.cli", "train", "--preset", "smoke", "--data", "shapes.h5", "--out", "runs",
                        "--no-progress", "--kimg", "0.05"], 100_000, tmp_path)
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    run = Path("runs") / run_dir.name
    assert done.stderr.startswith(f"pgsound train: error: {run / 'checkpoints'}/ckpt-"), done.stderr
    assert (f"File too large; nothing of this tick was saved, no checkpoint was written yet (resume with: "
            f"pgsound train --resume {run})") in done.stderr
    assert list((run_dir / "checkpoints").iterdir()) == []


@pytest.fixture(scope="module")
def two_checkpoints(tmp_path_factory):
    """A run folder with checkpoints after one and after two steps, and its data."""
    from pgsound.config import resolve_config
    from pgsound.datasets import open_dataset
    from pgsound.datasets.prepare import prepare_synthetic_shapes
    from pgsound.trainer import train

    folder = tmp_path_factory.mktemp("damaged")
    data = prepare_synthetic_shapes(folder / "shapes.h5", count=16, resolution=8)
    config = resolve_config("smoke", ["schedule.minibatch_default=4", "schedule.fixed_level=1",
                                      "schedule.tick_kimg_default=0.004", "samples_every_ticks=1000"])
    train(config, data, folder / "run", max_steps=2, progress=False)
    data.close()
    return folder / "run", open_dataset(folder / "shapes.h5")


def damaged_copy(run: Path, tmp_path: Path, damage: str) -> tuple[Path, Path, Path]:
    """A copy of the run whose newest checkpoint is cut in half or has one byte changed: (run, newest, older)."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    older, newest = sorted((copy / "checkpoints").iterdir())
    data = bytearray(newest.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:  # a byte of a tensor's storage, far from the zip's own records
        data[len(data) // 2] ^= 0xFF
    newest.write_bytes(bytes(data))
    return copy, newest, older


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_a_damaged_newest_checkpoint_points_to_the_older_good_one(two_checkpoints, tmp_path, damage):
    from pgsound.checkpoint import CheckpointError, load_checkpoint

    run, newest, older = damaged_copy(two_checkpoints[0], tmp_path, damage)
    with pytest.raises(CheckpointError) as raised:
        load_checkpoint(newest)
    message = str(raised.value)
    assert "\n" not in message and message.startswith(str(newest))
    assert message.endswith(f"the newest good checkpoint before it is {older} "
                            f"(resume from it: pgsound train --resume {older})")


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_a_run_whose_newest_checkpoint_is_damaged_resumes_from_the_last_good_one(two_checkpoints, tmp_path,
                                                                                  damage, capsys):
    from pgsound.runs import checkpoint_path
    from pgsound.trainer import resume_state

    run, newest, older = damaged_copy(two_checkpoints[0], tmp_path, damage)
    assert checkpoint_path(run) == older
    warning = capsys.readouterr().err
    assert warning.startswith(f"warning: {newest} is damaged: ") and warning.count("\n") == 1
    assert warning.endswith(f"; using the last good checkpoint {older}\n")
    assert resume_state(run, two_checkpoints[1]).images_shown == 4  # one step of 4 images
    assert main(["train", "--resume", str(run), "--no-progress", "--kimg", "0.012"]) == 0
    assert f"warning: {newest} is damaged" in capsys.readouterr().err


def test_a_run_whose_checkpoints_are_all_damaged_says_so(two_checkpoints, tmp_path):
    from pgsound.checkpoint import CheckpointError
    from pgsound.runs import checkpoint_path

    run, newest, older = damaged_copy(two_checkpoints[0], tmp_path, "truncated")
    older.write_bytes(older.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"every checkpoint in .* is damaged \(the newest, ckpt-.*: truncated"):
        checkpoint_path(run)
