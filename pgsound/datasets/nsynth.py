"""NSynth's catalogue: four-second notes with pitch, velocity and instrument labels (book: chapter 11).

An NSynth split folder (``nsynth-train``, ``nsynth-valid``, ``nsynth-test``; Engel et al. 2017) holds
``examples.json``, a mapping from each note's name (``keyboard_acoustic_004-060-025``) to its fields, and
``audio/<name>.wav``, 4 s at 16 kHz mono. GANSynth trained its pitch-conditioned progressive GAN on the
acoustic instruments, MIDI pitch 24 to 84. Here a note's label is one of its pitch, its octave or its
instrument family. Nothing here downloads: the user brings the unpacked split.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgsound.datasets.hdf5 import PreparedDataset
from pgsound.datasets.prepare import (
    PreparationReport,
    Recording,
    spectrogram_metadata,
    write_recordings,
)
from pgsound.datasets.writer import DatasetWriter, check_disk_space
from pgsound.errors import MissingFileError, UserError
from pgsound.representations import channels_of
from pgsound.spectrogram import SpectrogramConfig

FAMILIES: tuple[str, ...] = (
    "bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string", "synth_lead", "vocal",
)
SOURCES: tuple[str, ...] = ("acoustic", "electronic", "synthetic")
FIELDS: tuple[str, ...] = ("pitch", "velocity", "instrument_family", "instrument_source", "instrument_str")
LABELS: tuple[str, ...] = ("pitch", "octave", "instrument_family")
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


@dataclass(frozen=True)
class Note:
    """One entry of ``examples.json``: the note's name, pitch (MIDI), velocity and instrument."""

    name: str
    pitch: int
    velocity: int
    family: int
    source: int
    instrument: str

    def entry(self) -> dict[str, Any]:
        """The record kept as a picture's provenance."""
        return {"note_str": self.name, "pitch": self.pitch, "velocity": self.velocity,
                "instrument_family_str": FAMILIES[self.family], "instrument_source_str": SOURCES[self.source],
                "instrument_str": self.instrument}


