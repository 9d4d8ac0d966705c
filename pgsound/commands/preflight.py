"""``pgsound preflight``: walk a preset's whole schedule, one real step per phase (book: chapter 10).

Run it before renting a GPU: it fails in minutes on a setting that would fail after hours of training, and
its table says what each phase costs (step time, peak memory, checkpoint size, hours) on this device.
"""

from __future__ import annotations

import argparse

from pgsound.commands.options import add_device_option, check_output, device_choice, integer


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "preflight",
        help="check a preset end to end: one real training step in every phase of its schedule",
        description="Resolve the config as 'pgsound train' does, check it by arithmetic (minibatch splits, "
        "minibatch-stddev groups, widths, data shape), then take one training step in every phase (each level's "
        "fade-in and stable part at its minibatch and learning rate), and resume from checkpoints across the end "
        "of a fade-in and the start of the next level. Prints one row per phase and the total hours; exits "
        "non-zero at the first failure.",
    )
    parser.add_argument("--preset", required=True, help="preset name (pgsound/presets/*.yaml)")
    parser.add_argument("--data", help="prepared dataset (.h5); default: random pictures of the preset's "
                        "data_shape")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, as for train (repeatable)")
    add_device_option(parser, training=True)
    parser.add_argument("--nproc", type=integer(1, 4096), default=1, help="processes the run will use (torchrun "
                        "--nproc_per_node); each step is one process's share of the minibatch")
    parser.add_argument("--widths", choices=("preset", "narrow"), default="preset",
                        help="the preset's own widths (default), or every width divided by up to 32: the same "
                        "shapes, minibatches and schedule in seconds")
    parser.add_argument("--no-resume-check", action="store_true", help="skip the checkpoint-and-resume check")
    parser.add_argument("--json", dest="json_path", help="also write the rows as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    import torch

    from pgsound.config import resolve_config
    from pgsound.datasets import ArrayDataset, open_dataset
    from pgsound.errors import CommandError
    from pgsound.files import atomic_write
    from pgsound.memory import device_memory, format_bytes
    from pgsound.plan import check_run
    from pgsound.preflight import preflight

    if args.json_path:
        check_output(args.json_path, "--json", "the preflight table", suffixes=(".json",), inputs=[args.data])
    config = resolve_config(args.preset, args.overrides)
    if args.data:
        dataset = open_dataset(args.data)
        source = str(args.data)
    else:
        if config.data_shape is None:
            raise CommandError(f"preset {args.preset!r} names no data_shape: pass --data FILE, or --set "
                               f"data_shape=[channels,height,width]")
        channels, height, width = config.data_shape
        # The shape matters, not the content: a few pictures, which the loader reuses for larger minibatches.
        count = min(max([config.schedule.minibatch_default, *config.schedule.minibatch.values()]), 16)
        labels = 10 if config.conditional else 0
        check_run(config, (height, width), channels, labels, args.nproc)  # the shape, before making pictures
        picture_bytes = count * channels * height * width * 4 * 4 // 3  # float32, with the smaller levels
        memory = device_memory(torch.device("cpu"))
        if memory is not None and picture_bytes > memory[0] // 2:
            raise CommandError(f"data_shape {list(config.data_shape)}: {count} random pictures of that size take "
                               f"{format_bytes(picture_bytes)}, more than half of {memory[1]} "
                               f"({format_bytes(memory[0])}): check data_shape, or pass --data FILE")
        dataset = ArrayDataset.random(count, channels, (height, width), num_labels=labels, seed=config.seed)
        source = f"{count} random pictures of {channels}x{height}x{width}"
    print(f"preflight of {args.preset} ({args.widths} widths, {args.nproc} process(es)) on {source}", flush=True)
    choice = device_choice(args.device)  # as pgsound train's, but always printed: the table is for this device
    print(choice.line(), flush=True)

    def show(row) -> None:
        print(f"  {row.phase}: {row.step_seconds:.3g} s per step of {row.per_process}", flush=True)

    report = preflight(config, dataset, device=choice.device, nproc=args.nproc, widths=args.widths,
                       check_resume=not args.no_resume_check, on_row=show)
    print(report.table())
    print(f"preflight took {report.wall_seconds:.0f} s; samples, metrics and checkpoints add to the hours above")
    if args.json_path:
        payload = {"preset": args.preset, "widths": args.widths, "nproc": args.nproc, "device": report.device,
                   "device_choice": choice.note, "memory": report.memory_kind,
                   "rows": [dataclasses.asdict(r) for r in report.rows],
                   "total_hours": report.total_hours, "resume_exact": report.resume_exact,
                   "wall_seconds": report.wall_seconds}
        with atomic_write(args.json_path) as temp:
            temp.write_text(json.dumps(payload, indent=2))
    if report.resume_exact is False:
        raise CommandError("the run resumed from a checkpoint differs from the uninterrupted run")
    return 0
