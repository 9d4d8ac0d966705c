"""Config presets and overrides, checkpoints, and the generator EMA."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from pgsound.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from pgsound.config import TrainConfig, load_config, preset_names, resolve_config, save_config
from pgsound.ema import make_ema, update_ema


def test_overrides_are_typed_and_validated():
    config = resolve_config(None, ["g.fmap_max=256", "schedule.total_kimg=12", "base_shape=[2, 16]"])
    assert config.g.fmap_max == 256 and config.d.fmap_max == 512
    assert config.schedule.total_kimg == 12.0 and isinstance(config.schedule.total_kimg, float)
    assert config.base_shape == (2, 16)
    with pytest.raises(ValueError, match=r"unknown config key 'g\.fmap_mx'; did you mean g\.fmap_max"):
        resolve_config(None, ["g.fmap_mx=3"])
    with pytest.raises(ValueError, match="g.fmap_max expects int, got 'big'"):
        resolve_config(None, ["g.fmap_max=big"])
    with pytest.raises(ValueError, match="base_shape expects 2 values"):
        resolve_config(None, ["base_shape=[4, 4, 4]"])
    with pytest.raises(ValueError, match="must look like key=value"):
        resolve_config(None, ["schedule.total_kimg"])
    with pytest.raises(ValueError, match="loss.kind expects one of 'wgan-gp', 'logistic', got 'hinge'"):
        resolve_config(None, ["loss.kind=hinge"])
    with pytest.raises(ValueError, match="cpu_bf16=true needs precision 'bf16', got precision 'fp32'"):
        resolve_config(None, ["precision=fp32", "cpu_bf16=true"])


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown preset 'pian512'.*did you mean piano512"):
        resolve_config("pian512")


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_resolves_and_round_trips(name, tmp_path):
    config = resolve_config(name)
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config


def test_presets_hold_the_paper_and_piano_settings():
    assert {"paper", "piano512", "shapes-cpu", "piano-cpu", "smoke"} <= set(preset_names())
    piano = resolve_config("piano512").schedule
    assert (piano.lod_training_kimg, piano.lod_transition_kimg, piano.total_kimg) == (150, 150, 2000)
    assert (piano.minibatch_default, piano.minibatch[256], piano.minibatch[512]) == (16, 14, 6)
    paper = resolve_config("paper")
    assert paper.loss.gp_lambda == 10 and paper.loss.gp_target == 1 and paper.loss.drift == 0.001
    assert (paper.optimizer.beta1, paper.optimizer.beta2, paper.optimizer.eps) == (0.0, 0.99, 1e-8)
    assert paper.schedule.lr_default == 1e-3 and paper.ema_beta == 0.999


def test_checkpoint_round_trip_and_atomic_write(tmp_path):
    state = {"G": {"w": torch.randn(3, 3)}, "images_shown": 1234, "config": TrainConfig().to_dict()}
    path = save_checkpoint(state, tmp_path / "a" / "ckpt.pt")
    assert [p.name for p in path.parent.iterdir()] == ["ckpt.pt"]  # no temp file left behind
    loaded = load_checkpoint(path)
    assert loaded["images_shown"] == 1234 and torch.equal(loaded["G"]["w"], state["G"]["w"])
    assert TrainConfig.from_dict(loaded["config"]) == TrainConfig()


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_atomic_writes_get_the_mode_a_plain_open_gives(tmp_path, umask):
    """A run folder shared with a group (a course) must be readable: mkstemp's private 0600 was kept before."""
    import os
    import stat

    from pgsound.files import atomic_write

    previous = os.umask(umask)
    try:
        checkpoint = save_checkpoint({"x": torch.zeros(3)}, tmp_path / "ckpt.pt")
        with atomic_write(tmp_path / "notes.txt") as temp:
            temp.write_text("hello")
        (tmp_path / "plain.txt").write_text("hello")
    finally:
        os.umask(previous)
    expected = 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == expected  # the reference: open()
    assert stat.S_IMODE(checkpoint.stat().st_mode) == expected
    assert stat.S_IMODE((tmp_path / "notes.txt").stat().st_mode) == expected


