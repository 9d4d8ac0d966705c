"""``pgsound prepare ...`` and ``pgsound dataset info``: building and inspecting datasets (book: chapters 5, 9)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from pgsound.commands.options import (
    OneLineParser,
    add_geometry_options,
    add_seed_option,
    check_output,
    integer,
    number,
    spectrogram_config,
)
from pgsound.errors import UserError
from pgsound.sampled_piano import DEFAULT_SOUNDFONT

MAX_MINUTES = 100_000.0  # about 70 days of audio: a typo, not a dataset


def register(subparsers: argparse._SubParsersAction) -> None:
    prepare = subparsers.add_parser(
        "prepare",
        help="build a prepared multi-resolution dataset (.h5)",
        description="Build one HDF5 file holding every level from full size down to 1x1 (NVIDIA's layout).",
    )
    kinds = prepare.add_subparsers(dest="kind", metavar="KIND")
    kinds.required = True

    audio = kinds.add_parser("audio", help="a folder of recordings to spectrograms (WAV, FLAC, OGG, MP3)")
    audio.add_argument("folder", help="folder of recordings, searched recursively")
    _spectrogram_options(audio)
    audio.add_argument("--workers", type=integer(1, 1024), help="worker processes (default: every core)")
    audio.set_defaults(func=run_audio)

    maestro = kinds.add_parser(
        "maestro", help="MAESTRO's recordings by its own splits (train, validation, test)",
        description="Read an unpacked MAESTRO folder (v1, v2 or v3: maestro-v*.csv or .json beside the audio) and "
                    "prepare one dataset per split asked for; pictures of one performance stay in its split.")
    maestro.add_argument("folder", help="the unpacked MAESTRO folder (holds maestro-v*.csv and the year folders)")
    maestro.add_argument("--split", choices=("train", "validation", "test", "all"), default="train",
                         help="the split to prepare (default train); all writes OUT-train, OUT-validation, OUT-test")
    maestro.add_argument("--composer", action="append", metavar="NAME",
                         help="keep performances whose composer contains NAME, any case (repeatable)")
    maestro.add_argument("--year", action="append", metavar="YEARS",
                         help="keep these competition years: 2004, 2004-2009 or 2004,2006 (repeatable)")
    maestro.add_argument("--max-hours", type=number(0, 1e4, low_open=True), metavar="H",
                         help="at most H hours of audio per split, composers mixed (default: all)")
    _spectrogram_options(maestro)
    maestro.add_argument("--workers", type=integer(1, 1024), help="worker processes (default: every core)")
    maestro.set_defaults(func=run_maestro)

    nsynth = kinds.add_parser(
        "nsynth", help="NSynth notes with pitch, octave or instrument labels",
        description="Read an unpacked NSynth split folder (examples.json and audio/) and prepare one picture per "
                    "note, labelled for a conditional run (--set conditional=true).")
    nsynth.add_argument("folder", help="an NSynth split folder, e.g. nsynth-train")
    nsynth.add_argument("--families", action="append", metavar="LIST",
                        help="instrument families to keep, e.g. keyboard,mallet (default: all)")
    nsynth.add_argument("--sources", action="append", metavar="LIST",
                        help="instrument sources to keep: acoustic, electronic, synthetic (default: all)")
    nsynth.add_argument("--pitch", default="24-84", help="MIDI pitch range kept (default 24-84, GANSynth's)")
    nsynth.add_argument("--labels", choices=("pitch", "octave", "instrument_family"), default="pitch",
                        help="the label of each picture (default pitch)")
    _spectrogram_options(nsynth)
    nsynth.add_argument("--workers", type=integer(1, 1024), help="worker processes (default: every core)")
    nsynth.set_defaults(func=run_nsynth)

    images = kinds.add_parser("images", help="a folder of PNG/JPEG images of one power-of-two size")
    images.add_argument("folder", help="folder of images, searched recursively")
    images.add_argument("-o", "--out", required=True, help="the dataset file to write (.h5)")
    images.set_defaults(func=run_images)

    piano = kinds.add_parser("synthetic-piano", help="the embedded synthetic piano, as spectrograms (no download)")
    piano.add_argument("--minutes", type=number(0, MAX_MINUTES, low_open=True), default=10.0,
                       help="minutes of piano to synthesise (default 10)")
    add_seed_option(piano)
    piano.add_argument("--labels", choices=("key", "octave"), default="key",
                       help="label of each picture: the key of its root (88 classes) or its octave (8)")
    _spectrogram_options(piano)
    piano.set_defaults(func=run_synthetic_piano)

    sampled = kinds.add_parser(
        "sampled-piano", help="public-domain piano music on a sampled piano, as spectrograms (no download)",
        description="Play excerpts of the scores in music21's corpus (chorales, keyboard pieces, quartets as piano "
                    "reductions) with pedal and phrasing on a SoundFont's grand piano in a hall, and cut the "
                    "performances into pictures as 'prepare audio' cuts recordings. Pictures carry no labels.")
    sampled.add_argument("--minutes", type=number(0, MAX_MINUTES, low_open=True), default=10.0,
                         help="minutes of music to play (default 10)")
    add_seed_option(sampled)
    sampled.add_argument("--soundfont", metavar="SF2",
                         help="a SoundFont 2 file with a piano at program 0 (default: {1} from the {0} wheel)"
                         .format(*DEFAULT_SOUNDFONT))
    _spectrogram_options(sampled)
    sampled.set_defaults(func=run_sampled_piano)

    shapes = kinds.add_parser("synthetic-shapes", help="coloured shapes on gradients (the image chapters' data)")
    shapes.add_argument("--count", type=integer(1, 10_000_000), default=4096, help="number of images (default 4096)")
    shapes.add_argument("--resolution", type=integer(4, 1024), default=32, help="a power of two (default 32)")
    add_seed_option(shapes)
    shapes.add_argument("-o", "--out", required=True, help="the dataset file to write (.h5)")
    shapes.set_defaults(func=run_synthetic_shapes)

    dataset = subparsers.add_parser("dataset", help="inspect a prepared dataset")
    actions = dataset.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    info = actions.add_parser("info", help="levels, count, channels, labels and metadata of a dataset")
    info.add_argument("path", help="a prepared dataset (ours or NVIDIA's h5tool.py file)")
    info.add_argument("--quick", action="store_true",
                      help="skip reading every chunk against its checksum (the default reads them all)")
    info.set_defaults(func=run_info)


def _spectrogram_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--out", required=True, help="the dataset file to write (.h5)")
    add_geometry_options(parser)
    parser.add_argument("--dtype", choices=("float16", "float32"), default="float16", help="storage (default float16)")
    parser.add_argument("--representation", choices=("magnitude", "mag-if", "mel"), default="magnitude",
                        help="log magnitude (default, the paper's), magnitude + instantaneous frequency, or mel bands")


DATASET_SUFFIXES = (".h5", ".hdf5")


def _check_dataset_output(args: argparse.Namespace, reads: tuple[str, ...] = ()) -> None:
    """``-o`` must name an HDF5 file that is none of the inputs, checked before any work."""
    check_output(args.out, "-o", "a prepared dataset", suffixes=DATASET_SUFFIXES,
                 inputs=[getattr(args, "folder", None)], reads=reads)


def run_audio(args: argparse.Namespace) -> int:
    from pgsound.audio_io import AUDIO_EXTENSIONS
    from pgsound.datasets import prepare_audio

    _check_dataset_output(args, reads=AUDIO_EXTENSIONS)
    dataset, report = prepare_audio(
        args.out, args.folder, spectrogram_config(args), dtype=args.dtype, workers=args.workers, progress=True,
        representation=args.representation,
    )
    print(report.summary())
    print(dataset)
    return 0


def run_maestro(args: argparse.Namespace) -> int:
    from pgsound.audio_io import AUDIO_EXTENSIONS
    from pgsound.datasets import prepare_maestro
    from pgsound.datasets.maestro import parse_years

    _check_dataset_output(args, reads=AUDIO_EXTENSIONS)
    years = parse_years(args.year) if args.year else None
    results = prepare_maestro(
        args.out, args.folder, spectrogram_config(args), split=args.split, composers=args.composer, years=years,
        max_hours=args.max_hours, dtype=args.dtype, workers=args.workers, progress=True,
        representation=args.representation,
    )
    for dataset, report in results:
        print(report.summary())
        print(dataset)
    return 0


def run_nsynth(args: argparse.Namespace) -> int:
    from pgsound.audio_io import AUDIO_EXTENSIONS
    from pgsound.datasets import prepare_nsynth
    from pgsound.datasets.nsynth import parse_pitch_range

    _check_dataset_output(args, reads=AUDIO_EXTENSIONS)
    dataset, report = prepare_nsynth(
        args.out, args.folder, spectrogram_config(args), families=args.families, sources=args.sources,
        pitch=parse_pitch_range(args.pitch), labels=args.labels, dtype=args.dtype, workers=args.workers,
        progress=True, representation=args.representation,
    )
    print(report.summary())
    print(dataset)
    return 0


def run_images(args: argparse.Namespace) -> int:
    from pgsound.datasets import prepare_images
    from pgsound.datasets.images import IMAGE_SUFFIXES

    _check_dataset_output(args, reads=IMAGE_SUFFIXES)
    print(prepare_images(args.out, args.folder, progress=True))
    return 0


def run_synthetic_piano(args: argparse.Namespace) -> int:
    from pgsound.datasets import prepare_synthetic_piano

    _check_dataset_output(args)
    print(prepare_synthetic_piano(args.out, spectrogram_config(args), minutes=args.minutes, seed=args.seed,
                                  dtype=args.dtype, representation=args.representation, labels=args.labels))
    return 0


def run_sampled_piano(args: argparse.Namespace) -> int:
    from pgsound.datasets import prepare_sampled_piano

    _check_dataset_output(args)
    print(prepare_sampled_piano(args.out, spectrogram_config(args), minutes=args.minutes, seed=args.seed,
                                dtype=args.dtype, progress=True, representation=args.representation,
                                soundfont=args.soundfont))
    return 0


def run_synthetic_shapes(args: argparse.Namespace) -> int:
    from pgsound.datasets import prepare_synthetic_shapes

    _check_dataset_output(args)
    print(prepare_synthetic_shapes(args.out, count=args.count, resolution=args.resolution, seed=args.seed))
    return 0


def run_info(args: argparse.Namespace) -> int:
    from pgsound.datasets import open_dataset

    dataset = open_dataset(args.path)
    print(dataset)
    if not args.quick and hasattr(dataset, "verify"):  # a damaged chunk is a one-line error naming its level
        read = dataset.verify()
        found = "every chunk matches its checksum" if dataset.checksums else "readable, but written without checksums"
        print(f"verified: {read / 1e6:.1f} MB read, {found}")
    print(f"{'level':>10} {'shape':>18} {'dtype':>8} {'MB':>9}")
    for h, w in sorted(dataset.levels, key=lambda s: s[0] * s[1]):
        ds = dataset.levels[(h, w)]
        megabytes = ds.size * ds.dtype.itemsize / 1e6
        print(f"{f'{h}x{w}':>10} {str(tuple(ds.shape)):>18} {ds.dtype.name:>8} {megabytes:>9.1f}")
    if dataset.labels is not None:
        counts = dataset.label_counts()
        detail = ", ".join(f"{k}: {n}" for k, n in enumerate(counts)) if len(counts) <= 16 else (
            f"{int((counts > 0).sum())} used, {int(counts.min())} to {int(counts.max())} images each")
        print(f"labels ({dataset.num_labels}): {detail}")
    if dataset.recordings:
        first, start = dataset.provenance(0)
        print(f"provenance: {len(dataset.recordings)} recordings; picture 0 is {start:.2f} s into {first}")
    for key, value in dataset.metadata.items():
        text = str(value)
        print(f"{key}: {text if len(text) <= 160 else text[:157] + '...'}")
    return 0


def regenerate_pretrained_data(name: str, out: str | Path) -> Path:
    """Run a shipped run's recorded ``pgsound prepare`` command(s) to write its real data to ``out``.

    The embedded synthetic datasets are seeded, so this is the data the run was trained and measured on. The
    manifest records command lines; they are parsed by this module's own parser, as ``pgsound`` would.
    """
    from pgsound import pretrained

    parser = OneLineParser(prog="pgsound")
    register(parser.add_subparsers(dest="command"))
    out = Path(out)
    for command in pretrained.commands(pretrained.manifest(name), out):
        if command[0] != "prepare":
            continue
        args = parser.parse_args(command)
        if args.func(args) not in (0, None):
            raise UserError(f"regenerating the data of {name!r} failed: pgsound {shlex.join(command)}")
    return out
