"""The command line turns the user's mistakes into one line each, and leaves every other error its traceback."""

from __future__ import annotations

import argparse

import pytest

from pgsound import cli
from pgsound.checkpoint import CheckpointError
from pgsound.datasets import DatasetError
from pgsound.errors import MissingFileError, UserError
from pgsound.plan import PlanError


def run_with(monkeypatch, error: BaseException) -> int:
    """Run ``pgsound info`` with its function replaced by one that raises ``error``."""
    def raising(args: argparse.Namespace) -> int:
        raise error

    parser = cli.build_parser()
    original = parser.parse_args
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    monkeypatch.setattr(parser, "parse_args", lambda argv: argparse.Namespace(**{**vars(original(argv)),
                                                                             "func": raising}))
    return cli.main(["info"])


@pytest.mark.parametrize("error", [
    UserError("bad value"), PlanError("bad plan"), DatasetError("bad data"), CheckpointError("bad checkpoint"),
    MissingFileError("no file"), cli.CommandError("bad arguments"),
])
def test_a_user_error_is_one_line_and_status_2(monkeypatch, capsys, error):
    assert run_with(monkeypatch, error) == 2
    err = capsys.readouterr().err
    assert err == f"pgsound info: error: {error}\n"


@pytest.mark.parametrize("error", [ValueError("a bug"), FileNotFoundError("a missing internal file"),
                                   KeyError("a missing key"), RuntimeError("a failure")])
def test_any_other_error_keeps_its_traceback(monkeypatch, error):
    with pytest.raises(type(error)):
        run_with(monkeypatch, error)


def test_what_users_get_wrong_are_user_errors(tmp_path, capsys):
    """A typo in --set, a YAML slip, a run folder that does not exist: each names what was wrong."""
    cases = [
        (["train", "--preset", "smoke", "--data", str(tmp_path / "x.h5"), "--set", "g.fmap_mx=3"],
         "unknown config key 'g.fmap_mx'; did you mean g.fmap_max"),
        (["train", "--preset", "smoke", "--data", str(tmp_path / "x.h5"), "--set", "g.fmap_max=[1,"],
         "is not valid YAML"),
        (["train", "--preset", "smok", "--data", str(tmp_path / "x.h5")], "unknown preset 'smok'"),
        (["train", "--preset", "smoke", "--data", str(tmp_path / "x.h5")], f"no dataset at {tmp_path / 'x.h5'}"),
        (["generate", str(tmp_path / "no-run")], f"no checkpoint at {tmp_path / 'no-run'}"),
        (["train", "--resume", str(tmp_path / "no-run")], f"no checkpoint at {tmp_path / 'no-run'}"),
    ]
    for argv, expected in cases:
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert expected in err and err.count("\n") == 1, (argv, err)


def test_train_refuses_a_kimg_with_nothing_to_train(tmp_path, capsys):
    from pgsound.datasets import prepare_synthetic_shapes

    data = tmp_path / "shapes8.h5"
    prepare_synthetic_shapes(data, count=16, resolution=8)
    runs = tmp_path / "runs"
    for kimg in ("0", "-1"):
        assert cli.main(["train", "--preset", "smoke", "--data", str(data), "--out", str(runs), "--kimg", kimg]) == 2
        assert f"argument --kimg: expected a finite number in (0, 1e+06], got '{kimg}'" in capsys.readouterr().err
    assert not runs.exists()  # no empty run folder left behind


def test_prepare_refuses_sizes_that_cannot_work(tmp_path, capsys):
    out = str(tmp_path / "x.h5")
    for argv, expected in [(["synthetic-shapes", "--resolution", "0"], "--resolution: expected a whole number from 4"),
                           (["synthetic-piano", "--size", "32x32", "--hop", "0"], "--hop: expected a whole number"),
                           (["synthetic-piano", "--size", "32x32", "--n-fft", "-4"], "--n-fft: expected a whole"),
                           ]:
        assert cli.main(["prepare", *argv, "-o", out]) == 2, argv
        assert expected in capsys.readouterr().err


