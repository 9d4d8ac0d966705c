"""evaluate_metrics dispatch, and `pgsound evaluate` end to end on a tiny trained run (JSON and table)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from pgsound.errors import UserError
from pgsound.metrics import default_metrics, evaluate_metrics
from pgsound.metrics.ms_ssim import mean_pairwise_ms_ssim
from pgsound.metrics.ndb import ndb
from pgsound.metrics.swd import sliced_wasserstein_distance
from pgsound.spectrogram import SpectrogramConfig


def images(n: int, shape=(16, 16), channels=3, seed=0) -> torch.Tensor:
    x = torch.randn((n, channels) + shape, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.avg_pool2d(x, 3, 1, 1).clamp(-1, 1)


def test_dispatch_gives_the_modules_numbers_as_a_flat_dict():
    reals, fakes = images(120, channels=1), images(130, channels=1, seed=1)
    values = evaluate_metrics(reals, fakes, seed=3, device="cpu")
    assert set(values) == {"swd_16", "swd_avg", "ms_ssim_fake", "ms_ssim_real", "ndb_k", "ndb_k_real", "ndb_bins"}
    assert all(isinstance(v, float) for v in values.values())
    # The same numbers as the modules give, on equal counts (the larger side is cut).
    assert values["swd_avg"] == sliced_wasserstein_distance(reals, fakes[:120], seed=3)["swd_avg"]
    assert values["ms_ssim_fake"] == mean_pairwise_ms_ssim(fakes[:120], seed=3)
    assert values["ms_ssim_real"] == mean_pairwise_ms_ssim(reals, seed=3)
    assert values["ndb_bins"] == 6  # 60 reals make the bins, 10 per bin
    expected = ndb(reals, fakes[:120], seed=3, num_bins=6)
    assert (values["ndb_k"], values["ndb_k_real"]) == (expected["ndb_k"], expected["ndb_k_real"])
    assert evaluate_metrics(reals.numpy(), fakes.numpy(), seed=3, device="cpu") == values  # arrays alike, seeded


def test_on_apples_gpu_the_metrics_run_on_the_cpu_with_the_cpus_numbers():
    """MPS has no float64, which the metrics' sums need: told ``mps``, they run on the CPU (no MPS needed here)."""
    reals, fakes = images(40, channels=1), images(40, channels=1, seed=1)
    chosen = ["swd", "ms_ssim"]
    on_cpu = evaluate_metrics(reals, fakes, chosen, seed=3, device="cpu")
    assert evaluate_metrics(reals, fakes, chosen, seed=3, device="mps") == on_cpu


def test_swd_floor_is_reals_against_held_out_reals_at_the_same_count():
    reals, held = images(40, channels=1), images(60, channels=1, seed=2)
    fakes = torch.randn(50, 1, 16, 16, generator=torch.Generator().manual_seed(1)).clamp(-1, 1)  # not smoothed
    values = evaluate_metrics(reals, fakes, ["swd"], seed=3, device="cpu", held_out_reals=held)
    assert values["swd_avg_real"] == sliced_wasserstein_distance(reals, held[:40], seed=3)["swd_avg"]
    assert values["swd_avg_real"] < values["swd_avg"]  # the same distribution is closer than a different one
    with pytest.raises(ValueError, match="at least 40 images"):
        evaluate_metrics(reals, fakes, ["swd"], device="cpu", held_out_reals=held[:30])


def test_default_metrics_follow_the_data():
    assert default_metrics(64) == ["swd", "ms_ssim"]
    assert default_metrics(4096) == ["swd", "ms_ssim", "ndb"]
    settings = SpectrogramConfig().to_dict()
    assert default_metrics(4096, {"spectrogram": settings})[-1] == "audio"
    assert default_metrics(4096, {"spectrogram": settings, "representation": "magnitude"})[-1] == "audio"
    for other in ("mel", "mag-if"):  # their rows are not linear-frequency magnitudes
        assert default_metrics(4096, {"spectrogram": settings, "representation": other}) == ["swd", "ms_ssim", "ndb"]


