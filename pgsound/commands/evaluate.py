"""``pgsound evaluate``: metrics of a trained run against its data (book: chapter 8, Measuring a GAN)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pgsound.commands.options import (
    add_device_option,
    add_run_options,
    add_seed_option,
    check_output,
    integer,
    pretrained_or_run,
)
from pgsound.errors import UserError
from pgsound.metrics import METRICS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="measure a run's generator against real data (SWD, MS-SSIM, NDB, audio consistency, notes)",
        description="Generate --n images from the run's EMA generator, compare them with --n real images at the "
        "same level, print a table and write RUN/metrics-<kimg>kimg.json (or --json).",
    )
    add_run_options(parser, "a run shipped with the package instead of RUN; its data is regenerated from the "
                    "manifest's recipe unless --data is given")
    parser.add_argument("--data", help="prepared dataset (default: the one the run was trained on)")
    parser.add_argument("--n", type=integer(2, 1 << 20), default=4096,
                        help="images per side (default 4096; the paper used 16384)")
    parser.add_argument("--metrics", nargs="+", choices=METRICS, metavar="METRIC",
                        help=f"which metrics: {', '.join(METRICS)} (default: all that apply to the data except "
                        "notes, which decodes every picture to sound)")
    parser.add_argument("--ndb-bins", type=integer(2, 1 << 16),
                        help="NDB's number of bins (default: one per 10 reals, at most "
                        "50, as GANSynth used)")
    add_seed_option(parser)
    parser.add_argument("--json", dest="json_path", help="where to write the JSON result")
    add_device_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from pgsound.commands.prepare import regenerate_pretrained_data
    from pgsound.errors import CommandError
    from pgsound.evaluate import evaluate_run
    from pgsound.files import atomic_write, check_writable_folder
    from pgsound.run_folder import run_of

    run, data = pretrained_or_run(args), args.data
    # The default metrics file goes in the run folder; a shipped run's, and its regenerated data, go here.
    folder = Path.cwd() if args.pretrained else Path(run) if Path(run).is_dir() else run_of(run)
    if args.json_path:
        check_output(args.json_path, "--json", "the metrics", suffixes=(".json",), inputs=[run, data])
    elif args.pretrained or Path(run).exists():  # the default file goes in the run folder (or here), checked
        # before minutes of work; a missing run is evaluate_run's error
        try:
            check_writable_folder(folder, "the metrics file's folder")
        except UserError as error:
            raise CommandError(f"{error}; pass --json PATH") from None
    if args.pretrained and data is None:
        data = Path(f"{args.pretrained}-data.h5")
        if data.exists():
            check_recipe_data(args.pretrained, run, data)
        else:
            try:
                check_writable_folder(folder / data, "the regenerated data")
            except UserError as error:
                raise CommandError(f"{error}; run it from a writable folder, or pass --data PATH") from None
            print(f"regenerating the data of {args.pretrained} from its manifest into {data}")
            regenerate_pretrained_data(args.pretrained, data)
    options = {"ndb": {"num_bins": args.ndb_bins}} if args.ndb_bins else None
    result = evaluate_run(run, data=data, n=args.n, metrics=args.metrics, seed=args.seed,
                          device=args.device, options=options)
    if not result["metrics"]:
        raise CommandError("no metric was computed")
    width = max(len(k) for k in result["metrics"])
    print(f"{result['checkpoint']}  ({result['kimg']:.1f} kimg, level {result['level']}, {args.n} images per side)")
    for key, value in result["metrics"].items():
        print(f"  {key:<{width}}  {value:.4f}" if isinstance(value, float) else f"  {key:<{width}}  {value}")
    default = folder / f"metrics-{args.pretrained + '-' if args.pretrained else ''}{int(result['kimg']):06d}kimg.json"
    path = Path(args.json_path) if args.json_path else default
    with atomic_write(path) as temp:
        temp.write_text(json.dumps(result, indent=2, default=str))
    print(f"written {path}")
    return 0


def check_recipe_data(name: str, checkpoint: str, data: Path) -> None:
    """Refuse a ``NAME-data.h5`` found in this folder that is not the data the shipped run ``name`` was made on.

    Its metadata (source, seed, geometry, count) must be the recipe's; measuring against other data would print
    other figures than the manifest's without a word.
    """
    from pgsound.checkpoint import load_checkpoint
    from pgsound.datasets import open_dataset
    from pgsound.runs import DataSpec

    saved = DataSpec.from_dict(load_checkpoint(checkpoint, needs=("data",))["data"])
    found = DataSpec.of(open_dataset(data))
    differs = [key for key in ("resolution", "channels", "num_labels", "metadata")
               if getattr(saved, key) != getattr(found, key)]
    if differs:
        raise UserError(
            f"{data} is not the data {name} was made on (its {', '.join(differs)} differ): rename or remove it and "
            f"pgsound regenerates the recipe's data, or pass --data {data} to measure on it on purpose"
        )
