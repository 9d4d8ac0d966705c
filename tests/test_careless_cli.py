"""What a careless user types at the command line: every numeric option and ``--set`` value, every device.

Each mistake must end in one line on stderr naming the option and what was expected, a non-zero exit, no
traceback, and no new file or folder.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
from pathlib import Path

import pytest

from pgsound import cli
from pgsound.config import TrainConfig, all_keys

ROOT = Path(__file__).resolve().parents[1]


def numeric_options() -> list[tuple[tuple[str, ...], str, argparse.Action]]:
    """(subcommand words, option, action) for every option of every subcommand that takes a number."""
    found = []

    def walk(parser: argparse.ArgumentParser, words: tuple[str, ...]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, (*words, name))
            elif action.option_strings and action.type is not None and action.type not in (str,):
                found.append((words, action.option_strings[-1], action))

    walk(cli.build_parser(), ())
    return found


NUMERIC = numeric_options()


def test_every_numeric_option_is_checked_when_parsed():
    """No option reaches torch or NumPy as a bare int or float: each has a range its parser checks."""
    assert len(NUMERIC) >= 25, NUMERIC  # the walk finds the subcommands' options
    bare = [f"{' '.join(words)} {option}" for words, option, action in NUMERIC if not hasattr(action.type, "bounds")
            and action.dest != "device"]
    assert not bare, f"options parsed without a range: {bare}"


def bad_values(action: argparse.Action) -> list[str]:
    """Non-finite, negative, zero (where zero is out of range), huge and wrong-type values for an option."""
    low, high, low_open = action.type.bounds
    values = ["nan", "inf", "-inf", "abc", "", str(int(high) * 10 + 1) if high < 1e15 else "1e300"]
    if low > -1 or (low == -1 and low_open):
        values.append("-1")
    if low > 0 or (low == 0 and low_open):
        values.append("0")
    if isinstance(low, int) and isinstance(high, int):
        values.append("1.5")
    return values


CASES = [(words, option, value) for words, option, action in NUMERIC if hasattr(action.type, "bounds")
         for value in bad_values(action)]


@pytest.mark.parametrize(("words", "option", "value"), CASES, ids=[f"{' '.join(w)}{o}={v}" for w, o, v in CASES])
def test_a_bad_number_is_one_line_and_leaves_nothing(words, option, value, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status = cli.main([*words, f"{option}={value}"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"argument {option}" in err and f"got {value!r}" in err, err
    assert not list(tmp_path.iterdir()), "a file was left behind"


@pytest.mark.parametrize("device", ["bogus", "cuda:x", "cpu:0", "", "cuda:99"])
def test_a_device_this_machine_lacks_is_refused_when_parsed(device, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for words in (("train",), ("generate",), ("evaluate",), ("invert", "x.npy", "-o", "y.wav"), ("preflight",)):
        assert cli.main([*words, f"--device={device}"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"device {device!r}" in err, err
    assert not list(tmp_path.iterdir())


def test_a_missing_gpu_names_the_machine_and_the_way_out(monkeypatch):
    import torch

    from pgsound.device import parse_device
    from pgsound.errors import UserError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError, match="this machine has no CUDA GPU .* use --device cpu"):
        parse_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert parse_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(UserError, match="has 2 CUDA GPU"):
        parse_device("cuda:2")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(UserError, match="no Apple GPU"):
        parse_device("mps")


def _numeric_keys() -> list[str]:
    """Every config key whose value is a number (ints and floats, also inside optional types)."""
    defaults = TrainConfig().to_dict()
    keys = []
    for key in all_keys():
        value = defaults
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            keys.append(key)
    return keys


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    from pgsound.datasets import prepare_synthetic_shapes

    path = tmp_path_factory.mktemp("data") / "shapes8.h5"
    prepare_synthetic_shapes(path, count=16, resolution=8)
    return path


SET_CASES = [(key, value) for key in _numeric_keys() for value in (".nan", ".inf", "-.inf", "-1", "abc")]


@pytest.mark.parametrize(("key", "value"), SET_CASES, ids=[f"{k}={v}" for k, v in SET_CASES])
def test_a_bad_set_value_is_one_line_before_any_folder(key, value, shapes, tmp_path, capsys):
    runs = tmp_path / "runs"
    status = cli.main(["train", "--preset", "smoke", "--data", str(shapes), "--out", str(runs),
                       "--set", f"{key}={value}", "--kimg", "0.001"])
    err = capsys.readouterr().err
    if status == 0:  # a value this key takes (seed=-1 is not one of them; a negative drift is not either)
        pytest.fail(f"--set {key}={value} was accepted: {err}")
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert key.split(".")[-1] in err, err
    assert not runs.exists()


# Settings whose size is memory: a huge value must be refused by the estimate, before anything is allocated.
HUGE = ["schedule.minibatch_default=100000000", "latent_size=1000000000", "g.fmap_max=100000000",
        "d.fmap_max=100000000", "seed=100000000000", "sample_grid=[100000,100000]", "metrics_images=1000000000000"]


@pytest.mark.parametrize("assignment", HUGE)
def test_a_setting_that_cannot_fit_is_refused_before_allocating(assignment, shapes, tmp_path, capsys):
    runs = tmp_path / "runs"
    net = assignment.split(".")[0]
    widths = ["--set", f"{net}.fmap_base=100000000"] if net in ("g", "d") else []  # fmap_max caps fmap_base
    status = cli.main(["train", "--preset", "smoke", "--data", str(shapes), "--out", str(runs),
                       "--set", assignment, *widths, "--set", "metrics=[swd]", "--set", "metrics_every_ticks=1"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert assignment.split("=")[0].split(".")[-1] in err, err
    assert not runs.exists()


def test_the_memory_bound_counts_what_a_step_holds():
    """The bound's parts against a hand count: Adam's state is 5x G's and 4x D's parameters, in float32."""
    from pgsound.config import resolve_config
    from pgsound.datasets import ArrayDataset
    from pgsound.memory import step_memory
    from pgsound.runs import build_networks

    config = resolve_config("smoke")
    data = ArrayDataset.random(4, 3, (8, 8), seed=0)
    G, D = build_networks(config, data)
    g, d = (sum(p.numel() for p in net.parameters()) for net in (G, D))
    bound = step_memory(config, data)
    assert bound.state_bytes == 4 * (5 * g + 4 * d)
    # One sample's G output alone is 3x8x8 floats; the bound holds at least the minibatch's images twice.
    assert bound.activation_bytes >= 4 * bound.minibatch * 3 * 8 * 8 * 3
    doubled = step_memory(resolve_config("smoke", [f"schedule.minibatch_default={2 * bound.minibatch}",
                                                   "schedule.minibatch={}"]), data)
    assert doubled.activation_bytes == 2 * bound.activation_bytes


def test_a_profile_typo_is_refused_by_every_command_that_reads_it(tmp_path):
    for words in (["info"], ["train", "--preset", "smoke", "--data", "x.h5"], ["generate", "--pretrained", "x"]):
        done = subprocess.run([sys.executable, "-m", "pgsound.cli", *words], cwd=tmp_path, capture_output=True,
                              text=True, env={"PGSOUND_PROFILE": "bogus", "PATH": "/usr/bin:/bin"}, timeout=120)
        assert done.returncode == 2, (words, done.stderr)
        assert done.stderr.count("\n") == 1 and "PGSOUND_PROFILE" in done.stderr and "'bogus'" in done.stderr
    assert not list(tmp_path.iterdir())


def test_bounds_hold_real_limits():
    """The walk's own arithmetic: a huge value is above every bound, and the bounds are finite."""
    for _, _, action in NUMERIC:
        if hasattr(action.type, "bounds"):
            low, high, _ = action.type.bounds
            assert math.isfinite(low) and math.isfinite(high) and low < high


