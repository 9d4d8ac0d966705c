"""MAESTRO and NSynth preparation on tiny folders laid out as their publishers lay them out (issue 24)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pgsound.cli import main
from pgsound.datasets import open_dataset, prepare_maestro, prepare_nsynth
from pgsound.datasets.maestro import COLUMNS, parse_years, read_catalogue
from pgsound.datasets.nsynth import parse_pitch_range
from pgsound.errors import UserError
from pgsound.spectrogram import SpectrogramConfig

# 32x32 pictures of a 64-point STFT, hop 32: a picture is 992 samples (62 ms) at 16 kHz.
CONFIG = SpectrogramConfig(n_fft=64, hop_length=32, n_bins=32, n_frames=32)
SIZE = ["--size", "32x32", "--n-fft", "64", "--hop", "32"]

# (composer, title, split, year, seconds): two composers, every split, two years.
PERFORMANCES = [
    ("Frédéric Chopin", "Ballade No. 1", "train", 2004, 0.50),
    ("Frédéric Chopin", "Étude Op. 10 No. 4", "train", 2006, 0.40),
    ("Johann Sebastian Bach", "Prelude in C", "train", 2006, 0.30),
    ("Johann Sebastian Bach", "Fugue in C minor", "validation", 2004, 0.35),
    ("Frédéric Chopin", "Nocturne Op. 9 No. 2", "test", 2008, 0.45),
    ("Johann Sebastian Bach", "Invention No. 1", "test", 2004, 0.25),
]


def tone(seconds: float, rate: int, frequency: float, channels: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.4 * np.sin(2 * np.pi * frequency * t) * np.exp(-3 * t)
    return np.stack([mono, 0.8 * mono], axis=1) if channels == 2 else mono


def rows() -> list[dict]:
    out = []
    for i, (composer, title, split, year, seconds) in enumerate(PERFORMANCES):
        audio = f"{year}/performance-{i}.wav"
        out.append({"canonical_composer": composer, "canonical_title": title, "split": split, "year": year,
                    "midi_filename": audio.replace(".wav", ".midi"), "audio_filename": audio, "duration": seconds})
    return out


@pytest.fixture
def maestro_folder(tmp_path: Path) -> Path:
    """A MAESTRO v3 folder: the CSV and 44.1 or 48 kHz stereo WAV files in year folders."""
    folder = tmp_path / "maestro-v3.0.0"
    for i, row in enumerate(rows()):
        path = folder / row["audio_filename"]
        path.parent.mkdir(parents=True, exist_ok=True)
        rate = 44100 if i % 2 == 0 else 48000
        sf.write(path, tone(row["duration"], rate, 220.0 * (i + 1), channels=2), rate)
    with (folder / "maestro-v3.0.0.csv").open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows())
    return folder


def test_maestro_catalogue_reads_the_csv_and_both_json_layouts_alike(maestro_folder, tmp_path):
    from_csv = read_catalogue(maestro_folder)
    assert from_csv.version == "3.0.0" and len(from_csv.performances) == len(PERFORMANCES)
    table = rows()
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "maestro-v2.0.0.json").write_text(json.dumps(table))  # v1 and v2: a list of rows
    v3 = tmp_path / "v3"
    v3.mkdir()  # v3's JSON: {column: {row number: value}}
    (v3 / "maestro-v3.0.0.json").write_text(json.dumps(
        {c: {str(k): r[c] for k, r in enumerate(table)} for c in COLUMNS}))
    assert read_catalogue(v2).performances == from_csv.performances == read_catalogue(v3).performances
    assert read_catalogue(v2).version == "2.0.0"


def test_a_catalogue_resaved_by_a_spreadsheet_reads_or_names_the_encoding(maestro_folder, tmp_path, capsys):
    catalogue = maestro_folder / "maestro-v3.0.0.csv"
    plain = read_catalogue(maestro_folder).performances
    text = catalogue.read_text(encoding="utf-8")
    catalogue.write_text(text, encoding="utf-8-sig")  # "CSV UTF-8": a byte-order mark before the first column
    assert read_catalogue(maestro_folder).performances == plain
    catalogue.write_bytes(text.replace("Chopin", "Chopin\u00e9").encode("cp1252"))  # Windows' plain "CSV"
    assert main(["prepare", "maestro", str(maestro_folder), "-o", str(tmp_path / "x.h5"), *SIZE]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "maestro-v3.0.0.csv: not UTF-8 text" in error and "CSV UTF-8" in error, error


def test_maestro_splits_counts_provenance_and_no_leak(maestro_folder, tmp_path):
    from pgsound.audio_io import load_audio
    from pgsound.spectrogram import audio_to_frames

    results = prepare_maestro(tmp_path / "maestro.h5", maestro_folder, CONFIG, split="all", dtype="float32",
                              workers=1)
    by_split = {ds.metadata["split"]: ds for ds, _ in results}
    assert sorted(p.name for p in tmp_path.glob("maestro-*.h5")) == [
        "maestro-test.h5", "maestro-train.h5", "maestro-validation.h5"]
    files_per_split = {}
    for split, ds in by_split.items():
        assert ds.metadata["maestro_version"] == "3.0.0"
        listed = [r for r in rows() if r["split"] == split]
        # Each performance's pictures, in catalogue order, are exactly the sound path's pictures of its file.
        expected = [audio_to_frames(load_audio(maestro_folder / r["audio_filename"], 16000), CONFIG) for r in listed]
        np.testing.assert_allclose(ds.images(32, 32)[:, 0], np.concatenate(expected), atol=1e-5)
        assert [r["audio_filename"] for r in ds.recordings] == [r["audio_filename"] for r in listed]
        assert all(r["split"] == split for r in ds.recordings)
        files_per_split[split] = {r["audio_filename"] for r in ds.recordings}
        # Provenance: picture k of a performance starts k pictures of 992 samples into it.
        index = 0
        for number, frames in enumerate(expected):
            for k in range(len(frames)):
                recording, start = ds.provenance(index)
                assert recording == listed[number] | {"duration": pytest.approx(listed[number]["duration"])}
                assert start == pytest.approx(k * CONFIG.segment_length / 16000)
                index += 1
        assert index == ds.count
    a, b, c = files_per_split.values()
    assert not (a & b or a & c or b & c)


def test_maestro_filters_and_what_they_removed(maestro_folder, tmp_path):
    ((ds, _),) = prepare_maestro(tmp_path / "chopin.h5", maestro_folder, CONFIG, composers=["chopin"],
                                 years=parse_years(["2004-2005"]), workers=1)
    assert [r["canonical_title"] for r in ds.recordings] == ["Ballade No. 1"]
    assert parse_years(["2004,2006", "2008-2009"]) == {2004, 2006, 2008, 2009}
    # 0.5 h is all of train's 1.2 s; 0.6 s of train keeps performances whose durations fit in it.
    ((some, _),) = prepare_maestro(tmp_path / "short.h5", maestro_folder, CONFIG, max_hours=0.6 / 3600, workers=1)
    assert sum(r["duration"] for r in some.recordings) <= 0.6 and some.recordings
    with pytest.raises(UserError, match=r"no performance left \(6 listed; split train removed 3; "
                                        r"--composer liszt removed 3\)"):
        prepare_maestro(tmp_path / "none.h5", maestro_folder, CONFIG, composers=["liszt"], workers=1)
    with pytest.raises(UserError, match="--year '20x4'"):
        parse_years(["20x4"])


def test_maestro_errors_name_the_file(maestro_folder, tmp_path, capsys):
    # A listed recording that is missing is skipped and listed, never fatal.
    (maestro_folder / rows()[1]["audio_filename"]).unlink()
    ((ds, report),) = prepare_maestro(tmp_path / "train.h5", maestro_folder, CONFIG, workers=1)
    assert report.files_used == 2 and [Path(name).name for name, _ in report.skipped] == ["performance-1.wav"]
    assert "performance-1.wav" in ds.metadata["skipped"][0]
    # A catalogue without a column names the file and the column.
    catalogue = maestro_folder / "maestro-v3.0.0.csv"
    text = catalogue.read_text().replace("canonical_title", "title")
    catalogue.write_text(text)
    assert main(["prepare", "maestro", str(maestro_folder), "-o", str(tmp_path / "x.h5"), *SIZE]) == 2
    error = capsys.readouterr().err
    assert "maestro-v3.0.0.csv" in error and "missing column(s) canonical_title" in error
    # One recording listed in two splits would leak.
    table = rows()
    table.append(dict(table[0], split="test"))
    (maestro_folder / "maestro-v3.0.0.csv").unlink()
    (maestro_folder / "maestro-v3.0.0.json").write_text(json.dumps(table))
    with pytest.raises(UserError, match="listed in both train and test"):
        read_catalogue(maestro_folder)
    with pytest.raises(FileNotFoundError, match="no maestro-v"):
        read_catalogue(tmp_path)


# ---- NSynth ------------------------------------------------------------------------------------------------
NOTES = [  # (instrument, family, source, pitch, velocity)
    ("keyboard_acoustic_004", 4, 0, 60, 100),
    ("keyboard_acoustic_004", 4, 0, 72, 75),
    ("keyboard_electronic_001", 4, 1, 64, 50),
    ("mallet_acoustic_062", 5, 0, 48, 127),
    ("bass_synthetic_033", 0, 2, 30, 100),
    ("keyboard_acoustic_004", 4, 0, 96, 25),
]


@pytest.fixture
def nsynth_folder(tmp_path: Path) -> Path:
    """An NSynth split: examples.json and audio/<note>.wav (16 kHz mono; 0.3 s here, 4 s in NSynth)."""
    folder = tmp_path / "nsynth-valid"
    (folder / "audio").mkdir(parents=True)
    examples = {}
    for instrument, family, source, pitch, velocity in NOTES:
        name = f"{instrument}-{pitch:03d}-{velocity:03d}"
        examples[name] = {"note_str": name, "pitch": pitch, "velocity": velocity, "instrument_family": family,
                          "instrument_source": source, "instrument_str": instrument, "sample_rate": 16000,
                          "qualities": [0] * 10}
        frequency = 440.0 * 2 ** ((pitch - 69) / 12)
        sf.write(folder / "audio" / f"{name}.wav", tone(0.3, 16000, frequency, channels=1), 16000)
    (folder / "examples.json").write_text(json.dumps(examples))
    return folder


def test_nsynth_labels_equal_the_json_and_filters_apply(nsynth_folder, tmp_path):
    dataset, report = prepare_nsynth(tmp_path / "keys.h5", nsynth_folder, CONFIG, families=["keyboard,mallet"],
                                     sources=["acoustic"], pitch=(24, 84), labels="pitch", workers=1)
    examples = json.loads((nsynth_folder / "examples.json").read_text())
    kept = sorted(n for n, e in examples.items() if e["instrument_family"] in (4, 5)
                  and e["instrument_source"] == 0 and 24 <= e["pitch"] <= 84)
    assert [r["note_str"] for r in dataset.recordings] == kept and report.files_used == 3
    assert dataset.count == 3  # one picture per note
    assert dataset.labels.tolist() == [examples[n]["pitch"] - 24 for n in kept]
    assert dataset.num_labels == 61 and dataset.metadata["label_names"][60 - 24] == "C4"
    assert dataset.provenance(0)[1] == 0.0
    octaves, _ = prepare_nsynth(tmp_path / "oct.h5", nsynth_folder, CONFIG, pitch=(24, 84), labels="octave",
                                workers=1)
    chosen = [examples[r["note_str"]]["pitch"] for r in octaves.recordings]
    assert octaves.labels.tolist() == [p // 12 - 2 for p in chosen]  # octave 0 = C1..B1
    families, _ = prepare_nsynth(tmp_path / "fam.h5", nsynth_folder, CONFIG, pitch=(0, 127),
                                 labels="instrument_family", workers=1)
    assert families.labels.tolist() == [examples[r["note_str"]]["instrument_family"] for r in families.recordings]
    assert families.num_labels == 11 and families.count == len(NOTES)


def test_nsynth_errors(nsynth_folder, tmp_path, capsys):
    left = r"no note left \(6 listed; --families vocal removed 6; --pitch 24-84 removed 0\)"
    with pytest.raises(UserError, match=left):
        prepare_nsynth(tmp_path / "x.h5", nsynth_folder, CONFIG, families=["vocal"])
    with pytest.raises(UserError, match="--families piano: not one of bass, brass"):
        prepare_nsynth(tmp_path / "x.h5", nsynth_folder, CONFIG, families=["piano"])
    with pytest.raises(UserError, match="--pitch '24-'"):
        parse_pitch_range("24-")
    # A note whose file is missing is skipped and listed.
    (nsynth_folder / "audio" / "keyboard_acoustic_004-060-100.wav").unlink()
    dataset, report = prepare_nsynth(tmp_path / "y.h5", nsynth_folder, CONFIG, workers=1)
    assert [Path(n).name for n, _ in report.skipped] == ["keyboard_acoustic_004-060-100.wav"]
    assert dataset.count == 4  # 96 is outside 24-84; 60-100 is missing
    # An entry without a field names the file, the note and the field.
    examples = json.loads((nsynth_folder / "examples.json").read_text())
    del examples["mallet_acoustic_062-048-127"]["pitch"]
    (nsynth_folder / "examples.json").write_text(json.dumps(examples))
    assert main(["prepare", "nsynth", str(nsynth_folder), "-o", str(tmp_path / "z.h5"), *SIZE]) == 2
    error = capsys.readouterr().err
    assert "examples.json" in error and "'mallet_acoustic_062-048-127' has no pitch" in error


def test_conditional_run_on_nsynth_samples_carry_the_asked_label(nsynth_folder, tmp_path):
    data = tmp_path / "notes.h5"
    assert main(["prepare", "nsynth", str(nsynth_folder), "-o", str(data), *SIZE, "--pitch", "24-84",
                 "--labels", "octave", "--workers", "1"]) == 0
    runs = tmp_path / "runs"
    assert main(["train", "--preset", "smoke", "--data", str(data), "--out", str(runs), "--no-progress",
                 "--set", "conditional=true", "--set", "data_shape=[1,32,32]", "--kimg", "0.1"]) == 0
    (run,) = runs.iterdir()
    out = tmp_path / "generated"
    assert main(["generate", str(run), "--n", "2", "--label", "2", "--out", str(out),
                 "--griffin-lim-iters", "4"]) == 0
    index = json.loads((out / "samples.json").read_text())
    assert index["conditional"] and [s["label"] for s in index["samples"]] == [2, 2]
    assert index["samples"][0]["label_name"] == open_dataset(data).metadata["label_names"][2] == "C3..B3"
    assert len(list(out.glob("samples-*.wav"))) == 2
    assert main(["generate", str(run), "--n", "3", "--out", str(tmp_path / "cycled"), "--griffin-lim-iters", "4"]) == 0
    cycled = json.loads((tmp_path / "cycled" / "samples.json").read_text())["samples"]
    assert [s["index"] for s in cycled] == [0, 1, 2] and [s["label"] for s in cycled] == [0, 1, 2]


def test_maestro_refuses_at_the_start_when_the_splits_would_not_fit(maestro_folder, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    monkeypatch.setattr(shutil, "disk_usage", lambda path: namedtuple("u", "total used free")(2**30, 0, 1000))
    for wav in maestro_folder.rglob("*.wav"):
        wav.unlink()  # were any audio read first, the error would be "no usable audio"
    with pytest.raises(UserError, match=r"no space left on .* for m-train.h5, m-validation.h5, m-test.h5: "
                                        r"0 MiB free, .* needed for \d+ more picture\(s\); nothing was kept, "
                                        r"use --max-hours"):
        prepare_maestro(tmp_path / "m.h5", maestro_folder, CONFIG, split="all", workers=1)
    assert list(tmp_path.glob("*.h5")) == [] and list(tmp_path.glob(".*partial")) == []


def test_nsynth_refuses_at_the_start_when_its_notes_would_not_fit(nsynth_folder, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    import pgsound.datasets.prepare as prepare

    monkeypatch.setattr(shutil, "disk_usage", lambda path: namedtuple("u", "total used free")(2**30, 0, 1000))
    monkeypatch.setattr(prepare, "_audio_file_to_frames", lambda *args: pytest.fail("a note was analysed"))
    with pytest.raises(UserError, match=r"no space left on .* for n.h5: 0 MiB free, .* needed for \d+ more "
                                        r"picture\(s\); nothing was kept, use fewer --families"):
        prepare_nsynth(tmp_path / "n.h5", nsynth_folder, CONFIG, workers=1)
    assert list(tmp_path.glob("*.h5")) == [] and list(tmp_path.glob(".*partial")) == []


def test_a_run_trained_on_maestro_train_is_evaluated_on_its_test_split(maestro_folder, tmp_path, capsys):
    """Evaluation on held-out data is what the splits are for; resuming on it is still refused."""
    out = tmp_path / "maestro.h5"
    assert main(["prepare", "maestro", str(maestro_folder), "--split", "all", "-o", str(out), *SIZE,
                 "--workers", "1"]) == 0
    runs = tmp_path / "runs"
    assert main(["train", "--preset", "smoke", "--data", str(tmp_path / "maestro-train.h5"), "--out", str(runs),
                 "--no-progress", "--set", "data_shape=[1,32,32]", "--kimg", "0.3"]) == 0
    (run,) = runs.iterdir()
    result = tmp_path / "test.json"
    assert main(["evaluate", str(run), "--data", str(tmp_path / "maestro-test.h5"), "--n", "4",
                 "--metrics", "swd", "--json", str(result)]) == 0
    assert json.loads(result.read_text())["data"].endswith("maestro-test.h5")
    assert main(["train", "--resume", str(run), "--data", str(tmp_path / "maestro-test.h5"), "--no-progress"]) == 2
    assert "trained on other data of this shape" in capsys.readouterr().err
    # Pictures of another geometry (hop 16 instead of 32) would be decoded wrongly: refused.
    other = tmp_path / "hop16.h5"
    assert main(["prepare", "maestro", str(maestro_folder), "--split", "test", "-o", str(other),
                 "--size", "32x32", "--n-fft", "64", "--hop", "16", "--workers", "1"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(other), "--n", "4", "--metrics", "swd"]) == 2
    assert "trained on pictures with spectrogram" in capsys.readouterr().err
