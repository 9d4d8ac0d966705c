"""``pgsound prepare ...`` and ``pgsound dataset info``: building and inspecting datasets (book: chapters 5, 9)."""

from __future__ import annotations

import argparse

from pgsound.commands.options import add_geometry_options, spectrogram_config


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
    audio.add_argument("--workers", type=int, help="worker processes (default: every core)")
    audio.set_defaults(func=run_audio)

    images = kinds.add_parser("images", help="a folder of PNG/JPEG images of one power-of-two size")
    images.add_argument("folder", help="folder of images, searched recursively")
    images.add_argument("-o", "--out", required=True, help="the dataset file to write (.h5)")
    images.set_defaults(func=run_images)

    piano = kinds.add_parser("synthetic-piano", help="the embedded synthetic piano, as spectrograms (no download)")
    piano.add_argument("--minutes", type=float, default=10.0, help="minutes of piano to synthesise (default 10)")
    piano.add_argument("--seed", type=int, default=0)
    piano.add_argument("--labels", choices=("key", "octave"), default="key",
                       help="label of each picture: the key of its root (88 classes) or its octave (8)")
    _spectrogram_options(piano)
    piano.set_defaults(func=run_synthetic_piano)

    shapes = kinds.add_parser("synthetic-shapes", help="coloured shapes on gradients (the image chapters' data)")
    shapes.add_argument("--count", type=int, default=4096, help="number of images (default 4096)")
    shapes.add_argument("--resolution", type=int, default=32, help="a power of two (default 32)")
    shapes.add_argument("--seed", type=int, default=0)
    shapes.add_argument("-o", "--out", required=True, help="the dataset file to write (.h5)")
    shapes.set_defaults(func=run_synthetic_shapes)

    dataset = subparsers.add_parser("dataset", help="inspect a prepared dataset")
    actions = dataset.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    info = actions.add_parser("info", help="levels, count, channels, labels and metadata of a dataset")
    info.add_argument("path", help="a prepared dataset (ours or NVIDIA's h5tool.py file)")
    info.set_defaults(func=run_info)


def _spectrogram_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--out", required=True, help="the dataset file to write (.h5)")
    add_geometry_options(parser)
    parser.add_argument("--dtype", choices=("float16", "float32"), default="float16", help="storage (default float16)")
    parser.add_argument("--representation", choices=("magnitude", "mag-if", "mel"), default="magnitude",
                        help="log magnitude (default, the paper's), magnitude + instantaneous frequency, or mel bands")


def run_audio(args: argparse.Namespace) -> int:
    from pgsound.datasets.prepare import prepare_audio

    dataset, report = prepare_audio(
        args.out, args.folder, spectrogram_config(args), dtype=args.dtype, workers=args.workers, progress=True,
        representation=args.representation,
    )
    print(report.summary())
    print(dataset)
    return 0


def run_images(args: argparse.Namespace) -> int:
    from pgsound.datasets.prepare import prepare_images

    print(prepare_images(args.out, args.folder, progress=True))
    return 0


def run_synthetic_piano(args: argparse.Namespace) -> int:
    from pgsound.datasets.prepare import prepare_synthetic_piano

    print(prepare_synthetic_piano(args.out, spectrogram_config(args), minutes=args.minutes, seed=args.seed,
                                  dtype=args.dtype, representation=args.representation, labels=args.labels))
    return 0


def run_synthetic_shapes(args: argparse.Namespace) -> int:
    from pgsound.datasets.prepare import prepare_synthetic_shapes

    print(prepare_synthetic_shapes(args.out, count=args.count, resolution=args.resolution, seed=args.seed))
    return 0


def run_info(args: argparse.Namespace) -> int:
    from pgsound.datasets import open_dataset

    dataset = open_dataset(args.path)
    print(dataset)
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
    for key, value in dataset.metadata.items():
        text = str(value)
        print(f"{key}: {text if len(text) <= 160 else text[:157] + '...'}")
    return 0