def test_dataset_info_reads_every_chunk_against_its_checksum(tmp_path, capsys):
    """4 KB of damaged pixels: `dataset info` names the file and level; `--quick` skips the read."""
    import h5py

    from pgsound.datasets import prepare_synthetic_shapes

    path = tmp_path / "shapes16.h5"
    prepare_synthetic_shapes(path, count=64, resolution=16)
    assert cli.main(["dataset", "info", str(path)]) == 0
    assert "every chunk matches its checksum" in capsys.readouterr().out
    with h5py.File(path, "r") as f:
        chunk = f["data16x16"].id.get_chunk_info(0)
    raw = bytearray(path.read_bytes())
    for i in range(chunk.byte_offset + 16, chunk.byte_offset + 16 + 4096):
        raw[i] ^= 0x55
    path.write_bytes(bytes(raw))
    assert cli.main(["dataset", "info", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "data16x16" in err and "Fletcher-32" in err, err
    assert cli.main(["dataset", "info", "--quick", str(path)]) == 0


@pytest.fixture()
def recording(tmp_path) -> Path:
    import numpy as np
    import soundfile as sf

    path = tmp_path / "take.wav"
    sf.write(path, (0.1 * np.sin(np.arange(8000) * 0.05)).astype("float32"), 16000)
    return path


OUTPUT_CASES = [
    # (argv with TAKE for the recording and DIR for a folder holding it, what the message says)
    (["spectrogram", "TAKE", "-o", "TAKE"], "expected a .png or .npy file for a spectrogram, not .wav"),
    (["spectrogram", "DIR/take.npy", "-o", "DIR/take.npy"], "is the input"),
    (["spectrogram", "TAKE", "-o", "DIR"], "is a folder; expected a file name"),
    (["spectrogram", "TAKE", "-o", "DIR/take"], "not a name without an extension"),
    (["invert", "DIR/x.png", "-o", "DIR/x.png"], "expected a .wav file for the recording"),
    (["prepare", "audio", "DIR", "-o", "DIR/x.wav"], "expected a .h5 or .hdf5 file"),
    (["prepare", "synthetic-shapes", "-o", "TAKE"], "expected a .h5 or .hdf5 file"),
    (["prepare", "synthetic-piano", "-o", "DIR"], "is a folder; expected a file name"),
    (["prepare", "images", "DIR", "-o", "DIR/y.png"], "expected a .h5 or .hdf5 file"),
    (["evaluate", "--pretrained", "shapes-cpu", "--json", "TAKE"], "expected a .json file for the metrics"),
    (["preflight", "--preset", "smoke", "--json", "TAKE"], "expected a .json file"),
    (["generate", "--pretrained", "shapes-cpu", "-o", "TAKE"], "is a file; expected a folder for the samples"),
    (["train", "--preset", "smoke", "--data", "x.h5", "-o", "TAKE"], "is a file; expected a folder for the runs"),
    (["train", "--preset", "smoke", "--data", "x.h5", "-o", "DIR/take.wav/runs"], "take.wav is a file, not a folder"),
    (["generate", "--pretrained", "shapes-cpu", "-o", "DIR/take.wav/out"], "take.wav is a file, not a folder"),
    (["evaluate", "--pretrained", "shapes-cpu", "--metrics", "ms-ssim"], "invalid choice: 'ms-ssim'"),
    (["dataset", "info", "DIR"], "is a folder; expected a prepared dataset file"),
]


@pytest.mark.parametrize(("argv", "expected"), OUTPUT_CASES, ids=[" ".join(a[:2]) for a, _ in OUTPUT_CASES])
def test_an_output_that_is_an_input_or_another_kind_is_refused_first(argv, expected, recording, capsys):
    folder = recording.parent
    (folder / "take.npy").write_bytes(b"not audio either")
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
    argv = [str(folder) if a == "DIR" else str(recording) if a == "TAKE" else a.replace("DIR", str(folder))
            for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == before  # nothing written, nothing replaced


def test_an_output_inside_the_input_folder_named_like_its_inputs_is_refused(tmp_path):
    from pgsound.commands.options import check_output
    from pgsound.errors import UserError

    (tmp_path / "recs").mkdir()
    (tmp_path / "recs" / "a.wav").write_bytes(b"")
    with pytest.raises(UserError, match="inside the input folder"):
        check_output(tmp_path / "recs" / "new.wav", "-o", "x", inputs=[tmp_path / "recs"], reads=(".wav",))
    with pytest.raises(UserError, match="is the input"):
        check_output(tmp_path / "recs" / "a.wav", "-o", "x", inputs=[tmp_path / "recs" / "a.wav"])
    assert check_output(tmp_path / "recs" / "data.h5", "-o", "x", inputs=[tmp_path / "recs"], reads=(".wav",))


def test_what_generate_writes_invert_reads(tmp_path, capsys):
    """A generated sample picture carries its settings: `pgsound invert` turns it back into sound."""
    out = tmp_path / "gen"
    assert cli.main(["generate", "--pretrained", "piano-cpu", "--n", "2", "--griffin-lim-iters", "1",
                     "-o", str(out)]) == 0
    for picture in sorted(out.glob("samples-*.png")):
        wav = picture.with_suffix(".again.wav")
        assert cli.main(["invert", str(picture), "-o", str(wav), "--iters", "2"]) == 0, capsys.readouterr().err
        assert wav.stat().st_size > 44


def test_generate_again_into_its_folder_leaves_no_stale_samples(tmp_path):
    out = tmp_path / "gen"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert cli.main(["generate", "--pretrained", "piano-cpu", "--n", "3", "--griffin-lim-iters", "1",
                     "-o", str(out)]) == 0
    assert cli.main(["generate", "--pretrained", "shapes-cpu", "--n", "1", "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "interpolation.png", "notes.txt", "samples-00.png", "samples.json", "samples.png"]


def test_generate_and_evaluate_refuse_pictures_that_cannot_fit(tmp_path, capsys, monkeypatch):
    import pgsound.memory

    monkeypatch.chdir(tmp_path)
    assert cli.main(["generate", "--pretrained", "piano512-cpu", "--n", "100000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lower --n" in err and "100000 pictures of 1x512x512" in err, err
    monkeypatch.setattr(pgsound.memory, "device_memory", lambda device: (1 << 20, "this machine's memory"))
    assert cli.main(["evaluate", "--pretrained", "shapes-cpu", "--n", "4096"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "evaluate:" in err and "lower --n" in err, err
    assert not [p for p in tmp_path.iterdir() if p.suffix != ".h5"]  # only the recipe's data was made


def test_evaluate_pretrained_in_an_unwritable_folder_names_what_it_would_write(tmp_path, capsys, monkeypatch):
    """A shipped run is measured here: its regenerated data and its metrics file need this folder, not -o."""
    import os

    import pgsound.files

    here = tmp_path / "read-only"
    here.mkdir()
    monkeypatch.chdir(here)
    real_access = os.access
    monkeypatch.setattr(pgsound.files.os, "access",
                        lambda path, mode: Path(path).resolve() != here.resolve() and real_access(path, mode))
    assert cli.main(["evaluate", "--pretrained", "shapes-cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"the metrics file's folder {here}" in err and "pass --json PATH" in err, err
    assert cli.main(["evaluate", "--pretrained", "shapes-cpu", "--json", str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and " -o " not in err, err
    assert f"the regenerated data {here / 'shapes-cpu-data.h5'}: the folder {here} is not writable" in err, err
    assert "pass --data PATH" in err and not list(here.iterdir())


def test_a_run_whose_log_a_crash_damaged_resumes(tmp_path, capsys):
    """A half-written line at the end of log.jsonl or stretches.jsonl: one warning line, and the run goes on."""
    from pgsound.datasets import prepare_synthetic_shapes
    from pgsound.runlog import read_log

    data = tmp_path / "shapes8.h5"
    prepare_synthetic_shapes(data, count=16, resolution=8)
    runs = tmp_path / "runs"
    base = ["--no-progress"]
    assert cli.main(["train", "--preset", "smoke", "--data", str(data), "--out", str(runs), "--kimg", "0.032",
                     "--set", "schedule.tick_kimg_default=0.016", "--set", "samples_every_ticks=100", *base]) == 0
    run = next(runs.iterdir())
    for name in ("log.jsonl", "stretches.jsonl"):
        with open(run / name, "a") as handle:
            handle.write('{"tick": 9, "kim')
    capsys.readouterr()
    with pytest.warns(UserWarning, match=r"log\.jsonl: left out damaged line\(s\) 3"):
        assert cli.main(["train", "--resume", str(run), "--kimg", "0.048", *base]) == 0
    assert "Traceback" not in capsys.readouterr().err
    import warnings  # the command line prints a warning as one line, named like its errors

    line = warnings.formatwarning("x.jsonl: left out", UserWarning, "f.py", 1)
    assert line == "pgsound train: warning: x.jsonl: left out\n"
    assert [r["tick"] for r in read_log(run)] == [1, 2, 3]  # the damaged line is gone from the file too


def test_a_metric_that_cannot_measure_the_data_is_refused_before_any_folder(shapes, tmp_path, capsys):
    runs = tmp_path / "runs"
    status = cli.main(["train", "--preset", "smoke", "--data", str(shapes), "--out", str(runs),
                       "--set", "metrics=[audio]", "--set", "metrics_every_ticks=1"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "the 'audio' metrics need spectrogram data" in err, err
    assert not runs.exists()


def test_a_metric_that_cannot_measure_the_data_is_refused_by_the_api_before_a_step(shapes, monkeypatch):
    import pgsound.trainer as trainer_module
    from pgsound.config import resolve_config
    from pgsound.datasets import open_dataset
    from pgsound.errors import UserError

    monkeypatch.setattr(trainer_module, "train_step", lambda state: pytest.fail("a step was taken"))
    config = resolve_config("smoke", ["metrics=[notes]", "metrics_every_ticks=1"])
    with pytest.raises(UserError, match="the 'notes' metrics need spectrogram data"):
        trainer_module.train(config, open_dataset(shapes), None, progress=False)


def test_a_finished_run_resumed_without_kimg_says_how_to_go_on(shapes, tmp_path, capsys):
    runs = tmp_path / "runs"
    # trained past its schedule's end with --kimg: a resume without --kimg has nothing to train
    assert cli.main(["train", "--preset", "smoke", "--data", str(shapes), "--out", str(runs), "--no-progress",
                     "--set", "schedule.total_kimg=0.016", "--kimg", "0.032"]) == 0
    run = next(runs.iterdir())
    stretches = (run / "stretches.jsonl").read_text()
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "0.032 kimg, its schedule's total is 0.016" in err and "--kimg K" in err, err
    assert (run / "stretches.jsonl").read_text() == stretches  # nothing recorded for a resume that trained nothing


def test_the_progress_bar_of_a_run_past_its_total_draws():
    from pgsound.loop_controls import progress_bar

    bar = progress_bar(0.016, 32)  # tqdm drops a total below the start; the bar's format needs one
    assert "0.0/0.0 kimg" in str(bar)
    bar.close()


def test_a_preflight_data_shape_too_large_to_make_is_refused_before_making_it(capsys):
    huge = ["--set", "data_shape=[3,32768,32768]", "--set", "g.fmap_base=1000000", "--set", "d.fmap_base=1000000"]
    assert cli.main(["preflight", "--preset", "paper", *huge, "--widths", "narrow"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "data_shape [3, 32768, 32768]" in err and "random pictures" in err, err


def test_a_dataset_that_cannot_be_created_is_one_line_naming_it(tmp_path, capsys, monkeypatch):
    import h5py

    def refuse(*args, **kwargs):
        raise OSError("Unable to synchronously create file (unable to open file: name = '...')")

    monkeypatch.setattr(h5py, "File", refuse)
    out = tmp_path / "s.h5"
    assert cli.main(["prepare", "synthetic-shapes", "--count", "8", "--resolution", "8", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{out}: the dataset file cannot be created" in err, err


def test_a_config_section_set_as_a_key_names_its_keys(shapes, tmp_path, capsys):
    assert cli.main(["train", "--preset", "smoke", "--data", str(shapes), "--out", str(tmp_path / "r"),
                     "--set", "g=3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'g' is a section of the config, not a key: set one of g.fmap_base" in err, err
