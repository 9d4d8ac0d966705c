"""A full disk: one line naming the file, no half-written file left, and nothing already computed lost.

A real full disk is made with a file-size limit (``RLIMIT_FSIZE``) in a child process: past the limit a write
fails with EFBIG, as it fails with ENOSPC on a full disk, after writing what fits.
"""

from __future__ import annotations

import errno
import os
import resource
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pgsound.trainer as trainer_module
from pgsound.cli import main
from pgsound.files import append_whole, atomic_write


def run_limited(args: list[str], limit_bytes: int, cwd, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python ARGS`` with files capped at ``limit_bytes`` (the signal ignored, so writes fail)."""

    def cap() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, preexec_fn=cap, capture_output=True,
                          text=True, timeout=timeout)


def test_invert_onto_a_full_disk_is_one_line_naming_the_wav(tmp_path):
    from pgsound.spectrogram import SpectrogramConfig
    from pgsound.spectrogram_files import SpectrogramFile, save_png

    config = SpectrogramConfig(n_fft=128, hop_length=16, n_bins=64, n_frames=64)
    frames = np.random.default_rng(0).uniform(-1, 0.2, (2, 64, 64)).astype(np.float32)
    save_png(tmp_path / "g.png", SpectrogramFile(frames, config))  # the WAV: 2 x 1072 samples, over 4 kB
    done = run_limited(["-m", "pgsound.cli", "invert", "g.png", "-o", "back.wav", "--iters", "1"], 2000, tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("pgsound invert: error: back.wav: ") and done.stderr.count("\n") == 1, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.png"]  # no WAV, whole or half, and no temp file


def test_a_picture_that_does_not_fit_leaves_no_partial_png(tmp_path):
    code = textwrap.dedent("""
        import numpy as np
        from pgsound.samples import save_rgb_png
        noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)  # 12 kB that PNG cannot shrink
        try:
            save_rgb_png("grid.png", noise)
        except OSError as error:
            print(error.filename)
    """)
    done = run_limited(["-c", code], 4000, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "grid.png"
    assert list(tmp_path.iterdir()) == []


def test_an_error_with_no_file_inside_atomic_write_names_the_final_path(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("the old one")
    with pytest.raises(OSError) as raised:
        with atomic_write(path) as temp:
            temp.write_text("half")
            raise OSError(errno.ENOSPC, "No space left on device")  # as a close() that could not flush says it
    assert raised.value.filename == str(path) and raised.value.errno == errno.ENOSPC
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"] and path.read_text() == "the old one"


def test_a_log_line_that_does_not_fit_is_not_written_in_part(tmp_path):
    code = textwrap.dedent("""
        from pgsound.files import append_whole
        append_whole("log.jsonl", "x" * 900 + "\\n")
        try:
            append_whole("log.jsonl", '{"tick": 2, "kimg": 0.128, "loss_d": 0.5}' * 5 + "\\n")
        except OSError as error:
            print(error.filename, error.errno)
    """)
    done = run_limited(["-c", code], 1000, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["log.jsonl", str(errno.EFBIG)]
    assert (tmp_path / "log.jsonl").read_text() == "x" * 900 + "\n"  # cut back to the last whole line


def test_append_whole_appends(tmp_path):
    append_whole(tmp_path / "log.txt", "one\n")
    append_whole(tmp_path / "log.txt", "two\n")
    assert (tmp_path / "log.txt").read_text() == "one\ntwo\n"


def test_a_full_disk_while_writing_samples_keeps_the_tick_in_a_checkpoint(tmp_path, monkeypatch, capsys):
    from pgsound.datasets import prepare_synthetic_shapes
    from pgsound.run_folder import latest_checkpoint
    from pgsound.runlog import read_log

    data = tmp_path / "shapes.h5"
    prepare_synthetic_shapes(data, count=32, resolution=8)
    written = []

    def write_fakes_until_full(state, run):
        if written:
            raise OSError(errno.ENOSPC, "No space left on device", str(run.path / "samples" / "fakes.png"))
        written.append(state.tick)
        return write_fakes(state, run)

    write_fakes = trainer_module.write_fakes
    monkeypatch.setattr(trainer_module, "write_fakes", write_fakes_until_full)
    runs = tmp_path / "runs"
    common = ["--no-progress", "--set", "schedule.tick_kimg_default=0.016", "--set", "samples_every_ticks=1",
              "--set", "checkpoint_every_ticks=3"]
    assert main(["train", "--preset", "smoke", "--data", str(data), "--out", str(runs), *common]) == 1
    error = capsys.readouterr().err
    (run_dir,) = runs.iterdir()
    kept = latest_checkpoint(run_dir)
    assert kept.name == f"ckpt-{read_log(run_dir)[-1]['kimg']:010.3f}kimg.pt"  # the tick that could not be sampled
    assert error == (f"pgsound train: error: {run_dir / 'samples' / 'fakes.png'}: No space left on device; "
                     f"training stopped, the checkpoint {kept} holds this tick "
                     f"(resume with: pgsound train --resume {run_dir})\n")
    monkeypatch.setattr(trainer_module, "write_fakes", write_fakes)
    assert main(["train", "--resume", str(run_dir), "--no-progress", "--kimg", "0.064"]) == 0


def test_a_json_path_that_cannot_be_written_is_refused_before_the_work(tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    assert main(["preflight", "--preset", "smoke", "--json", str(tmp_path / "file" / "rows.json")]) == 2
    assert capsys.readouterr().err == (f"pgsound preflight: error: --json {tmp_path / 'file' / 'rows.json'}: "
                                       f"{tmp_path / 'file'} is a file, not a folder\n")
    assert main(["evaluate", "--pretrained", "shapes-cpu", "--json", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"pgsound evaluate: error: --json {tmp_path} is a folder; expected a file name\n"
