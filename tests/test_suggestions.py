"""Every fix an error message suggests works when followed: the suggestion is read from the message itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pgsound import cli


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    """Small datasets: 8x8 shapes with labels, 16x16 shapes, and 3x5 spectrograms (no power of two)."""
    import numpy as np
    import soundfile as sf

    from pgsound.datasets import prepare_synthetic_shapes

    folder = tmp_path_factory.mktemp("data")
    prepare_synthetic_shapes(folder / "shapes8.h5", count=16, resolution=8)
    prepare_synthetic_shapes(folder / "other8.h5", count=16, resolution=8, seed=1)
    (folder / "recs").mkdir()
    sf.write(folder / "recs" / "a.wav", (0.1 * np.sin(np.arange(2000) * 0.05)).astype("float32"), 16000)
    assert cli.main(["prepare", "audio", str(folder / "recs"), "--size", "3x5", "--workers", "1",
                     "-o", str(folder / "odd.h5")]) == 0
    return {"shapes": folder / "shapes8.h5", "other": folder / "other8.h5", "odd": folder / "odd.h5"}


def error_of(argv: list[str], capsys) -> str:
    assert cli.main(argv) == 2, argv
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def train(data: Path, runs: Path, *sets: str) -> list[str]:
    argv = ["train", "--preset", "smoke", "--data", str(data), "--out", str(runs), "--kimg", "0.016",
            "--no-progress", "--set", "schedule.tick_kimg_default=0.016", "--set", "samples_every_ticks=100"]
    for assignment in sets:
        argv += ["--set", assignment]
    return argv


def test_the_suggested_base_shape_trains(data, tmp_path, capsys):
    err = error_of(train(data["odd"], tmp_path / "runs"), capsys)
    suggested = re.search(r"set (base_shape=\[\d+, \d+\])", err).group(1).replace(" ", "")
    assert cli.main(train(data["odd"], tmp_path / "runs", suggested)) == 0


def test_the_suggested_base_shape_with_its_tables_trains(data, tmp_path, capsys):
    """A preset's per-resolution tables keyed by its own sizes: the suggestion rekeys them for the new base."""
    tables = ["schedule.lr={16: 0.003, 32: 0.001}", "schedule.minibatch={32: 4}"]
    err = error_of(train(data["odd"], tmp_path / "runs", *tables), capsys)
    base = re.search(r"set (base_shape=\[\d+, \d+\])", err).group(1).replace(" ", "")
    rekeyed = re.findall(r"--set '([^']+)'", err)
    assert rekeyed == ["schedule.minibatch={5: 4}", "schedule.lr={5: 0.001}"], err  # 32 (the top) becomes 5
    assert cli.main(train(data["odd"], tmp_path / "runs", *tables, base, *rekeyed)) == 0


def test_the_suggested_fmap_base_trains(data, tmp_path, capsys):
    err = error_of(train(data["shapes"], tmp_path / "runs", "g.fmap_base=2", "g.fmap_max=512"), capsys)
    need = re.search(r"set g\.fmap_base to at least (\d+)", err).group(1)
    assert cli.main(train(data["shapes"], tmp_path / "runs", f"g.fmap_base={need}", "g.fmap_max=512")) == 0


@pytest.mark.parametrize("which", [0, -1])
def test_each_suggested_minibatch_fix_trains(which, data, tmp_path, capsys):
    bad = ["schedule.minibatch_default=6", "mbstd_group_size=4"]
    err = error_of(train(data["shapes"], tmp_path / "runs", *bad), capsys)
    fixes = re.findall(r"(mbstd_group_size=\d+)", err)
    fixes += re.findall(r"for example --set '(schedule\.minibatch=\{.*?\})'", err)
    fix = fixes[which]
    assert cli.main(train(data["shapes"], tmp_path / "runs", *bad, fix)) == 0, fix


def test_the_suggested_metrics_interval_trains(data, tmp_path, capsys):
    err = error_of(train(data["shapes"], tmp_path / "runs", "metrics=[swd]"), capsys)
    assert "set metrics_every_ticks" in err
    assert cli.main(train(data["shapes"], tmp_path / "runs", "metrics=[swd]", "metrics_every_ticks=1",
                          "metrics_images=16")) == 0


def test_allow_other_data_resumes_as_suggested(data, tmp_path, capsys):
    runs = tmp_path / "runs"
    assert cli.main(train(data["shapes"], runs)) == 0
    run = next(runs.iterdir())
    resume = ["train", "--resume", str(run), "--data", str(data["other"]), "--kimg", "0.032", "--no-progress"]
    err = error_of(resume, capsys)
    assert "pass --allow-other-data" in err
    assert cli.main([*resume, "--allow-other-data"]) == 0


def test_the_suggested_memory_settings_fit(data, tmp_path, capsys):
    err = error_of(train(data["shapes"], tmp_path / "runs", "schedule.minibatch_default=100000000"), capsys)
    assert "schedule.minibatch_default" in err and "lower those settings" in err
    assert cli.main(train(data["shapes"], tmp_path / "runs", "schedule.minibatch_default=8")) == 0


def test_preflight_without_data_shape_follows_its_advice(data, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["preflight", "--preset", "smoke", "--set", "data_shape=null", "--widths", "narrow", "--no-resume-check",
            "--set", "schedule.total_kimg=0.01"]
    err = error_of(argv, capsys)
    assert "--set data_shape=[channels,height,width]" in err
    assert cli.main([*argv, "--set", "data_shape=[3,8,8]"]) == 0
    assert cli.main([*argv[:-2], "--data", str(data["shapes"])]) == 0


def test_the_ndb_advice_measures(data, tmp_path, capsys, monkeypatch):
    runs = tmp_path / "runs"
    assert cli.main(train(data["shapes"], runs)) == 0
    run = str(next(runs.iterdir()))
    err = error_of(["evaluate", run, "--n", "8", "--metrics", "ndb", "--ndb-bins", "50"], capsys)
    assert "lower --ndb-bins or raise --n" in err
    assert cli.main(["evaluate", run, "--n", "8", "--metrics", "ndb", "--ndb-bins", "2"]) == 0
