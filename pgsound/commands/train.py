"""``pgsound train``: start a run from a preset, or resume one (book: chapter 7, The training loop)."""

from __future__ import annotations

import argparse
import os

from pgsound.commands.options import add_device_option, check_output, chosen_device, number
from pgsound.config import preset_names
from pgsound.profile import RUNS_VAR


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a progressive GAN on a prepared dataset",
        description="Train from a preset (pgsound/presets/*.yaml) with overrides, or resume a run. "
        "Several GPUs: torchrun --nproc_per_node N -m pgsound.cli train ...",
    )
    parser.add_argument("--preset", help=f"preset name ({', '.join(preset_names())})")
    parser.add_argument("--data", help="prepared dataset (.h5) from 'pgsound prepare'")
    parser.add_argument("-o", "--out", default=os.environ.get(RUNS_VAR, "runs"), help="folder for run folders")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set g.fmap_max=256 (repeatable)")
    parser.add_argument("--resume", metavar="RUN", help="run folder or checkpoint file to continue")
    parser.add_argument("--allow-other-data", action="store_true",
                        help="with --resume and --data: continue on other data of the same shape on purpose")
    parser.add_argument("--kimg", type=number(0, 1e6, low_open=True),
                        help="stop after this many kimg in all (default: the schedule's total)")
    add_device_option(parser, training=True)
    parser.add_argument("--no-progress", action="store_true", help="print tick lines instead of a progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from pgsound.checkpoint import TRAINING_KEYS
    from pgsound.config import resolve_config, save_config
    from pgsound.datasets import open_dataset
    from pgsound.device import configure_process
    from pgsound.distributed import init_from_environment
    from pgsound.errors import CommandError
    from pgsound.run_folder import (
        CHECKPOINTS,
        CONFIG,
        RunWriteError,
        in_run_folder,
        new_run_dir,
        read_checkpoint,
        run_of,
    )
    from pgsound.runs import DataSpec
    from pgsound.trainer import TrainingDiverged, new_state, resume_state, train

    device = chosen_device(args.device)
    configure_process(device)
    group = init_from_environment(device)
    if device.type == "cuda" and group.active:
        device = torch.device("cuda", group.rank % torch.cuda.device_count())
    if not args.resume:
        check_output(args.out, "-o", "the runs", inputs=[args.data], folder=True)
    if args.resume:
        if args.preset or args.overrides:
            raise CommandError("--resume continues a run with its saved config; drop --preset and --set")
        saved = read_checkpoint(args.resume, needs=TRAINING_KEYS)  # read once: its data's path, then its state
        if not in_run_folder(saved.path):  # the run folder is where its log and new checkpoints go
            raise CommandError(f"--resume {args.resume}: not a checkpoint in a run's {CHECKPOINTS}/ folder, so "
                               f"there is no run to continue; put it in a {CHECKPOINTS}/ folder of its own "
                               f"(RUN/{CHECKPOINTS}/{saved.path.name}) and resume RUN")
        data_path = args.data or DataSpec.from_dict(saved.state["data"]).locate()
        if not data_path:
            raise CommandError("this checkpoint does not record its dataset path: pass --data")
        dataset = open_dataset(data_path)
        state = resume_state(saved, dataset, device=device, group=group, allow_other_data=args.allow_other_data)
        run_dir = run_of(saved.path) if group.is_main else None
        print(f"resuming {saved.path} at {state.images_shown / 1000:.1f} kimg")
    else:
        if not args.preset or not args.data:
            raise CommandError("a new run needs --preset and --data (or --resume RUN)")
        config = resolve_config(args.preset, args.overrides)
        dataset = open_dataset(args.data)
        state = new_state(config, dataset, device=device, group=group)  # checks the config against the data
        run_dir = new_run_dir(args.out, args.preset) if group.is_main else None
        if run_dir is not None:
            save_config(config, run_dir / CONFIG)
            print(f"run folder {run_dir}")
    if args.kimg is not None and args.kimg * 1000 <= state.images_shown:
        raise CommandError(f"--kimg {args.kimg:g} is not past the {state.images_shown / 1000:g} kimg already "
                           f"shown: nothing to train")
    if args.kimg is None and state.images_shown >= round(1000 * state.config.schedule.total_kimg):
        raise CommandError(f"{args.resume} has shown {state.images_shown / 1000:g} kimg, its schedule's total is "
                           f"{state.config.schedule.total_kimg:g}: nothing to train; pass --kimg K to train on")
    resume = f"pgsound train --resume {run_dir}"
    try:
        result = train(state.config, dataset, run_dir, state=state, stop_kimg=args.kimg,
                       progress=not args.no_progress)
    except TrainingDiverged as error:
        raise CommandError(str(error)) from None
    except RunWriteError as error:  # a full disk, say: what was saved stands, and the run resumes from it
        raise OSError(error.errno, f"{error.strerror} (resume with: {resume})", error.filename) from None
    if result.stop_signal is not None:
        # Not a success: a batch scheduler must see that the run stopped early (128 + the signal, as a shell).
        if group.is_main and run_dir is not None:
            print(f"resume with: {resume}")
        return 128 + result.stop_signal
    if group.is_main and run_dir is not None:
        print(f"done at {state.images_shown / 1000:.1f} kimg; checkpoint {result.checkpoint}")
    return 0
