"""Piano end to end through the command line: prepare audio, train, resume, generate, evaluate (smoke sizes)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from pgsound.cli import main

pytestmark = pytest.mark.slow

RATE = 16000


def piano_like(seconds: float, f0: float, seed: int) -> np.ndarray:
    """Decaying harmonic tones with a little noise: enough structure for the pipeline, made with NumPy only."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    tone = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6)) * np.exp(-3 * t)
    return (0.3 * tone + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def audio_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("recordings")
    sf.write(folder / "a.wav", piano_like(1.0, 220.0, 0), RATE)
    sf.write(folder / "b.flac", piano_like(1.0, 330.0, 1), RATE)
    stereo = np.stack([piano_like(1.0, 440.0, 2), piano_like(1.0, 440.0, 3)], axis=1)
    sf.write(folder / "c-44k-stereo.wav", stereo, 44100)  # resampled and mixed down on reading
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really")
    sf.write(folder / "silent.wav", np.zeros(RATE, np.float32), RATE)
    return folder


def test_prepare_train_resume_generate_evaluate(audio_folder, tmp_path, capsys):
    data = tmp_path / "piano.h5"
    assert main(["prepare", "audio", str(audio_folder), "-o", str(data), "--size", "32x32", "--workers", "2"]) == 0
    report = capsys.readouterr().out
    assert "corrupt.wav" in report and "silent.wav" in report  # skipped and listed, not fatal
    assert "3 files" in report

    runs = tmp_path / "runs"
    common = ["--data", str(data), "--out", str(runs), "--no-progress"]
    assert main(["train", "--preset", "smoke", *common, "--kimg", "0.2"]) == 0
    (run,) = runs.iterdir()
    assert main(["train", "--resume", str(run), *common, "--kimg", "0.4"]) == 0
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert log[-1]["kimg"] >= 0.4 and log[-1]["resolution"] == "32x32"

    out = tmp_path / "generated"
    assert main(["generate", str(run), "--n", "3", "--out", str(out), "--griffin-lim-iters", "16"]) == 0
    wavs = sorted(out.glob("samples-*.wav"))
    assert len(wavs) == 3 and (out / "interpolation.wav").exists() and (out / "samples.png").exists()
    from pgsound.datasets import open_dataset
    from pgsound.spectrogram import SpectrogramConfig

    config = SpectrogramConfig.from_dict(open_dataset(data).metadata["spectrogram"])
    assert (config.n_fft, config.hop_length, config.n_bins) == (64, 32, 32)
    for path in wavs:
        audio, rate = sf.read(path)
        assert rate == RATE
        assert len(audio) == config.segment_length
        assert np.all(np.isfinite(audio)) and np.abs(audio).max() > 1e-3

    result = tmp_path / "metrics.json"
    assert main(["evaluate", str(run), "--n", "32", "--metrics", "swd", "--json", str(result)]) == 0
    values = json.loads(result.read_text())
    swd = values["metrics"]
    per_level = [key for key in swd if key.startswith("swd_") and key[4:].split("x")[0].isdigit()]
    assert per_level and all(np.isfinite(swd[key]) and swd[key] > 0 for key in per_level)
    assert swd["swd_avg"] == pytest.approx(np.mean([swd[key] for key in per_level]))
    # 0.4 kimg of training: the fakes are far from the reals, and reals against held-out reals are close.
    assert 0 < swd["swd_avg_real"] < swd["swd_avg"]
