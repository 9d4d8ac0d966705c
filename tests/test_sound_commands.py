"""`pgsound spectrogram` and `pgsound invert`: a recording to pictures and back through the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from pgsound.cli import main
from pgsound.phase_retrieval import spectral_convergence_db
from pgsound.spectrogram import SpectrogramConfig, audio_to_frames, pieces_to_magnitude, split_audio
from pgsound.spectrogram_files import SpectrogramFile, load_spectrogram, save_png
from pgsound.synth_piano import render_phrase

SIZE = ["--size", "64x64", "--hop", "16"]
CONFIG = SpectrogramConfig(n_fft=128, hop_length=16, n_bins=64, n_frames=64)


pytestmark = pytest.mark.usefixtures("one_thread")  # small FFTs (tests/conftest.py)


@pytest.fixture
def recording(tmp_path):
    audio, _ = render_phrase(0.16, kind="chord", seed=2)  # 2560 samples: 2 windows of 1008 and a padded third
    path = tmp_path / "piano.wav"
    sf.write(path, audio, 16000, subtype="FLOAT")
    return path, audio


def test_round_trip_through_png(tmp_path, recording, capsys):
    path, audio = recording
    png = tmp_path / "out" / "piano.png"
    assert main(["spectrogram", str(path), "-o", str(png), *SIZE]) == 0
    assert "3 picture(s) of 64x64" in capsys.readouterr().out
    with Image.open(png) as image:
        assert image.mode == "I;16" and image.size == (3 * 64, 64)  # side by side in time, 16-bit
        metadata = json.loads(image.text["pgsound"])
    assert metadata["pictures"] == 3 and metadata["samples"] == audio.size
    assert SpectrogramConfig.from_dict(metadata["spectrogram"]) == CONFIG
    item = load_spectrogram(png)
    np.testing.assert_allclose(item.frames, audio_to_frames(audio, CONFIG), atol=1.0 / 65535 + 1e-6)
    # Low frequencies at the bottom of the PNG: the first picture's DC row is the last pixel row.
    with Image.open(png) as image:
        bottom = np.array(image)[-1, :64].astype(np.float32) / 32767.5 - 1
    np.testing.assert_allclose(bottom, item.frames[0, 0], atol=1e-6)

    wav = tmp_path / "back.wav"
    assert main(["invert", str(png), "-o", str(wav), "--iters", "40"]) == 0
    assert "spectral convergence" in capsys.readouterr().out
    back, rate = sf.read(wav, dtype="float32")
    assert rate == 16000 and back.size == audio.size  # the last window's padding is trimmed
    pieces = split_audio(back, CONFIG)
    target = pieces_to_magnitude(split_audio(audio, CONFIG), CONFIG)
    assert np.mean(spectral_convergence_db(target, pieces_to_magnitude(pieces, CONFIG))) < -15


def test_npy_is_exact_and_inverts(tmp_path, recording):
    path, audio = recording
    out = tmp_path / "piano.png"
    assert main(["spectrogram", str(path), "-o", str(out), "--npy", *SIZE]) == 0
    assert out.exists() and (tmp_path / "piano.npy").exists() and (tmp_path / "piano.json").exists()
    np.testing.assert_array_equal(np.load(tmp_path / "piano.npy"), audio_to_frames(audio, CONFIG))
    assert main(["invert", str(tmp_path / "piano.npy"), "-o", str(tmp_path / "b.wav"), "--iters", "2"]) == 0
    assert sf.info(tmp_path / "b.wav").frames == audio.size


def test_generated_pictures_without_a_length_invert_whole(tmp_path):
    frames = np.random.default_rng(0).uniform(-1, 0.2, (2, 64, 64)).astype(np.float32)
    save_png(tmp_path / "g.png", SpectrogramFile(frames, CONFIG))
    assert main(["invert", str(tmp_path / "g.png"), "-o", str(tmp_path / "g.wav"), "--iters", "1"]) == 0
    assert sf.info(tmp_path / "g.wav").frames == 2 * CONFIG.segment_length


def test_errors_name_the_file(tmp_path, recording, capsys):
    path, _ = recording
    assert main(["spectrogram", str(tmp_path / "nothing.wav"), "-o", str(tmp_path / "x.png")]) == 2
    assert "nothing.wav: no such audio file" in capsys.readouterr().err
    plain = tmp_path / "plain.png"
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(plain)
    assert main(["invert", str(plain), "-o", str(tmp_path / "x.wav")]) == 2
    assert "plain.png: this PNG has no pgsound settings" in capsys.readouterr().err
    np.save(tmp_path / "lonely.npy", np.zeros((1, 64, 64), np.float32))
    assert main(["invert", str(tmp_path / "lonely.npy"), "-o", str(tmp_path / "x.wav")]) == 2
    assert "lonely.npy: its settings file lonely.json is missing" in capsys.readouterr().err
    (tmp_path / "empty.npy").write_bytes(b"")
    np.savez(tmp_path / "archive.npz", frames=np.zeros((1, 64, 64), np.float32))
    (tmp_path / "archive.npz").rename(tmp_path / "archive.npy")
    for name, expected in (("empty", "empty.npy: not a readable .npy array (No data left in file)"),
                           ("archive", "archive.npy: not a .npy array but an archive of several (NpzFile)")):
        (tmp_path / f"{name}.json").write_text("{}")
        assert main(["invert", str(tmp_path / f"{name}.npy"), "-o", str(tmp_path / "x.wav")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err, err
    assert main(["invert", str(path), "-o", str(tmp_path / "x.wav")]) == 2
    assert "expected a .png or .npy spectrogram" in capsys.readouterr().err
    assert main(["spectrogram", str(path), "-o", str(tmp_path / "x.png"), "--size", "64by64"]) == 2
    assert "--size must look like 512x512" in capsys.readouterr().err
    short = tmp_path / "short.wav"
    sf.write(short, np.full(1700, 0.1, np.float32), 16000)
    assert main(["spectrogram", str(short), "-o", str(tmp_path / "x.png")]) == 2
    assert "too short for one consecutive piece" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "x.wav").exists()


def test_a_damaged_sidecar_is_one_error_naming_it(tmp_path, recording, capsys):
    import json

    path, _ = recording
    out = tmp_path / "piano.png"
    assert main(["spectrogram", str(path), "-o", str(out), "--npy", *SIZE]) == 0
    sidecar = tmp_path / "piano.json"
    settings = json.loads(sidecar.read_text())
    settings["spectrogram"]["n_fft"] = -4
    sidecar.write_text(json.dumps(settings))
    capsys.readouterr()
    assert main(["invert", str(tmp_path / "piano.npy"), "-o", str(tmp_path / "x.wav")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "piano.json: " in err and "n_fft" in err, err
    del settings["spectrogram"]["n_fft"]  # a default would give the wrong sound: refused, not guessed
    sidecar.write_text(json.dumps(settings))
    assert main(["invert", str(tmp_path / "piano.npy"), "-o", str(tmp_path / "x.wav")]) == 2
    assert "piano.json: the spectrogram settings lack n_fft" in capsys.readouterr().err
    assert not (tmp_path / "x.wav").exists()
