"""``pgsound train``: start a run from a preset, or resume one (book: chapter 7, The training loop)."""

from __future__ import annotations

import argparse
import os


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a progressive GAN on a prepared dataset",
        description="Train from a preset (pgsound/presets/*.yaml) with overrides, or resume a run. "
        "Several GPUs: torchrun --nproc_per_node N -m pgsound.cli train ...",
    )
    parser.add_argument("--preset", help="preset name (paper, piano512, shapes-cpu, piano-cpu, smoke)")
    parser.add_argument("--data", help="prepared dataset (.h5) from 'pgsound prepare'")
    parser.add_argument("--out", default=os.environ.get("PGSOUND_RUNS", "runs"), help="folder for run folders")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set g.fmap_max=256 (repeatable)")
    parser.add_argument("--resume", metavar="RUN", help="run folder or checkpoint file to continue")
    parser.add_argument("--kimg", type=float, help="stop after this many kimg in all (default: the schedule's total)")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: the GPU when present)")
    parser.add_argument("--no-progress", action="store_true", help="print tick lines instead of a progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from pgsound.cli import CommandError
    from pgsound.config import resolve_config, save_config
    from pgsound.datasets import open_dataset
    from pgsound.device import configure_process, default_device
    from pgsound.distributed import init_from_environment
    from pgsound.plan import check_run
    from pgsound.runs import checkpoint_path, new_run_dir
    from pgsound.trainer import Trainer, TrainingDiverged

    device = torch.device(args.device) if args.device else default_device()
    configure_process(device)
    group = init_from_environment(device)
    if device.type == "cuda" and group.active:
        device = torch.device("cuda", group.rank % torch.cuda.device_count())
    if args.resume:
        if args.preset or args.overrides:
            raise CommandError("--resume continues a run with its saved config; drop --preset and --set")
        from pgsound.checkpoint import load_checkpoint

        checkpoint = checkpoint_path(args.resume)
        data_path = args.data or load_checkpoint(checkpoint)["data"].get("path")
        if not data_path:
            raise CommandError("this checkpoint does not record its dataset path: pass --data")
        trainer = Trainer.resume(checkpoint, open_dataset(data_path), device=device, group=group,
                                 progress=not args.no_progress)
        print(f"resuming {checkpoint} at {trainer.images_shown / 1000:.1f} kimg")
    else:
        if not args.preset or not args.data:
            raise CommandError("a new run needs --preset and --data (or --resume RUN)")
        config = resolve_config(args.preset, args.overrides)
        dataset = open_dataset(args.data)
        check_run(config, tuple(dataset.resolution), dataset.channels, dataset.num_labels, group.world_size)
        run_dir = new_run_dir(args.out, args.preset) if group.is_main else None
        if run_dir is not None:
            save_config(config, run_dir / "config.yaml")
            print(f"run folder {run_dir}")
        trainer = Trainer(config, dataset, run_dir, device=device, group=group, progress=not args.no_progress)
    try:
        trainer.train(stop_kimg=args.kimg)
    except TrainingDiverged as error:
        raise CommandError(str(error)) from None
    if group.is_main and trainer.run_dir is not None:
        print(f"done at {trainer.images_shown / 1000:.1f} kimg; checkpoint {trainer.last_checkpoint}")
    return 0
