"""The note classifier: its analysis, its network, its training data, the shipped weights, and the metrics on it."""

from __future__ import annotations

import json

import librosa
import numpy as np
import pytest
import torch

from pgsound import note_classifier, note_training
from pgsound.errors import MissingFileError, UserError
from pgsound.metrics import evaluate_metrics, notes
from pgsound.note_classifier import LOWEST_KEY, ROW_PITCHES, ROWS_PER_SEMITONE, SAMPLE_RATE, NoteClassifier
from pgsound.spectrogram import SpectrogramConfig
from pgsound.synth_piano import Note

SECOND = 16384


def sine(hz: float, seconds: float = 1.024, level: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (level * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_filterbank_rows_sit_on_the_semitones():
    bank = note_classifier._filterbank()
    np.testing.assert_allclose(bank.sum(axis=1), 1.0, rtol=1e-5)
    bin_hz = SAMPLE_RATE / note_classifier.N_FFT
    for pitch in (21, 45, 69, 100):
        row = ROWS_PER_SEMITONE * (pitch - ROW_PITCHES[0]) + 1
        expected = librosa.midi_to_hz(pitch)  # an independent pitch-to-frequency formula
        assert abs(bank[row].argmax() * bin_hz - expected) <= bin_hz / 2 + 1e-9


def test_analysis_puts_a_tone_on_its_key_and_ignores_loudness():
    for pitch in (33, 69, 96):
        tone = torch.from_numpy(sine(librosa.midi_to_hz(pitch)))[None]
        db = note_classifier.log_frequency_spectrogram(tone)[0, 0]
        assert int(db.mean(dim=1).argmax()) // ROWS_PER_SEMITONE + ROW_PITCHES[0] == pitch
        quiet = note_classifier.log_frequency_spectrogram(tone * 0.01)[0, 0]
        torch.testing.assert_close(quiet, db, atol=1e-4, rtol=0)
        assert float(db.max()) == 0.0 and float(db.min()) >= -1.0


def test_network_shapes_for_clips_of_one_to_five_seconds():
    model = NoteClassifier().eval()
    for samples in (SECOND, 80000):
        audio = torch.randn(3, samples) * 0.1
        assert model(audio).shape == (3, 88)
        assert model.embeddings(audio).shape == (3, note_classifier.EMBEDDING_SIZE)
    with pytest.raises(ValueError, match="at least 2048 samples"):
        model(torch.zeros(2, 1000))


def test_load_round_trip_and_bad_files(tmp_path):
    torch.manual_seed(0)
    model = NoteClassifier(width=4).eval()
    torch.save(model.state_dict(), tmp_path / "w.pt")
    loaded = note_classifier.load(tmp_path / "w.pt")
    audio = torch.randn(2, SECOND) * 0.1
    torch.testing.assert_close(loaded(audio), model(audio))
    with pytest.raises(MissingFileError, match="nothere.pt"):
        note_classifier.load(tmp_path / "nothere.pt")
    torch.save({"keys.weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="other.pt: not a note classifier"):
        note_classifier.load(tmp_path / "other.pt")


def test_sounding_keys_follow_release_and_pedal():
    held = Note(60, 0.1, 0.4, 0.8)  # released at 0.5 s
    later = Note(64, 1.5, 0.3, 0.8)
    assert note_training.sounding_keys([held, later], 0.0, 1.0).nonzero()[0].tolist() == [60 - LOWEST_KEY]
    # Released 0.5 s, damper falls by 0.65 s: silent in a clip from 0.8 s, unless the pedal holds it.
    assert not note_training.sounding_keys([held], 0.8, 1.8).any()
    assert note_training.sounding_keys([held], 0.8, 1.8, pedal=[(0.3, 1.2)])[60 - LOWEST_KEY] == 1
    assert note_training.sounding_keys([later], 0.0, 1.52).sum() == 0  # struck in the last 30 ms


def test_training_is_seeded_and_learns_a_small_set():
    clips = note_training.single_notes("additive", 0, pitches=[45, 57, 69, 81], velocities=(0.5, 0.9))
    assert clips.audio.shape == (8, SECOND) and clips.keys.sum(axis=1).tolist() == [1.0] * 8
    first = note_training.train(clips, epochs=30, batch_size=8, lr=1e-2, width=4)
    second = note_training.train(clips, epochs=30, batch_size=8, lr=1e-2, width=4)
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert note_training.scores(first, clips)["pitch_accuracy"] == 1.0
    # The embedding is scaled to unit root-mean-square over the training clips; the logits are not scaled.
    with torch.no_grad():
        features, logits = first.outputs(torch.from_numpy(clips.audio))
    assert float(features.pow(2).mean()) == pytest.approx(1.0, rel=1e-5)
    torch.testing.assert_close(logits, first(torch.from_numpy(clips.audio)))


# ---- the shipped classifier -------------------------------------------------------------------------------------
def fresh_notes(piano: str, pitches=range(33, 97, 3), seed: int = 11) -> note_training.Clips:
    """Single notes at seeds the shipped classifier was not trained on (it used 0 and 1)."""
    return note_training.single_notes(piano, seed, pitches=pitches, velocities=(0.5, 0.9))


def test_the_shipped_classifier_and_its_manifest():
    size = note_classifier.WEIGHTS.stat().st_size
    assert size < 2 * 2**20
    record = note_classifier.manifest()
    assert record["command"].endswith("benchmarks/train_note_classifier.py")
    assert record["validation"]["pitch_accuracy"] >= 0.9
    assert {"recipe", "commit", "training_seconds", "validation"} <= set(record)
    state = torch.load(note_classifier.WEIGHTS, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())


@pytest.mark.parametrize("piano", note_training.PIANOS)
def test_shipped_classifier_names_the_key_of_new_notes(piano):
    clips = fresh_notes(piano)
    assert notes.pitch_accuracy(clips.audio, clips.pitch) >= 0.9
    probabilities = notes.note_probabilities(clips.audio)
    assert probabilities.shape == (len(clips), 88) and probabilities.min() >= 0 and probabilities.max() <= 1


def test_distances_are_near_zero_for_one_set_and_grow_with_damage():
    clips = fresh_notes("sampled", pitches=range(36, 90, 2)).audio
    rng = np.random.default_rng(0)
    rms = np.sqrt(np.mean(clips**2, axis=1, keepdims=True))
    distances = [notes.frechet_distance(clips, clips + rms * level * rng.standard_normal(clips.shape)
                                        .astype(np.float32)) for level in (0.03, 0.3, 3.0)]
    assert abs(notes.frechet_distance(clips, clips)) < 1e-3 * distances[0]  # rounding only (54 clips, d = 128)
    assert distances[0] < distances[1] < distances[2]
    transposed = fresh_notes("sampled", pitches=range(36 + 7, 90 + 7, 2)).audio  # a fifth up
    assert notes.frechet_distance(clips, transposed) > 5 * notes.frechet_distance(
        clips, fresh_notes("sampled", pitches=range(36, 90, 2), seed=12).audio)


def test_inception_score_counts_the_keys_played():
    clips = fresh_notes("additive", pitches=range(36, 90, 2))
    one_key = fresh_notes("additive", pitches=[60] * 27)
    many = notes.inception_score(clips.audio)
    assert 1.0 <= notes.inception_score(one_key.audio) < 3 < many <= 88


def test_metric_functions_refuse_short_or_broken_audio():
    with pytest.raises(ValueError, match="at least 1024 samples"):
        notes.embeddings(np.zeros((2, 1000), np.float32))
    # A half-second clip is heard as the first half of a second with silence after it.
    clip = fresh_notes("additive", pitches=[60]).audio[:1]
    torch.testing.assert_close(notes.embeddings(clip[:, :8192]), notes.embeddings(
        np.pad(clip[:, :8192], ((0, 0), (0, 8192)))))
    bad = np.zeros((2, SECOND), np.float32)
    bad[0, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        notes.note_probabilities(bad)
    with pytest.raises(ValueError, match="one MIDI pitch per clip"):
        notes.pitch_accuracy(np.zeros((3, SECOND), np.float32), [60, 61])


def test_evaluate_metrics_decodes_pictures_for_the_notes_metrics():
    from pgsound.representations import encode

    config = SpectrogramConfig(n_fft=256, hop_length=128, n_bins=128, n_frames=128)  # 1.024 s
    sound = fresh_notes("sampled", pitches=range(36, 90, 2)).audio
    pictures = torch.from_numpy(encode(sound, config))
    reals, held = pictures[::2], pictures[1::2]
    noise = (torch.rand_like(reals) * 2 - 1)
    metadata = {"spectrogram": config.to_dict()}
    values = evaluate_metrics(reals, noise, ["notes"], metadata=metadata, device="cpu", held_out_reals=held,
                              options={"notes": {"pitches": np.arange(36, 90, 2)}})
    assert values["fid_notes_real"] < values["fid_notes"]
    assert values["pitch_accuracy_real"] > values["pitch_accuracy"]
    assert {"kid_notes", "kid_notes_real", "is_notes", "is_notes_real"} <= set(values)
    short = SpectrogramConfig.for_shape(32, 32)
    with pytest.raises(UserError, match="at least 1024 samples"):  # 32 frames at hop 8
        evaluate_metrics(reals[:, :, :32, :32], noise[:, :, :32, :32], ["notes"], metadata={
            "spectrogram": short.to_dict()})
    with pytest.raises(UserError, match="'spectrogram' settings"):
        evaluate_metrics(reals, noise, ["notes"], metadata={"source": "shapes"})
    # While growing, a lower level's pictures are no whole sound: left out with a warning, as SWD at 4x4.
    with pytest.warns(UserWarning, match="notes left out: 64x64 pictures are a lower level"):
        low = evaluate_metrics(reals[:, :, ::2, ::2], noise[:, :, ::2, ::2], ["ms_ssim", "notes"],
                               metadata=metadata, device="cpu")
    assert "ms_ssim_fake" in low and "fid_notes" not in low


def test_ndb_bins_that_cannot_be_made_are_refused_before_any_metric():
    x = torch.rand(60, 1, 16, 16)
    with pytest.raises(UserError, match="NDB with 50 bins needs 100 reals"):
        evaluate_metrics(x, x, ["swd", "ndb"], options={"ndb": {"num_bins": 50}})
    assert evaluate_metrics(x, x.flip(0), ["ndb"], options={"ndb": {"num_bins": 3}})["ndb_bins"] == 3


def test_manifest_is_json_with_held_out_piano_record():
    record = json.loads(note_classifier.MANIFEST.read_text())
    assert isinstance(record["held_out_piano"], dict)


@pytest.mark.slow
def test_pgsound_evaluate_pretrained_with_the_notes_metrics(tmp_path, capsys):
    from pgsound.cli import main

    data, written = tmp_path / "music.h5", tmp_path / "m.json"
    assert main(["prepare", "sampled-piano", "--size", "128x128", "--minutes", "0.4", "-o", str(data)]) == 0
    assert main(["evaluate", "--pretrained", "piano-cpu", "--data", str(data), "--metrics", "notes", "--n", "8",
                 "--json", str(written)]) == 0
    result, table = json.loads(written.read_text())["metrics"], capsys.readouterr().out
    for key in ("fid_notes", "fid_notes_real", "kid_notes", "kid_notes_real", "is_notes", "is_notes_real"):
        assert np.isfinite(result[key]) and f"{result[key]:.4f}" in table
    assert main(["evaluate", "--pretrained", "piano-cpu", "--data", str(data), "--ndb-bins", "1"]) == 2
    assert "argument --ndb-bins: expected a whole number from 2" in capsys.readouterr().err


@pytest.mark.slow
def test_a_run_conditioned_on_keys_reports_pitch_accuracy(tmp_path):
    from pgsound.config import resolve_config
    from pgsound.datasets import open_dataset, prepare_synthetic_piano
    from pgsound.evaluate import evaluate_run
    from pgsound.trainer import train

    config = SpectrogramConfig(n_fft=256, hop_length=128, n_bins=32, n_frames=32)  # 0.26 s pictures
    data = tmp_path / "keys.h5"
    prepare_synthetic_piano(data, config, minutes=0.5, seed=0, labels="key")
    assert open_dataset(data).metadata["label_pitches"] == list(range(21, 109))
    run_config = resolve_config("smoke", ["data_shape=[1, 32, 32]", "conditional=true", "schedule.fixed_level=3",
                                          "schedule.minibatch_default=4"])
    train(run_config, open_dataset(data), tmp_path / "run", max_steps=2, progress=False)
    values = evaluate_run(tmp_path / "run", data=data, n=16, metrics=["notes"], device="cpu")["metrics"]
    assert 0.0 <= values["pitch_accuracy"] <= 1.0 and values["pitch_accuracy_real"] > values["pitch_accuracy"]
