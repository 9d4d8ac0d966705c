"""Files and processes a careless user, a full disk or a crash leave behind (issue 46).

Killed parents whose workers live on, recordings too long for one STFT, symbolic links, truncated and damaged
files, a full disk under a checkpoint or a picture, damaged pixels in a prepared dataset, a recording's tail.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_full_disk import run_limited  # a disk that fills, the same way for both files

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


def files_done(progress_bar: str) -> int:
    """The last count a tqdm bar over files printed ("| 3/12 [" gives 3), 0 before its first."""
    counts = re.findall(r"\| *(\d+)/\d+ \[", progress_bar)
    return int(counts[-1]) if counts else 0


def test_files_done_reads_the_last_count_a_bar_printed():
    bar = "prepare:   0%|          | 0/12 [00:00<?, ?file/s]\rprepare:  25%|##5       | 3/12 [00:01<00:03]"
    assert files_done(bar) == 3 and files_done("") == 0


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
        # Two files done: both workers are past their start-up and busy. The bar redraws at most every 0.1 s,
        # so it may skip a count: wait for any count of two or more.
        while files_done(log.read_text()) < 2 and time.monotonic() < deadline and parent.poll() is None:
            time.sleep(0.05)
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
    from pgsound.datasets import prepare_synthetic_shapes

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
    from pgsound.datasets import open_dataset, prepare_synthetic_shapes
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
    from pgsound.checkpoint import CheckpointError
    from pgsound.run_folder import read_checkpoint

    run, newest, older = damaged_copy(two_checkpoints[0], tmp_path, damage)
    with pytest.raises(CheckpointError) as raised:
        read_checkpoint(newest)
    message = str(raised.value)
    assert "\n" not in message and message.startswith(str(newest))
    assert message.endswith(f"the newest good checkpoint before it is {older} "
                            f"(resume from it: pgsound train --resume {older})")


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_a_run_whose_newest_checkpoint_is_damaged_resumes_from_the_last_good_one(two_checkpoints, tmp_path,
                                                                                  damage, capsys):
    from pgsound.run_folder import checkpoint_path
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
    from pgsound.run_folder import checkpoint_path

    run, newest, older = damaged_copy(two_checkpoints[0], tmp_path, "truncated")
    older.write_bytes(older.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"every checkpoint in .* is damaged \(the newest, ckpt-.*: truncated"):
        checkpoint_path(run)


# ---- recordings: links, truncation, folders ------------------------------------------------------------------------
SMALL = ["--size", "32x32"]


def small_config():
    from pgsound.spectrogram import SpectrogramConfig

    return SpectrogramConfig(n_fft=64, hop_length=32, n_bins=32, n_frames=32)


def test_prepare_audio_follows_a_link_to_a_recording_outside_its_folder(tmp_path):
    from pgsound.datasets import prepare_audio

    folder, elsewhere = tmp_path / "takes", tmp_path / "elsewhere"
    (folder / "sub").mkdir(parents=True)
    elsewhere.mkdir()
    noise_wav(folder / "a.wav", 1.0)
    noise_wav(elsewhere / "b.wav", 1.0, seed=1)
    (folder / "sub" / "b.wav").symlink_to(elsewhere / "b.wav")
    (folder / "gone.wav").symlink_to(elsewhere / "gone.wav")  # a broken link: skipped and named
    dataset, report = prepare_audio(tmp_path / "out.h5", folder, small_config(), workers=1)
    assert [r["file"] for r in dataset.recordings] == ["a.wav", "sub/b.wav"]  # named inside the folder
    assert report.files_used == 2
    ((name, reason),) = report.skipped
    assert name.endswith("gone.wav") and reason.endswith(f"a broken symbolic link (to {elsewhere / 'gone.wav'}, "
                                                         f"which does not exist)")


def cut_wav(tmp_path: Path, keep: int) -> Path:
    whole = noise_wav(tmp_path / "whole.wav", 3.0).read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole[:keep])
    return cut


@pytest.mark.parametrize(("keep", "expected"), [
    (24044, r"cut\.wav: truncated: its header promises 96000 bytes of audio, the file ends 72000 bytes short "
            r"\(2\.25 s of audio\); copy or download it again"),
    (30, r"cut\.wav: truncated: its header promises 96044 bytes, the file has 30 and ends before its audio"),
])
def test_a_truncated_wav_names_the_file_and_the_truncation(tmp_path, keep, expected):
    from pgsound.audio_io import AudioError, load_audio

    with pytest.raises(AudioError, match=expected):
        load_audio(cut_wav(tmp_path, keep))


def test_a_wav_whose_writer_left_the_size_unknown_still_loads(tmp_path):
    from pgsound.audio_io import load_audio

    streamed = bytearray(noise_wav(tmp_path / "streamed.wav", 1.0).read_bytes())
    streamed[4:8] = (0xFFFFFFFF).to_bytes(4, "little")  # as a writer into a pipe leaves it
    streamed[40:44] = (0xFFFFFFFF).to_bytes(4, "little")
    (tmp_path / "streamed.wav").write_bytes(bytes(streamed))
    assert load_audio(tmp_path / "streamed.wav").size == 16000


def test_spectrogram_of_a_truncated_wav_or_a_folder_is_one_line(tmp_path, capsys):
    cut = cut_wav(tmp_path, 24044)
    assert main(["spectrogram", str(cut), "-o", str(tmp_path / "cut.png"), *SMALL]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"pgsound spectrogram: error: {cut}: truncated: ") and error.count("\n") == 1
    (tmp_path / "take.wav").mkdir()
    assert main(["spectrogram", str(tmp_path / "take.wav"), "-o", str(tmp_path / "take.png"), *SMALL]) == 2
    assert capsys.readouterr().err == (f"pgsound spectrogram: error: {tmp_path / 'take.wav'} is a folder, not an "
                                       f"audio file (prepare audio reads a folder of recordings)\n")
    assert not (tmp_path / "cut.png").exists() and not (tmp_path / "take.png").exists()


# ---- pictures: a full disk, a read-only folder ---------------------------------------------------------------------
def test_a_full_disk_during_spectrogram_npy_leaves_no_json_without_its_npy(tmp_path):
    noise_wav(tmp_path / "take.wav", 3.0)
    # The JSON (about 600 bytes) fits, the float32 array (48 pictures of 32x32 = 196 kB) does not.
    done = run_limited(["-m", "pgsound.cli", "spectrogram", "take.wav", "-o", "take.npy", *SMALL], 10_000, tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stderr == "pgsound spectrogram: error: take.npy: File too large\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.wav"]


def test_save_npy_writes_the_data_before_its_settings(tmp_path):
    from pgsound.spectrogram_files import SpectrogramFile, load_spectrogram, save_npy

    config = small_config()
    frames = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32)).astype(np.float32)
    save_npy(tmp_path / "x.npy", SpectrogramFile(frames, config, samples=1984))
    back = load_spectrogram(tmp_path / "x.npy")
    assert np.array_equal(back.frames, frames) and back.samples == 1984
    assert np.array_equal(np.load(tmp_path / "x.npy"), frames)  # a plain .npy file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json", "x.npy"]


def test_a_read_only_output_folder_names_the_output_not_the_temporary_file(tmp_path, monkeypatch, capsys):
    import pgsound.files

    real_open = os.open

    def read_only(path, flags, *mode):  # the kernel's answer in a read-only folder (root is never refused)
        if flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *mode)

    noise_wav(tmp_path / "take.wav", 1.0)
    monkeypatch.setattr(pgsound.files.os, "open", read_only)
    assert main(["spectrogram", str(tmp_path / "take.wav"), "-o", str(tmp_path / "take.png"), *SMALL]) == 1
    assert capsys.readouterr().err == f"pgsound spectrogram: error: {tmp_path / 'take.png'}: Permission denied\n"


# ---- prepared datasets: checksums ------------------------------------------------------------------------------------
def damage_first_chunks(path: Path, out: Path, levels: tuple[str, ...]) -> Path:
    """A copy of ``path`` with 4 kB of pixels changed in the first chunk of each of ``levels``."""
    import h5py

    with h5py.File(path, "r") as f:
        offsets = [(f[name].id.get_chunk_info(0).byte_offset, f[name].id.get_chunk_info(0).size) for name in levels]
    data = bytearray(path.read_bytes())
    for offset, size in offsets:
        start = offset + size // 4
        data[start : start + min(4096, size // 2)] = bytes(b ^ 0x5A for b in data[start : start + min(4096, size // 2)])
    out.write_bytes(bytes(data))
    return out


def test_prepared_datasets_carry_fletcher32_checksums(tmp_path):
    import h5py

    from pgsound.datasets import prepare_audio, prepare_synthetic_shapes

    shapes = prepare_synthetic_shapes(tmp_path / "shapes.h5", count=8, resolution=8)
    (tmp_path / "takes").mkdir()
    noise_wav(tmp_path / "takes" / "a.wav", 1.0)
    audio, _ = prepare_audio(tmp_path / "audio.h5", tmp_path / "takes", small_config(), workers=1)
    for dataset in (shapes, audio):
        assert dataset.checksums and "Fletcher-32 checksums" in repr(dataset)
        with h5py.File(dataset.path, "r") as f:
            stored = [name for name, item in f.items() if isinstance(item, h5py.Dataset) and item.chunks]
            assert stored and all(f[name].fletcher32 for name in stored)
    # Why no lossy filter is used beside them: HDF5 refuses Fletcher-32 with scale-offset.
    with h5py.File(tmp_path / "other.h5", "w") as f, pytest.raises(ValueError, match="(?i)fletcher32"):
        f.create_dataset("x", shape=(4, 4), dtype=np.float32, chunks=(2, 2), fletcher32=True, scaleoffset=2)


def test_damaged_pixels_are_one_line_naming_the_file_and_the_level(tmp_path, capsys):
    from pgsound.datasets import DatasetError, open_dataset, prepare_synthetic_shapes

    prepare_synthetic_shapes(tmp_path / "shapes.h5", count=64, resolution=8)
    bad = damage_first_chunks(tmp_path / "shapes.h5", tmp_path / "bad.h5", ("data8x8",))
    dataset = open_dataset(bad)  # uint8: nothing is read on opening
    with pytest.raises(DatasetError) as raised:
        dataset.verify()
    assert str(raised.value).startswith(f"{bad}: data8x8 (pictures 0..63) is damaged: a chunk fails its "
                                        f"Fletcher-32 checksum")
    with pytest.raises(DatasetError, match=r"bad\.h5: data8x8 \(picture 3\) is damaged") as raised:
        dataset.images(8, 8)[3]
    assert "\n" not in str(raised.value)
    assert open_dataset(tmp_path / "shapes.h5").verify() > 0
    # Training on it stops with one line, before a run folder holds anything to resume.
    assert main(["train", "--preset", "smoke", "--data", str(bad), "--out", str(tmp_path / "runs"),
                 "--no-progress", "--kimg", "0.02"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"pgsound train: error: {bad}: data8x8 ") and error.count("\n") == 1, error


def test_a_dataset_written_before_checksums_still_loads(tmp_path):
    import h5py

    from pgsound.datasets import open_dataset

    with h5py.File(tmp_path / "old.h5", "w") as f:
        for size in (1, 2, 4):
            f.create_dataset(f"data{size}x{size}", data=np.full((3, 1, size, size), 128, np.uint8), chunks=True)
    dataset = open_dataset(tmp_path / "old.h5")
    assert not dataset.checksums and "no checksums" in repr(dataset)
    assert dataset.verify() == 3 * (1 + 4 + 16)
    assert np.asarray(dataset.images(4, 4)).shape == (3, 1, 4, 4) and len(dataset.images(4, 4)) == 3


# ---- long recordings in bounded memory ------------------------------------------------------------------------------
@pytest.mark.parametrize("representation", ["magnitude", "mag-if"])
def test_long_recordings_are_analysed_window_by_window_into_the_same_pictures(tmp_path, monkeypatch,
                                                                              representation):
    import pgsound.datasets.prepare as prepare
    from pgsound.audio_io import load_audio
    from pgsound.representations import encode
    from pgsound.spectrogram import split_audio

    config = small_config()
    folder = tmp_path / "takes"
    folder.mkdir()
    noise_wav(folder / "long.wav", 10.6 * config.segment_seconds, seed=1)  # 10 windows and a padded 11th
    noise_wav(folder / "short.wav", 3.2 * config.segment_seconds, seed=2)  # 3 windows: in memory, in steps
    monkeypatch.setattr(prepare, "PICTURES_PER_STEP", 2)
    monkeypatch.setattr(prepare, "PICTURES_IN_MEMORY", 4)  # the long one goes through a scratch file
    batches = []

    def encode_counted(pieces, *args):
        batches.append(len(pieces))
        return encode(pieces, *args)

    monkeypatch.setattr(prepare, "encode", encode_counted)
    dataset, report = prepare.prepare_audio(tmp_path / "out.h5", folder, config, dtype="float32", workers=1,
                                            representation=representation)
    whole = [encode(split_audio(load_audio(folder / name), config), config, representation)
             for name in ("long.wav", "short.wav")]
    assert [len(w) for w in whole] == [11, 3] and batches == [2, 2, 2, 2, 2, 1, 2, 1]  # never all at once
    assert np.array_equal(dataset.images(32, 32)[:], np.concatenate(whole))  # bit for bit
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5", "takes"]  # no scratch file left
    starts = [dataset.provenance(i)[1] for i in range(dataset.count)]
    assert starts[:11] == pytest.approx(np.arange(11) * config.segment_seconds) and starts[11] == 0.0


def test_a_multichannel_file_is_read_block_by_block_into_the_same_mix(tmp_path, monkeypatch):
    from pgsound import audio_io

    stereo = np.random.default_rng(0).uniform(-0.5, 0.5, (40_000, 2)).astype(np.float32)
    sf.write(tmp_path / "stereo.flac", stereo, 16000, subtype="PCM_24")
    whole = sf.read(tmp_path / "stereo.flac", dtype="float32", always_2d=True)[0].mean(axis=1)
    monkeypatch.setattr(audio_io, "BLOCK_FRAMES", 4096)
    mono, rate = audio_io._read_soundfile(tmp_path / "stereo.flac")
    assert rate == 16000 and mono.dtype == np.float32 and np.array_equal(mono, whole)


# ---- a recording's tail ---------------------------------------------------------------------------------------------
def test_prepare_audio_reports_the_tail_no_picture_covers(tmp_path):
    from pgsound.datasets import prepare_audio

    folder = tmp_path / "takes"
    folder.mkdir()
    noise_wav(folder / "six.wav", 6.0)  # one 4.088 s window; the 1.912 s left is less than half a window
    left_by_a_kill = tmp_path / ".out.h5.scratch" / ".pictures-abc.npy"  # SIGKILL keeps no finally
    left_by_a_kill.parent.mkdir()
    left_by_a_kill.write_bytes(b"x" * 1000)
    dataset, report = prepare_audio(tmp_path / "out.h5", folder, workers=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5", "takes"]
    assert dataset.count == 1
    ((name, seconds),) = report.left_out
    assert name.endswith("six.wav") and seconds == pytest.approx(6.0 - 65408 / 16000)
    assert "left out: 1.9 s of audio that no picture covers, in 1 file(s)" in report.summary()
    assert dataset.metadata["seconds_left_out"] == pytest.approx(1.912)


def test_no_room_for_a_long_recordings_scratch_file_skips_it_with_the_reason(tmp_path):
    folder = tmp_path / "takes"
    folder.mkdir()
    noise_wav(folder / "long.wav", 10.6 * small_config().segment_seconds)  # 11 pictures: 45 kB of float32
    code = ("import pgsound.datasets.prepare as p\nfrom pgsound.spectrogram import SpectrogramConfig\n"
            "p.PICTURES_IN_MEMORY = 4\n"
            "try:\n    p.prepare_audio('out.h5', 'takes', SpectrogramConfig(n_fft=64, hop_length=32, n_bins=32, "
            "n_frames=32), dtype='float32', workers=1)\n"
            "except ValueError as error:\n    print(error)\n")
    done = run_limited(["-c", code], 20_000, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "no usable audio for out.h5" in done.stdout
    assert "long.wav: no room in . for its 11 pictures (0 MiB, held there until they are written): " in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["takes"]


def test_a_file_written_atomically_has_its_folder_synced_after_the_rename(tmp_path, monkeypatch):
    """The rename reaches the disk before anything older is deleted (a checkpoint rotation after a power cut)."""
    import os
    import stat

    import pgsound.files as files

    events = []
    fsync, replace = os.fsync, os.replace
    monkeypatch.setattr(files.os, "fsync", lambda fd: events.append(
        "folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file") or fsync(fd))
    monkeypatch.setattr(files.os, "replace", lambda a, b: events.append("rename") or replace(a, b))
    with files.atomic_write(tmp_path / "x.txt") as temp:
        temp.write_text("whole")
    assert (tmp_path / "x.txt").read_text() == "whole"
    if os.name == "posix":
        assert events == ["file", "rename", "folder"]


def test_a_folder_too_large_for_the_disk_is_refused_from_its_headers_before_any_analysis(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    import pgsound.datasets.prepare as prepare
    from pgsound.datasets.hdf5 import DatasetError

    folder = tmp_path / "takes"
    folder.mkdir()
    for i in range(3):
        noise_wav(folder / f"take{i}.wav", 10.6 * small_config().segment_seconds, seed=i)  # 11 pictures each
    (folder / "broken.wav").write_bytes(b"RIFF but nothing else")  # no header to read: counts 0
    assert prepare.estimated_pictures(sorted(folder.iterdir()), small_config()) == 33
    bytes_per_picture = 4 * sum(32 * 32 // 4**k for k in range(6))  # float32, every level down to 1x1
    monkeypatch.setattr(shutil, "disk_usage", lambda path: namedtuple("usage", "total used free")(
        2**40, 0, 20 * bytes_per_picture))
    monkeypatch.setattr(prepare, "_audio_file_to_frames", lambda *args: pytest.fail("a file was analysed"))
    with pytest.raises(DatasetError, match=r"no space left on .* for out.h5: .* needed for 33 more picture"):
        prepare.prepare_audio(tmp_path / "out.h5", folder, small_config(), dtype="float32", workers=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["takes"]
