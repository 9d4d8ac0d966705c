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
