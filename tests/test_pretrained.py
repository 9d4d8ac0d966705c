"""Shipped runs: export, list, load, the manifests' commands, and metrics that match the manifests."""

from __future__ import annotations

import math

import pytest
import torch

from pgsound import pretrained
from pgsound.cli import main
from pgsound.commands.prepare import regenerate_pretrained_data
from pgsound.errors import UserError

pytestmark = pytest.mark.slow

SMOKE_TRAIN = ["--set", "schedule.lod_training_kimg=0.008", "--set", "schedule.lod_transition_kimg=0.008",
               "--set", "schedule.total_kimg=0.1", "--set", "schedule.tick_kimg_default=0.05",
               "--set", "sample_audio_iters=4"]


def smoke_size(command: list[str]) -> list[str]:
    """A manifest command made small: fewer pictures to prepare, a schedule of a few steps per level."""
    small = list(command)
    for flag, value in (("--count", "64"), ("--minutes", "0.2")):
        if flag in small:
            small[small.index(flag) + 1] = value
    return small + SMOKE_TRAIN if small[0] == "train" else small


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A smoke run on 16x16 shapes, exported as a shipped run into a temporary folder."""
    root = tmp_path_factory.mktemp("pretrained")
    record = {"description": "a test run", "commands": [
        ["prepare", "synthetic-shapes", "--resolution", "16", "--count", "200", "-o", "DATA"],
        ["train", "--preset", "smoke", "--data", "DATA", "--out", str(root / "runs")]]}
    data = root / "shapes16.h5"
    for command in pretrained.commands(record, data):
        assert main(command) == 0
    (run,) = (root / "runs").iterdir()
    pretrained.export(run, "tiny", record, data=data, n=64, folder=root / "shipped",
                      targets={"swd_over_floor": 1000.0, "ms_ssim_from_real": 0.0})
    return root / "shipped", data


def test_export_writes_a_float16_checkpoint_and_its_manifest(tiny_run):
    folder, _ = tiny_run
    assert pretrained.names(folder) == ["tiny"]
    state = torch.load(folder / "tiny.pt", weights_only=True)
    assert {"Gs", "config", "data", "images_shown"} <= set(state) and "D" not in state and "opt_g" not in state
    assert all(v.dtype == torch.float16 for v in state["Gs"].values() if v.is_floating_point())
    record = pretrained.manifest("tiny", folder)
    assert record["kimg"] == pytest.approx(state["images_shown"] / 1000)
    assert record["command_lines"][0].startswith("pgsound prepare synthetic-shapes")
    assert record["evaluation"]["n"] == 64 and math.isfinite(record["evaluation"]["metrics"]["swd_avg"])
    G, run = pretrained.load("tiny", device="cpu", folder=folder)
    assert next(G.parameters()).dtype == torch.float32 and run.images_shown == state["images_shown"]


def test_the_manifest_records_each_target_with_what_the_shipped_run_reached(tiny_run):
    folder, _ = tiny_run
    record = pretrained.manifest("tiny", folder)
    metrics = record["evaluation"]["metrics"]
    swd = record["targets"]["swd_over_floor"]
    assert swd["reached"] == pytest.approx(metrics["swd_avg"] / metrics["swd_avg_real"])
    assert swd["limit"] == 1000 and swd["met"] is True
    ms_ssim = record["targets"]["ms_ssim_from_real"]
    assert ms_ssim["reached"] == pytest.approx(abs(metrics["ms_ssim_fake"] - metrics["ms_ssim_real"]))
    assert ms_ssim["met"] is (ms_ssim["reached"] <= 0)  # a limit of 0 is met only by a perfect match


def test_targets_by_hand_and_an_unknown_one_refused_before_any_work(tiny_run, tmp_path):
    metrics = {"swd_avg": 30.0, "swd_avg_real": 20.0, "ms_ssim_fake": 0.25, "ms_ssim_real": 0.4,
               "sc_fake_db": -30.0, "sc_real_db": -42.0}
    assessed = pretrained.assess_targets(metrics, {"swd_over_floor": 1.5, "ms_ssim_from_real": 0.1,
                                                   "consistency_above_real_db": 15})
    assert {k: (round(v["reached"], 9), v["met"]) for k, v in assessed.items()} == {
        "swd_over_floor": (1.5, True), "ms_ssim_from_real": (0.15, False), "consistency_above_real_db": (12.0, True)}
    folder, data = tiny_run
    run = next((folder.parent / "runs").iterdir())
    with pytest.raises(UserError, match="unknown target.*swd_ratio: expected swd_over_floor"):
        pretrained.export(run, "bad", {"commands": []}, data=data, folder=tmp_path, targets={"swd_ratio": 2})
    assert not list(tmp_path.iterdir())
    # A wrong data path or a record without its commands: refused before the shipped files are touched.
    shipped = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(UserError, match="no dataset at .*typo.h5"):
        pretrained.export(run, "tiny", {"commands": []}, data=tmp_path / "typo.h5", folder=folder)
    with pytest.raises(UserError, match="the record needs 'commands'"):
        pretrained.export(run, "tiny", {"description": "x"}, data=data, folder=folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == shipped


def test_an_unknown_name_lists_the_shipped_ones(tiny_run):
    folder, _ = tiny_run
    with pytest.raises(UserError, match=r"no shipped run 'tinny'; the package ships: tiny"):
        pretrained.path("tinny", folder)


def test_generate_takes_a_run_or_pretrained_but_not_both(tmp_path, capsys):
    assert main(["generate"]) == 2
    assert "one of the two" in capsys.readouterr().err
    assert main(["generate", "--pretrained", "no-such-run"]) == 2
    assert "no shipped run 'no-such-run'" in capsys.readouterr().err


@pytest.mark.parametrize("name", pretrained.names())
def test_a_shipped_run_measures_what_its_manifest_says(name, tmp_path):
    """The data regenerated from the manifest's recipe and the shipped weights give the manifest's figures."""
    from pgsound.evaluate import evaluate_run

    record = pretrained.manifest(name)
    data = regenerate_pretrained_data(name, tmp_path / "data.h5")
    measured = evaluate_run(pretrained.path(name), data=data, n=record["evaluation"]["n"],
                            seed=record["evaluation"]["seed"], device="cpu",
                            metrics=pretrained.metric_names(data, record["evaluation"]["n"]))["metrics"]
    expected_metrics = record["evaluation"]["metrics"]
    for key, expected in expected_metrics.items():
        # NDB counts bins: another CPU's rounding can move one bin across the significance line.
        one_bin = 1 / expected_metrics["ndb_bins"] + 1e-9 if key.startswith("ndb_k") else 0.05
        if key.startswith("kid_notes"):  # an unbiased estimate near 0 for the floor: judged on the fakes' scale
            one_bin = 0.01 * abs(expected_metrics["kid_notes"])
        assert measured[key] == pytest.approx(expected, rel=0.05, abs=one_bin), key
    for target, assessed in record.get("targets", {}).items():  # what the run reached, as its manifest says
        again = pretrained.assess_targets(measured, {target: assessed["limit"]})[target]
        assert again["reached"] == pytest.approx(assessed["reached"], rel=0.05), target
        assert again["met"] == assessed["met"], target


@pytest.mark.parametrize("name", pretrained.names())
def test_a_shipped_run_recipe_runs_at_smoke_size(name, tmp_path):
    for command in pretrained.commands(pretrained.manifest(name), tmp_path / "data.h5"):
        small = smoke_size(command)
        if small[0] == "train":
            small += ["--out", str(tmp_path / "runs")]
        assert main(small) == 0, small
    assert list((tmp_path / "runs").glob("*/checkpoints/*.pt"))


def test_raw_generator_of_a_shipped_run_is_one_line(tmp_path, capsys):
    assert main(["generate", "--pretrained", "shapes-cpu", "--raw", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lacks G: its raw generator cannot be sampled" in err, err
    assert not (tmp_path / "out").exists()