def midi_name(pitch: int) -> str:
    """MIDI 60 -> 'C4'."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def read_examples(folder: str | Path) -> list[Note]:
    """Every note of an NSynth split folder's ``examples.json``, sorted by name so that datasets are reproducible.

    An entry without one of :data:`FIELDS` or with a family or source out of range names the file and the note.
    """
    folder = Path(folder)
    path = folder / "examples.json"
    if not folder.is_dir():
        raise MissingFileError(f"{folder}: no such folder (expected an unpacked NSynth split, e.g. nsynth-valid)")
    if not path.is_file():
        raise MissingFileError(f"{path}: no such file (an NSynth split folder holds examples.json and audio/)")
    try:
        table = json.loads(path.read_text(encoding="utf-8-sig"))  # -sig: a byte-order mark an editor added
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: not UTF-8 JSON ({error})") from None
    if not isinstance(table, dict) or not table:
        raise UserError(f"{path}: expected an object mapping note names to their fields")
    notes = []
    for name in sorted(table):
        fields = table[name]
        missing = [f for f in FIELDS if not isinstance(fields, dict) or f not in fields]
        if missing:
            raise UserError(f"{path}: note {name!r} has no {', '.join(missing)} (each note needs {', '.join(FIELDS)})")
        try:
            note = Note(str(name), int(fields["pitch"]), int(fields["velocity"]), int(fields["instrument_family"]),
                        int(fields["instrument_source"]), str(fields["instrument_str"]))
        except (TypeError, ValueError) as error:
            raise UserError(f"{path}: note {name!r}: {error}") from None
        if not 0 <= note.family < len(FAMILIES) or not 0 <= note.source < len(SOURCES):
            raise UserError(f"{path}: note {name!r} has instrument_family {note.family} or instrument_source "
                            f"{note.source} outside NSynth's 0..{len(FAMILIES) - 1} and 0..{len(SOURCES) - 1}")
        notes.append(note)
    return notes


def parse_pitch_range(text: str) -> tuple[int, int]:
    """``"24-84"`` (or ``"60"``) to the inclusive MIDI range; a malformed one is a UserError naming it."""
    match = re.fullmatch(r"\s*(\d{1,3})\s*(?:-\s*(\d{1,3})\s*)?", str(text))
    if not match:
        raise UserError(f"--pitch {text!r}: expected a MIDI range such as 24-84")
    low, high = int(match.group(1)), int(match.group(2) or match.group(1))
    if not 0 <= low <= high <= 127:
        raise UserError(f"--pitch {text!r}: expected 0 <= low <= high <= 127")
    return low, high


def _names(values: list[str] | None, known: tuple[str, ...], option: str) -> list[str] | None:
    if not values:
        return None
    names = [v.strip() for value in values for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UserError(f"{option} {', '.join(unknown)}: not one of {', '.join(known)}")
    return names


def select(
    notes: list[Note],
    path: str | Path,
    families: list[str] | None = None,
    sources: list[str] | None = None,
    pitch: tuple[int, int] | None = None,
) -> list[Note]:
    """The notes of the chosen families and sources within the pitch range (each filter optional).

    ``families`` and ``sources`` are NSynth's names (``keyboard``, ``acoustic``) or comma lists of them.
    Nothing matching is a UserError saying how many notes each filter removed.
    """
    family_names = _names(families, FAMILIES, "--families")
    source_names = _names(sources, SOURCES, "--sources")
    removed: list[tuple[str, int]] = []
    chosen = list(notes)

    def keep(name: str, rule: Any) -> None:
        nonlocal chosen
        kept = [n for n in chosen if rule(n)]
        removed.append((name, len(chosen) - len(kept)))
        chosen = kept

    if family_names:
        keep(f"--families {','.join(family_names)}", lambda n: FAMILIES[n.family] in family_names)
    if source_names:
        keep(f"--sources {','.join(source_names)}", lambda n: SOURCES[n.source] in source_names)
    if pitch is not None:
        keep(f"--pitch {pitch[0]}-{pitch[1]}", lambda n: pitch[0] <= n.pitch <= pitch[1])
    if not chosen:
        counts = "; ".join(f"{name} removed {k}" for name, k in removed)
        raise UserError(f"{path}: no note left ({len(notes)} listed; {counts})")
    return chosen


def labelling(kind: str, pitch: tuple[int, int]) -> tuple[Any, list[str], str]:
    """The label function, the label names and a description, for ``kind`` in :data:`LABELS`.

    ``pitch``: class k is MIDI ``low + k`` of the range. ``octave``: class k is the k-th octave (C to B) that
    the range touches. ``instrument_family``: NSynth's 11 families in its own order.
    """
    low, high = pitch
    if kind == "pitch":
        return (lambda n: n.pitch - low, [midi_name(p) for p in range(low, high + 1)],
                f"MIDI pitch: 0 = {midi_name(low)} (MIDI {low}) .. {high - low} = {midi_name(high)} (MIDI {high})")
    if kind == "octave":
        first = low // 12
        return (lambda n: n.pitch // 12 - first, [f"C{o - 1}..B{o - 1}" for o in range(first, high // 12 + 1)],
                f"octave of the MIDI pitch, C to B: 0 = C{first - 1}..B{first - 1}")
    if kind == "instrument_family":
        return (lambda n: n.family, list(FAMILIES), "NSynth's instrument family: " + ", ".join(
            f"{k} = {f}" for k, f in enumerate(FAMILIES)))
    raise UserError(f"--labels {kind!r}: expected one of {', '.join(LABELS)}")


def prepare_nsynth(
    out: str | Path,
    folder: str | Path,
    config: SpectrogramConfig | None = None,
    families: list[str] | None = None,
    sources: list[str] | None = None,
    pitch: tuple[int, int] = (24, 84),
    labels: str = "pitch",
    dtype: str = "float16",
    workers: int | None = None,
    progress: bool = False,
    representation: str = "magnitude",
) -> tuple[PreparedDataset, PreparationReport]:
    """An NSynth split folder's notes, labelled for a conditional run.

    (book: chapter 11, "(b) Does the label set the pitch?")

    The notes of ``families`` and ``sources`` within ``pitch`` (GANSynth's 24-84 by default) are read from
    ``audio/<note>.wav``; each note gives one picture, its first ``config.segment_length`` samples (at the
    default 512x512 geometry that is 4.088 s: the 4 s note and 0.088 s of zero padding). ``labels`` is
    ``pitch``, ``octave`` or ``instrument_family`` (:func:`pgsound.datasets.labelling`), stored so that
    ``--set conditional=true`` trains a G conditioned on it. A listed note whose file is missing is skipped
    and listed.
    """
    config = config or SpectrogramConfig()
    folder = Path(folder)
    notes = select(read_examples(folder), folder / "examples.json", families, sources, pitch)
    label_of, label_names, described = labelling(labels, pitch)
    note_seconds, picture_seconds = 4.0, config.segment_length / config.sample_rate
    metadata = {
        "source": "nsynth", "split": folder.name, "root": str(folder.resolve()),
        "filters": {"families": families or [], "sources": sources or [], "pitch": list(pitch)},
        "num_labels": len(label_names), "label_names": label_names, "labels": described,
        "note_framing": (f"one picture per note: its first {picture_seconds:.3f} s"
                         + (f" ({picture_seconds - note_seconds:.3f} s of zero padding after the 4 s note)"
                            if picture_seconds > note_seconds else f" of the {note_seconds:g} s note")),
        **spectrogram_metadata(config, representation),
    }
    writer = DatasetWriter(out, config.shape, channels_of(representation), dtype, metadata, with_labels=True,
                           with_provenance=True)
    check_disk_space([(writer, len(notes))], "use fewer --families or --sources, a narrower --pitch, or another -o")
    recordings = [Recording(folder / "audio" / f"{n.name}.wav", label_of(n), n.entry()) for n in notes]
    with writer:
        report = write_recordings(writer, recordings, config, representation, workers, progress,
                                  first_only=True, description="nsynth")
    return PreparedDataset(out), report
