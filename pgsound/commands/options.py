"""Command-line options that several commands share: the spectrogram geometry (book: chapter 1), the run."""

from __future__ import annotations

import argparse

from pgsound.errors import UserError


def add_geometry_options(parser: argparse.ArgumentParser) -> None:
    """``--size``, ``--n-fft``, ``--hop`` and ``--framing``: how recordings become pictures."""
    parser.add_argument("--size", default="512x512", metavar="BINSxFRAMES",
                        help="picture size, frequency bins x frames (default 512x512: n_fft 1024, hop 128)")
    parser.add_argument("--n-fft", type=int, help="FFT size (default 2 x bins; larger keeps only the lowest bins, "
                        "or gives mel bands enough bins)")
    parser.add_argument("--hop", type=int, help="hop length in samples (default 128, at most bins)")
    parser.add_argument("--framing", choices=("consecutive", "crop"), default="consecutive",
                        help="consecutive windows that use all audio (default) or 5 s parts cropped as in 2018")


def spectrogram_config(args: argparse.Namespace):
    """The :class:`~pgsound.spectrogram.SpectrogramConfig` that :func:`add_geometry_options` describe."""
    from pgsound.spectrogram import SpectrogramConfig

    try:
        bins, frames = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise UserError(f"--size must look like 512x512 (bins x frames), got {args.size!r}") from None
    # The reference time step (hop 128 at 16 kHz: 8 ms per column) at every size; n_fft = 2 * bins.
    for flag, value in (("--hop", args.hop), ("--n-fft", args.n_fft)):
        if value is not None and value < 1:
            raise UserError(f"{flag} must be a positive number of samples, got {value}")
    if bins < 1 or frames < 1:
        raise UserError(f"--size must have at least one bin and one frame, got {args.size!r}")
    hop = args.hop if args.hop is not None else min(128, bins)
    n_fft = args.n_fft if args.n_fft is not None else 2 * bins
    return SpectrogramConfig(n_fft=n_fft, hop_length=hop, n_bins=bins, n_frames=frames, framing=args.framing)


def add_run_options(parser: argparse.ArgumentParser, pretrained_help: str) -> None:
    """``RUN`` (a run folder or checkpoint) or ``--pretrained NAME`` (a run shipped with the package)."""
    parser.add_argument("run", nargs="?", help="run folder (newest checkpoint) or checkpoint file")
    parser.add_argument("--pretrained", metavar="NAME", help=pretrained_help)


def pretrained_or_run(args: argparse.Namespace) -> str:
    """RUN, or the shipped checkpoint that ``--pretrained NAME`` names; exactly one of the two."""
    from pgsound import pretrained

    if (args.run is None) == (args.pretrained is None):
        raise UserError("give a run folder or checkpoint, or --pretrained NAME (one of the two)")
    return str(pretrained.path(args.pretrained)) if args.pretrained else args.run
