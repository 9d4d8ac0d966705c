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
