"""The sampled piano (a SoundFont's grand) and the piano music it plays: pitch, velocity, note-offs, pedal, seeds,
bad SoundFonts, and the prepared dataset."""

from __future__ import annotations

import io

import librosa
import mido
import numpy as np
import pytest

from pgsound.cli import main
from pgsound.errors import MissingFileError, UserError
from pgsound.sampled_piano import midi_file, render_notes
from pgsound.synth_piano import Note, midi_to_hz

RATE = 16000


def level_db(audio: np.ndarray, start: float, stop: float) -> float:
    part = audio[int(start * RATE) : int(stop * RATE)]
    return float(10 * np.log10(np.mean(part.astype(np.float64) ** 2) + 1e-20))


@pytest.mark.parametrize("pitch", [36, 48, 60, 69, 81, 93])
def test_a_note_sounds_at_its_midi_frequency(pitch):
    audio = render_notes([Note(pitch, 0.0, 1.5, 0.7)], 1.5, room_level=0)
    f0 = midi_to_hz(pitch)
    # YIN (librosa), an estimator independent of how the note was made, on the sustained part.
    track = librosa.yin(audio[int(0.2 * RATE) : int(1.2 * RATE)], fmin=0.7 * f0, fmax=1.4 * f0, sr=RATE,
                        frame_length=4096)
    assert abs(np.median(track) / f0 - 1) < 0.01, (pitch, float(np.median(track)), f0)


def test_velocity_changes_loudness():
    levels = [level_db(render_notes([Note(60, 0.0, 1.0, v)], 1.0, room_level=0), 0.0, 0.5) for v in (0.25, 0.5, 1.0)]
    assert levels[0] + 3 < levels[1] and levels[1] + 3 < levels[2], levels


def test_notes_end_after_their_key_is_released_and_the_pedal_holds_them():
    note = [Note(55, 0.0, 0.5, 0.8)]
    dry = render_notes(note, 3.0, room_level=0)
    held = render_notes(note, 3.0, room_level=0, pedal=[(0.0, 2.5)])
    attack = level_db(dry, 0.0, 0.3)
    assert level_db(dry, 1.2, 1.6) < attack - 50  # the damper stopped the string
    assert level_db(held, 1.2, 1.6) > attack - 25  # the pedal kept the damper off
    assert level_db(held, 2.9, 3.0) < attack - 50  # and let it fall when released


def test_a_clip_is_as_long_as_asked_and_seeded():
    notes = [Note(60, 0.1, 0.4, 0.6), Note(64, 0.3, 0.4, 0.5), Note(67, 0.9, 2.0, 0.9)]
    a = render_notes(notes, 1.25, seed=3)
    assert a.shape == (20000,) and a.dtype == np.float32 and np.abs(a).max() <= 0.9
    np.testing.assert_array_equal(a, render_notes(notes, 1.25, seed=3))
    assert not np.array_equal(a, render_notes(notes, 1.25, seed=4))  # another room
    np.testing.assert_array_equal(render_notes(notes, 1.25, seed=3, room_level=0),
                                  render_notes(notes, 1.25, seed=4, room_level=0))  # the SoundFont is fixed


def test_the_midi_file_releases_a_key_before_it_strikes_again():
    notes = [Note(60, 0.0, 2.0, 0.5), Note(60, 0.5, 0.25, 1.0), Note(72, 0.25, 5.0, 0.1)]
    song = mido.MidiFile(file=io.BytesIO(midi_file(notes, 1.5, pedal=[(0.1, 0.9)])))
    t, events = 0.0, []
    for message in song:  # times in seconds, read through the file's own tempo and ticks per beat
        t += message.time
        if message.type in ("note_on", "note_off", "control_change"):
            key = message.control if message.type == "control_change" else message.note
            events.append((round(t, 6), message.type, key))
    ons = [(t, n) for t, kind, n in events if kind == "note_on"]
    offs = [(t, n) for t, kind, n in events if kind == "note_off"]
    assert ons == [(0.0, 60), (0.25, 72), (0.5, 60)]
    assert offs == [(0.5, 60), (0.75, 60), (1.5, 72)]  # released for the restrike; the long note cut at the end
    assert events.index((0.5, "note_off", 60)) < events.index((0.5, "note_on", 60))
    assert [(t, n) for t, kind, n in events if kind == "control_change" and n == 64] == [(0.1, 64), (0.9, 64)]
    velocities = [m.velocity for m in song.tracks[0] if m.type == "note_on"]
    assert velocities == [64, 13, 127]


def test_a_note_is_heard_when_it_is_played():
    clip = render_notes([Note(60, 0.5, 0.5, 0.8)], 1.5, room_level=0)
    first = np.argmax(np.abs(clip) > 0.01 * np.abs(clip).max()) / 16000
    assert first == pytest.approx(0.5, abs=0.005)
    onsets = librosa.onset.onset_detect(y=clip, sr=16000, hop_length=128, units="time")
    assert len(onsets) == 1 and onsets[0] == pytest.approx(0.5, abs=0.03)


def test_a_missing_or_broken_soundfont_is_one_error_naming_it(tmp_path):
    note = [Note(60, 0.0, 0.5, 0.5)]
    with pytest.raises(MissingFileError, match="nothere.sf2"):
        render_notes(note, 0.5, soundfont=tmp_path / "nothere.sf2")
    text = tmp_path / "text.sf2"
    text.write_text("not a soundfont\n" * 10)
    with pytest.raises(UserError, match=r"text\.sf2: not a SoundFont 2"):
        render_notes(note, 0.5, soundfont=text)
    from pgsound.sampled_piano import default_soundfont

    truncated = tmp_path / "cut.sf2"
    truncated.write_bytes(default_soundfont().read_bytes()[:100_000])
    with pytest.raises(UserError, match=r"cut\.sf2: truncated SoundFont"):
        render_notes(note, 0.5, soundfont=truncated)


def test_prepare_sampled_piano_refuses_a_broken_soundfont_before_any_work(tmp_path, capsys):
    bad = tmp_path / "bad.sf2"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00junk")
    assert main(["prepare", "sampled-piano", "--minutes", "1", "--size", "32x32", "--soundfont", str(bad),
                 "-o", str(tmp_path / "s.h5")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.sf2" in err[0] and "SoundFont" in err[0]
    assert not list(tmp_path.glob("*.h5")) and not list(tmp_path.glob(".*partial"))


def test_a_machine_without_the_synthesizer_is_told_so_before_any_work(tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "midirenderer", None)  # import fails, as on Linux ARM (no wheel)
    with pytest.raises(UserError, match="needs the midirenderer package"):
        render_notes([Note(60, 0.0, 0.5, 0.5)], 0.5)
    assert main(["prepare", "sampled-piano", "--minutes", "1", "--size", "32x32", "-o", str(tmp_path / "s.h5")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "midirenderer" in err[0] and not list(tmp_path.iterdir())