@pytest.mark.parametrize("flags, expected", [
    (["--n-fft", "16"], "--hop 128 exceeds the window length 16: the STFT would not be invertible "
                        "(from --size 512x512, --n-fft 16, --hop 128)"),
    (["--size", "64x64", "--n-fft", "64"], "the bin count of --size 64 exceeds the 33 bins of --n-fft=64"),
])
def test_a_geometry_that_cannot_work_names_the_flags_not_the_fields(flags, expected, tmp_path, capsys):
    out = tmp_path / "x.png"
    assert cli.main(["spectrogram", str(tmp_path / "missing.wav"), "-o", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert expected in err and "hop_length" not in err and "n_bins" not in err
    assert not out.exists()


def test_a_run_stopped_by_sigterm_exits_143_not_0(tmp_path, capsys, monkeypatch):
    """A batch scheduler reads the exit status: a run stopped early by SIGTERM must not look finished."""
    import os
    import signal

    import pgsound.trainer as trainer_module
    from pgsound.datasets import prepare_synthetic_shapes

    step = trainer_module.train_step
    calls = []

    def step_then_term(state):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return step(state)

    monkeypatch.setattr(trainer_module, "train_step", step_then_term)
    data = tmp_path / "shapes8.h5"
    prepare_synthetic_shapes(data, count=16, resolution=8)
    status = cli.main(["train", "--preset", "smoke", "--data", str(data), "--out", str(tmp_path / "runs"),
                       "--no-progress"])
    out = capsys.readouterr().out
    assert status == 128 + signal.SIGTERM
    assert "stopped by SIGTERM" in out and "resume with: pgsound train --resume" in out and "done at" not in out


def test_an_os_error_about_a_path_is_one_line_with_status_1(monkeypatch, capsys):
    import errno

    assert run_with(monkeypatch, OSError(errno.ENOSPC, "No space left on device", "/runs/x/ckpt.pt")) == 1
    assert capsys.readouterr().err == "pgsound info: error: /runs/x/ckpt.pt: No space left on device\n"
    with pytest.raises(OSError):  # no path: not the user's, keeps its traceback
        run_with(monkeypatch, OSError("a socket broke"))


def test_out_under_a_file_is_a_message(tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    status = cli.main(["prepare", "synthetic-shapes", "--resolution", "8", "--count", "4",
                       "-o", str(tmp_path / "file" / "x.h5")])
    err = capsys.readouterr().err
    assert status in (1, 2) and "file" in err and err.count("\n") == 1, err


def test_a_reader_that_goes_away_stops_the_command_quietly(tmp_path, monkeypatch, capsys):
    """`pgsound dataset info x.h5 | head -2`: the closed pipe is the reader's choice, not a crash."""
    import sys

    from pgsound.datasets import prepare_synthetic_shapes

    data = tmp_path / "shapes.h5"
    prepare_synthetic_shapes(data, count=8, resolution=8)
    sink = (tmp_path / "sink").open("w")

    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

        def fileno(self):
            return sink.fileno()

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert cli.main(["dataset", "info", str(data)]) == 141
    assert "Traceback" not in capsys.readouterr().err


def test_every_command_that_writes_somewhere_takes_o_for_out():
    """``-o`` works wherever ``--out`` does (``pgsound prepare ... -o x.h5`` teaches it), so no command refuses it."""
    def parsers(parser: argparse.ArgumentParser):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield name, sub
                    yield from ((f"{name} {inner}", p) for inner, p in parsers(sub))

    with_out = {name: action.option_strings for name, sub in parsers(cli.build_parser())
                for action in sub._actions if "--out" in action.option_strings}
    assert {"train", "generate", "prepare audio", "spectrogram"} <= set(with_out)
    assert {name: options for name, options in with_out.items() if "-o" not in options} == {}
