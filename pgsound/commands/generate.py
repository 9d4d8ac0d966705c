"""``pgsound generate``: images (and audio, for spectrogram runs) from a trained run (book: chapter 10)."""

from __future__ import annotations

import argparse

from pgsound.commands.options import (
    add_device_option,
    add_run_options,
    add_seed_option,
    check_output,
    integer,
    pretrained_or_run,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="generate samples from a run's EMA generator",
        description="Write a grid PNG, one PNG per sample, a WAV per sample for spectrogram runs, and a latent "
        "interpolation (a strip PNG, and a WAV for spectrogram runs).",
    )
    add_run_options(parser, "a run shipped with the package instead of RUN (pgsound info lists them)")
    parser.add_argument("--n", type=integer(1, 100_000), default=16, help="number of samples (default 16)")
    add_seed_option(parser, "seed of the latents (default 0)")
    parser.add_argument("-o", "--out", help="output folder (default RUN/generated-seedS)")
    parser.add_argument("--steps", type=integer(2, 10_000), default=8,
                        help="points on the latent interpolation (default 8)")
    parser.add_argument("--label", type=integer(0, 1 << 20),
                        help="class label for conditional runs (default: cycle through)")
    parser.add_argument("--raw", action="store_true", help="use the raw generator G instead of the EMA Gs")
    parser.add_argument("--griffin-lim-iters", type=integer(0, 100_000), default=None,
                        help="phase reconstruction iterations")
    add_device_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pgsound.generate import generate_run

    run = pretrained_or_run(args)
    if args.out:
        check_output(args.out, "-o", "the samples", inputs=[run], folder=True)
    out = Path(args.out) if args.out else None
    if args.pretrained and out is None:  # not inside the installed package
        out = Path(f"generated-{args.pretrained}-seed{args.seed}")
    written = generate_run(
        run, n=args.n, seed=args.seed, out=out, interpolation_steps=args.steps, label=args.label,
        use_ema=not args.raw, n_iter=args.griffin_lim_iters, device=args.device,
    )
    for kind, paths in written.items():
        print(f"{kind:<14} {len(paths):>3} file(s) in {paths[0].parent}" if paths else f"{kind:<14} none")
    return 0

