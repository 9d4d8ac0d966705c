"""A run folder survives crashes: one log line per tick after a resume, no stale temporaries, one trainer."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from pgsound.config import resolve_config
from pgsound.datasets import ArrayDataset
from pgsound.device import cpu_model
from pgsound.errors import UserError
from pgsound.files import temporary_path
from pgsound.run_folder import hold_run_dir, read_stretches
from pgsound.runlog import read_log
from pgsound.trainer import resume_state, train

pytestmark = pytest.mark.slow


def config():
    return resolve_config("smoke", ["schedule.minibatch_default=4", "schedule.fixed_level=1",
                                    "schedule.tick_kimg_default=0.008", "samples_every_ticks=1000"])


def test_a_resume_after_a_crash_between_log_and_checkpoint_logs_each_tick_once(tmp_path):
    dataset = ArrayDataset.random(16, 1, (8, 8))
    straight = [r["kimg"] for r in (train(config(), dataset, tmp_path / "a", max_steps=6, progress=False),
                                    read_log(tmp_path / "a"))[1]]
    run = tmp_path / "b"
    train(config(), dataset, run, max_steps=4, progress=False)  # two ticks, each with a checkpoint
    # The crash: the next tick's line reached the log, its checkpoint never did.
    lines = (run / "log.jsonl").read_text().splitlines()
    extra = dict(json.loads(lines[-1]), kimg=0.024, tick=3)
    (run / "log.jsonl").write_text("\n".join(lines + [json.dumps(extra)]) + "\n")
    state = resume_state(run, dataset)
    train(state.config, dataset, run, state=state, max_steps=2, progress=False)
    assert [r["kimg"] for r in read_log(run)] == straight == [0.008, 0.016, 0.024]
    assert len((run / "log.txt").read_text().splitlines()) == 3


def test_each_stretch_of_a_run_records_its_start_and_machine(tmp_path):
    dataset = ArrayDataset.random(16, 1, (8, 8))
    run = tmp_path / "run"
    train(config(), dataset, run, max_steps=4, progress=False)  # 4 steps of 4 images: 0.016 kimg
    state = resume_state(run, dataset)
    train(state.config, dataset, run, state=state, max_steps=2, progress=False)
    first, second = read_stretches(run)
    assert (first["kimg"], second["kimg"]) == (0.0, 0.016)
    assert first["started"] < second["started"]
    assert cpu_model() in second["machine"] and f"{os.cpu_count()} cores" in second["machine"]


def test_stale_temporary_files_are_removed_when_a_run_starts(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    stale = temporary_path(run / "checkpoints" / "ckpt-0000000.016kimg.pt")
    stale.write_bytes(b"half a checkpoint")
    users = [run / ".gitignore", run / "checkpoints" / ".DS_Store", run / ".notes.v2.txt"]
    for path in users:  # hidden files of the user's own are not atomic_write's
        path.write_text("mine")
    train(config(), ArrayDataset.random(16, 1, (8, 8)), run, max_steps=1, progress=False)
    assert not stale.exists() and list((run / "checkpoints").glob("ckpt-*.pt"))
    assert all(path.read_text() == "mine" for path in users)


def test_a_checkpoint_outside_a_run_folder_is_not_resumed_into_its_parents(tmp_path, capsys, monkeypatch):
    """`--resume ./x.pt` would make the folder above a run folder: refused, and nothing there touched."""
    from pgsound.cli import main
    from pgsound.run_folder import run_of

    run = tmp_path / "work" / "run"
    dataset = ArrayDataset.random(16, 1, (8, 8))
    train(config(), dataset, run, max_steps=1, progress=False)
    loose = tmp_path / "work" / "copy.pt"
    loose.write_bytes(next((run / "checkpoints").glob("ckpt-*.pt")).read_bytes())
    mine = tmp_path / ".gitignore"
    mine.write_text("mine")
    before = sorted(tmp_path.rglob("*"))
    assert main(["train", "--resume", str(loose), "--data", str(tmp_path / "unused.h5")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a checkpoint in a run's checkpoints/ folder" in err, err
    assert sorted(tmp_path.rglob("*")) == before and mine.read_text() == "mine"
    assert run_of(loose) == loose.parent and run_of(run / "checkpoints" / "x.pt") == run


def test_a_second_trainer_of_one_run_is_refused_with_the_holders_pid(tmp_path):
    run = tmp_path / "run"
    with hold_run_dir(run):
        # flock locks are per open file: a second open in this process conflicts as another process would.
        with pytest.raises(UserError, match=f"being trained by process {os.getpid()}"):
            train(config(), ArrayDataset.random(16, 1, (8, 8)), run, max_steps=1, progress=False)
    train(config(), ArrayDataset.random(16, 1, (8, 8)), run, max_steps=1, progress=False)  # free again


def test_a_resume_purges_tensorboard_steps_after_its_checkpoint(tmp_path):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    dataset = ArrayDataset.random(16, 1, (8, 8))
    run = tmp_path / "run"
    train(config(), dataset, run, max_steps=6, progress=False)  # three ticks: 8, 16, 24 images
    # The crash: the third tick's events and log line were written, its checkpoint never renamed into place.
    newest = sorted((run / "checkpoints").glob("ckpt-*.pt"))[-1]
    newest.unlink()
    state = resume_state(run, dataset)
    assert state.images_shown == 16
    train(state.config, dataset, run, state=state, max_steps=2, progress=False)
    events = event_accumulator.EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    scalars = events.Scalars("loss_d")
    assert [s.step for s in scalars] == [8, 16, 24]
    assert scalars[-1].value == pytest.approx(read_log(run)[-1]["loss_d"])


def test_only_the_run_folder_module_knows_the_checkpoint_folder_and_names():
    """``checkpoints/`` and the ``ckpt-`` names are ``pgsound.run_folder``'s; every other module asks it."""
    package = Path(__file__).resolve().parents[1] / "pgsound"
    pattern = re.compile(r"""["'/]checkpoints["'/]|ckpt-""")
    found = [f"{path.relative_to(package)}:{number}: {line.strip()}"
             for path in sorted(package.rglob("*.py")) if path.name != "run_folder.py"
             for number, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert not found, "\n".join(found)


def test_a_new_run_takes_the_next_number_past_folders_of_other_names(tmp_path):
    from pgsound.run_folder import new_run_dir

    for name in ("00003-old", "00012_copy", "00007 (copy)", "notes", "123456-long"):
        (tmp_path / name).mkdir()
    first = new_run_dir(tmp_path, "piano")
    assert first.name == "123457-piano"
    for folder in (first, tmp_path / "123456-long"):
        folder.rmdir()
    assert new_run_dir(tmp_path, "piano").name == "00004-piano"