def test_truncated_foreign_and_missing_checkpoints(tmp_path):
    path = save_checkpoint({"x": torch.zeros(1000)}, tmp_path / "ckpt.pt")
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pt is not a readable pgsound checkpoint"):
        load_checkpoint(tmp_path / "cut.pt")
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match=r"foreign\.pt is not a pgsound checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    torch.save(nn.Linear(2, 2), tmp_path / "module.pt")  # a pickled module: refused by weights_only
    with pytest.raises(CheckpointError, match=r"module\.pt holds a Python object \(torch\.nn\.modules\.linear"
                                              r"\.Linear\) that a pgsound checkpoint never holds") as refused:
        load_checkpoint(tmp_path / "module.pt")
    (tmp_path / "notes.pt").write_text("not a checkpoint\n")  # a text file passed by mistake
    with pytest.raises(CheckpointError, match=r"notes\.pt is not a readable pgsound checkpoint") as text:
        load_checkpoint(tmp_path / "notes.pt")
    for error in (refused, text):  # one line, and none of torch's advice to load the file unsafely
        assert "\n" not in str(error.value) and "False" not in str(error.value)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nothing.pt")


def test_ema_arithmetic():
    model = nn.Linear(3, 2)
    ema = make_ema(model)
    assert not any(p.requires_grad for p in ema.parameters())
    start = [p.detach().clone() for p in ema.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    update_ema(ema, model, beta=0.9)
    for e, s, m in zip(ema.parameters(), start, model.parameters()):
        torch.testing.assert_close(e, 0.9 * s + 0.1 * m)
    for _ in range(2):
        update_ema(ema, model, beta=0.9)
    for e, s, m in zip(ema.parameters(), start, model.parameters()):
        # after n updates towards a fixed target: target + beta**n * (start - target)
        torch.testing.assert_close(e, m + 0.9**3 * (s - m))
    with pytest.raises(ValueError, match="beta"):
        update_ema(ema, model, beta=1.5)


def test_ema_rampup_caps_the_half_life():
    from pgsound.ema import ema_beta_at

    # Without ramp-up, the paper's beta at every step.
    assert ema_beta_at(0.999, 16, 0) == 0.999 and ema_beta_at(0.999, 16, 10**7, None) == 0.999
    # beta 0.999 at batch 16 has a half-life of 16 ln 0.5 / ln 0.999 = 11084.9 images.
    half_life = 16 * math.log(0.5) / math.log(0.999)
    assert half_life == pytest.approx(11084.9, abs=0.1)
    # After 24 kimg with ramp-up 0.05 the half-life is capped at 1200 images: beta = 0.5 ** (16 / 1200).
    assert ema_beta_at(0.999, 16, 24_000, 0.05) == pytest.approx(0.5 ** (16 / 1200), rel=1e-12)
    assert ema_beta_at(0.999, 16, 24_000, 0.05) < 0.9910
    # Once rampup * images exceeds the half-life, the paper's beta again.
    assert ema_beta_at(0.999, 16, 300_000, 0.05) == pytest.approx(0.999, rel=1e-12)
    assert resolve_config("shapes-cpu").ema_rampup == 0.05 and resolve_config("paper").ema_rampup is None
    with pytest.raises(ValueError, match="ema_rampup_from expects one of 'run', 'level', got 'fade'"):
        resolve_config("smoke", ["ema_rampup_from=fade"])


def test_a_table_override_replaces_the_whole_table():
    assert resolve_config("piano-cpu").schedule.lr == {64: 0.003, 128: 0.001}
    assert resolve_config("piano-cpu", ["schedule.lr={64: 0.002}"]).schedule.lr == {64: 0.002}
    assert resolve_config("piano-cpu", ["schedule.lr={}"]).schedule.lr == {}