def test_audio_metrics_refuse_mel_bands_by_name_before_any_metric_runs(monkeypatch):
    import pgsound.metrics

    def swd_first(*args, **kwargs):
        raise AssertionError("SWD was computed before the audio metrics' data was checked")

    monkeypatch.setattr(pgsound.metrics, "sliced_wasserstein_distances", swd_first)
    config = SpectrogramConfig.for_shape(32, 32)
    reals, fakes = images(8, (32, 32), 1), images(8, (32, 32), 1, seed=2)
    with pytest.raises(UserError, match="this data is 'mel'"):
        evaluate_metrics(reals, fakes, ["swd", "audio"],
                         metadata={"spectrogram": config.to_dict(), "representation": "mel"})


def test_audio_from_the_dataset_metadata():
    config = SpectrogramConfig.for_shape(32, 32)
    reals, fakes = images(8, (32, 32), 1), images(8, (32, 32), 1, seed=2)
    values = evaluate_metrics(reals, fakes, ["audio"], metadata={"spectrogram": config.to_dict()}, device="cpu",
                              options={"audio": {"n_items": 2, "n_iter": 4}})
    assert {"sc_fake_db", "sc_real_db", "log_spectrum_rms_db", "centroid_w1_hz"} <= set(values)
    with pytest.raises(ValueError, match="spectrogram data"):
        evaluate_metrics(reals, fakes, ["audio"], metadata={"source": "shapes"})


def test_small_levels_and_bad_names():
    tiny = images(8, (4, 4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values = evaluate_metrics(tiny, tiny.flip(0), ["swd", "ms_ssim"], device="cpu")
    assert "swd_avg" not in values and "ms_ssim_fake" in values
    assert any("SWD left out: 4x4" in str(w.message) for w in caught)
    with pytest.raises(ValueError, match=r"unknown metric\(s\) \['fid'\]"):
        evaluate_metrics(tiny, tiny, ["fid"])
    with pytest.raises(ValueError, match="differ in shape"):
        evaluate_metrics(tiny, images(8, (8, 8)))
    with pytest.raises(ValueError, match="NDB needs at least 40 images"):
        evaluate_metrics(images(30), images(30), ["ndb"])


@pytest.mark.slow
def test_pgsound_evaluate_end_to_end(tmp_path, capsys):
    from pgsound.cli import main
    from pgsound.config import resolve_config
    from pgsound.datasets import LevelLoader, open_dataset, prepare_synthetic_shapes
    from pgsound.trainer import train

    data = tmp_path / "shapes16.h5"
    prepare_synthetic_shapes(data, count=200, resolution=16, seed=0)
    config = resolve_config("smoke", ["schedule.minibatch_default=4", "schedule.fixed_level=2"])
    train(config, open_dataset(data), tmp_path / "run", max_steps=3, progress=False)

    assert main(["evaluate", str(tmp_path / "run"), "--n", "128", "--device", "cpu"]) == 0
    table = capsys.readouterr().out
    (written,) = (tmp_path / "run").glob("metrics-*kimg.json")
    result = json.loads(written.read_text())
    assert result["n"] == 100 and result["level"] == 2  # 200 images: half compared, half held out
    for key in ("swd_16", "swd_avg", "swd_avg_real", "ms_ssim_fake", "ms_ssim_real", "ndb_k", "ndb_k_real"):
        assert np.isfinite(result["metrics"][key])
        assert key in table and f"{result['metrics'][key]:.4f}" in table
    # A generator after three steps is far from the data; real against real is the floor.
    reals = LevelLoader(open_dataset(data), "cpu").peek(2, 200)
    floor = sliced_wasserstein_distance(reals[:100], reals[100:], seed=0)["swd_avg"]
    assert result["metrics"]["swd_avg_real"] == pytest.approx(floor, rel=1e-6)
    assert result["metrics"]["swd_avg"] > 2 * floor
    assert main(["evaluate", str(tmp_path / "run"), "--n", "16", "--metrics", "fid"]) == 2
    assert "argument --metrics: invalid choice: 'fid'" in capsys.readouterr().err  # before any sample

