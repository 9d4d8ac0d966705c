"""What a resume or a load refuses: other data, foreign files, missing keys, a state with an Inf weight."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pgsound.run_folder as run_folder
import pgsound.trainer as trainer_module
from pgsound.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from pgsound.config import resolve_config
from pgsound.datasets import ArrayDataset
from pgsound.errors import UserError
from pgsound.run_folder import latest_checkpoint
from pgsound.runs import dataset_fingerprint
from pgsound.trainer import TrainingDiverged, resume_state, train, train_step

pytestmark = pytest.mark.slow


def config():
    return resolve_config("smoke", ["schedule.minibatch_default=4", "schedule.fixed_level=1",
                                    "schedule.tick_kimg_default=0.008", "samples_every_ticks=1000"])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    data = ArrayDataset.random(16, 1, (8, 8), seed=0)
    train(config(), data, folder, max_steps=2, progress=False)
    return folder, data


def test_resuming_on_other_data_of_the_same_shape_is_refused(run):
    folder, _ = run
    with pytest.raises(UserError, match="trained on other data of this shape"):
        resume_state(folder, ArrayDataset.random(16, 1, (8, 8), seed=1))
    with pytest.raises(UserError, match="trained on other data"):  # a smaller re-prepared set
        resume_state(folder, ArrayDataset.random(12, 1, (8, 8), seed=0))


def test_the_same_recipe_prepared_on_another_machine_resumes(run):
    folder, data = run
    # Another CPU's floating point rounds some values to the neighbouring float16: the bytes and the hash differ.
    pictures = data.images(8, 8).astype(np.float16)
    flat = pictures.reshape(-1)
    flat[::3] = np.nextafter(flat[::3], np.float16(2.0))
    reprepared = ArrayDataset(pictures.astype(np.float32), metadata=data.metadata)
    assert dataset_fingerprint(reprepared) != dataset_fingerprint(data)
    assert resume_state(folder, reprepared).images_shown > 0
    # A value moved by more than a float16 step is other data, even with the same metadata.
    moved = data.images(8, 8).copy()
    moved[0, 0, :2, :2] += 0.05
    with pytest.raises(UserError, match="trained on other data of this shape"):
        resume_state(folder, ArrayDataset(moved, metadata=data.metadata))


def test_a_stray_file_among_the_checkpoints_is_ignored(run):
    folder, _ = run
    newest = latest_checkpoint(folder)
    (folder / "checkpoints" / "best.pt").write_bytes(b"someone's copy")
    assert latest_checkpoint(folder) == newest


def test_a_checkpoint_without_its_keys_names_them(run, tmp_path):
    folder, data = run
    state = load_checkpoint(latest_checkpoint(folder))
    del state["opt_d"], state["rng"]
    state.pop("format"), state.pop("version")
    path = save_checkpoint(state, tmp_path / "checkpoints" / "ckpt-0000000.008kimg.pt")
    with pytest.raises(CheckpointError, match=r"lacks opt_d, rng: it cannot be resumed"):
        resume_state(path, data)


def test_an_inf_weight_after_the_last_step_of_a_tick_is_not_saved(run, monkeypatch, tmp_path):
    folder, data = run
    good = latest_checkpoint(folder)

    def step_then_break(state):
        out = train_step(state)
        with torch.no_grad():
            next(state.G.parameters()).view(-1)[0] = float("inf")  # after the losses were computed
        return out

    monkeypatch.setattr(trainer_module, "train_step", step_then_break)
    state = resume_state(folder, data)
    with pytest.raises(TrainingDiverged, match="a weight is not finite"):  # one step: its losses were finite
        train(state.config, data, folder, state=state, max_steps=1, progress=False)
    assert latest_checkpoint(folder) == good


def test_a_png_with_broken_settings_is_a_clear_error(tmp_path):
    from PIL import Image, PngImagePlugin

    from pgsound.spectrogram_files import PNG_KEY, load_spectrogram

    for text, expected in (("{}", "hold no spectrogram geometry"), ("{not json", "are not JSON"),
                           ("[1, 2]", "not a JSON object")):
        info = PngImagePlugin.PngInfo()
        info.add_text(PNG_KEY, text)
        path = tmp_path / "x.png"
        Image.fromarray(torch.zeros(4, 4, dtype=torch.uint8).numpy()).save(path, pnginfo=info)
        with pytest.raises(UserError, match=expected):
            load_spectrogram(path)


def test_other_data_is_taken_on_purpose_with_allow_other_data(run):
    folder, _ = run
    other = ArrayDataset.random(16, 1, (8, 8), seed=1)
    state = resume_state(folder, other, allow_other_data=True)
    assert state.images_shown > 0
    with pytest.raises(UserError, match="data with resolution"):  # the shape must still fit
        resume_state(folder, ArrayDataset.random(16, 1, (16, 16), seed=1), allow_other_data=True)


def test_a_full_disk_at_a_checkpoint_names_the_last_good_one(tmp_path, monkeypatch, capsys):
    import errno

    from pgsound.cli import main
    from pgsound.datasets import prepare_synthetic_shapes

    data = tmp_path / "shapes.h5"
    prepare_synthetic_shapes(data, count=32, resolution=8)
    writes = []

    def save_checkpoint_until_full(state, path):
        if writes:
            raise OSError(errno.ENOSPC, "No space left on device", str(path.with_name(f".{path.name}.tmp")))
        writes.append(path)
        return save_checkpoint(state, path)

    monkeypatch.setattr(run_folder, "save_checkpoint", save_checkpoint_until_full)
    runs = tmp_path / "runs"
    assert main(["train", "--preset", "smoke", "--data", str(data), "--out", str(runs), "--no-progress",
                 "--set", "schedule.tick_kimg_default=0.016"]) == 1
    error = capsys.readouterr().err
    (run_dir,) = runs.iterdir()
    assert "No space left on device; nothing of this tick was saved" in error
    assert f"the last good checkpoint is {writes[0]}" in error and f"pgsound train --resume {run_dir}" in error
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == [writes[0].name]


def test_a_resume_finds_its_data_by_the_path_as_given_when_the_project_moved(tmp_path, monkeypatch):
    import shutil

    from pgsound.cli import main
    from pgsound.datasets import prepare_synthetic_shapes

    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    prepare_synthetic_shapes("shapes.h5", count=32, resolution=8)
    assert main(["train", "--preset", "smoke", "--data", "shapes.h5", "--out", "runs", "--no-progress",
                 "--kimg", "0.05"]) == 0
    moved = tmp_path / "moved"
    shutil.move(project, moved)
    monkeypatch.chdir(moved)  # the absolute path recorded is gone; "shapes.h5" from here is the data
    (run_dir,) = (moved / "runs").iterdir()
    assert main(["train", "--resume", str(run_dir), "--no-progress", "--kimg", "0.1"]) == 0
