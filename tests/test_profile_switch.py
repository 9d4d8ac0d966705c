"""PGSOUND_PRETRAINED: the switch that makes the chapters load shipped runs instead of training."""

from __future__ import annotations

import pytest

from pgsound.errors import UserError
from pgsound.profile import PRETRAINED_VAR, use_pretrained


@pytest.mark.parametrize("value", ["1", "true", "yes", "TRUE", "Yes", " 1 "])
def test_true_values_load_shipped_runs(monkeypatch, value):
    monkeypatch.setenv(PRETRAINED_VAR, value)
    assert use_pretrained() is True


@pytest.mark.parametrize("value", ["", "0", "false", "no", "FALSE", " no "])
def test_false_values_train(monkeypatch, value):
    monkeypatch.setenv(PRETRAINED_VAR, value)
    assert use_pretrained() is False


def test_unset_trains(monkeypatch):
    monkeypatch.delenv(PRETRAINED_VAR, raising=False)
    assert use_pretrained() is False


@pytest.mark.parametrize("value", ["2", "on", "y", "pretrained", "piano-cpu"])
def test_any_other_value_is_an_error_naming_the_variable_and_the_values(monkeypatch, value):
    monkeypatch.setenv(PRETRAINED_VAR, value)
    with pytest.raises(UserError) as raised:
        use_pretrained()
    message = str(raised.value)
    assert "PGSOUND_PRETRAINED" in message and repr(value) in message
    for accepted in ("1", "true", "yes", "0", "false", "no"):
        assert accepted in message


# ---- PGSOUND_RUNS: where the chapters keep their data and runs ----------------------------------------------


def test_work_folder_is_the_named_folder_created_and_kept(monkeypatch, tmp_path):
    from pgsound.profile import RUNS_VAR, work_folder

    monkeypatch.setenv(RUNS_VAR, str(tmp_path / "a" / "b"))
    assert work_folder("ch5") == tmp_path / "a" / "b" and (tmp_path / "a" / "b").is_dir()


def test_work_folder_that_cannot_be_created_is_one_line_naming_the_variable(monkeypatch, tmp_path):
    from pgsound.profile import RUNS_VAR, work_folder

    (tmp_path / "file").write_text("x")
    monkeypatch.setenv(RUNS_VAR, str(tmp_path / "file" / "runs"))
    with pytest.raises(UserError, match=f"^{RUNS_VAR}=.*file.*cannot create") as error:
        work_folder("ch5")
    assert "\n" not in str(error.value)


def test_without_pgsound_runs_each_chapter_gets_a_temporary_folder_deleted_at_exit(tmp_path):
    """The folder must outlive the call (the chapter writes into it) and go when the kernel's process exits."""
    import os
    import subprocess
    import sys

    code = (
        "from pgsound import work_folder\n"
        "a, b = work_folder('ch5'), work_folder('ch5')\n"
        "(a / 'data.h5').write_bytes(b'x' * 1000)\n"
        "import gc; gc.collect()\n"
        "assert a != b and (a / 'data.h5').exists() and a.name.startswith('pgsound-ch5-'), a\n"
        "print(a)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PGSOUND_RUNS"} | {"TMPDIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    folder = out.stdout.strip().splitlines()[-1]
    assert folder.startswith(str(tmp_path)) and not os.path.exists(folder)
    assert list(tmp_path.iterdir()) == []
