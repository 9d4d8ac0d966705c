"""Command-line options that several commands share: the spectrogram geometry (book: chapter 1), the run."""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pgsound.config import SEED_LIMIT
from pgsound.errors import UserError

if TYPE_CHECKING:
    import torch

    from pgsound.device_check import DeviceChoice


class OneLineParser(argparse.ArgumentParser):
    """argparse, with a mistake reported as one line (the usage is one ``--help`` away), exit status 2."""

    def error(self, message: str):  # noqa: D102 - argparse's hook
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def integer(low: int, high: int) -> Callable[[str], int]:
    """An ``argparse`` type: a whole number from ``low`` to ``high``, checked when the option is parsed."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected a whole number from {low} to {high}, got {text!r}")
        return value

    parse.bounds = (low, high, False)  # type: ignore[attr-defined]  # what the tests walk
    return parse


def number(low: float, high: float, *, low_open: bool = False) -> Callable[[str], float]:
    """An ``argparse`` type: a finite number in [low, high] (or (low, high] with ``low_open``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        above = value > low if low_open else value >= low
        if not (math.isfinite(value) and above and value <= high):
            bracket = "(" if low_open else "["
            raise argparse.ArgumentTypeError(f"expected a finite number in {bracket}{low:g}, {high:g}], got {text!r}")
        return value

    parse.bounds = (low, high, low_open)  # type: ignore[attr-defined]
    return parse


def device_name(text: str) -> str:
    """An ``argparse`` type: a device this machine has (cpu, cuda, cuda:N, mps), else the reason it has not."""
    from pgsound.device import parse_device

    try:
        return str(parse_device(text))
    except UserError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_device_option(parser: argparse.ArgumentParser, training: bool = False) -> None:
    """``--device``: checked against this machine when parsed, before any work or folder.

    Training commands default to :func:`chosen_device`'s choice, which may be Apple's GPU (its self-check is a
    training step); the others to :func:`pgsound.device.default_device`, CUDA or the CPU.
    """
    default = "CUDA, else Apple's GPU when its self-check passes, else the CPU" if training else \
        "CUDA when present, else the CPU"
    parser.add_argument("--device", type=device_name, help=f"cpu, cuda, cuda:N or mps (default: {default})")


def device_choice(name: str | None) -> DeviceChoice:
    """The device ``--device`` named, else :func:`pgsound.device_check.choose_device`'s choice, with the reason."""
    import torch

    from pgsound.device_check import DeviceChoice, choose_device

    return DeviceChoice(torch.device(name), "chosen with --device") if name else choose_device()


def chosen_device(name: str | None) -> torch.device:
    """:func:`device_choice`'s device, its line printed when worth one: Apple's GPU taken, or passed over on a
    Mac, and why."""
    choice = device_choice(name)
    if choice.notable:
        print(choice.line(), flush=True)
    return choice.device


def add_seed_option(parser: argparse.ArgumentParser, help: str = "random seed (default 0)") -> None:
    parser.add_argument("--seed", type=integer(0, SEED_LIMIT - 1), default=0, help=help)


def add_geometry_options(parser: argparse.ArgumentParser) -> None:
    """``--size``, ``--n-fft``, ``--hop`` and ``--framing``: how recordings become pictures."""
    parser.add_argument("--size", default="512x512", metavar="BINSxFRAMES",
                        help="picture size, frequency bins x frames (default 512x512: n_fft 1024, hop 128)")
    parser.add_argument("--n-fft", type=integer(2, 1 << 20),
                        help="FFT size (default 2 x bins; larger keeps only the lowest bins, "
                        "or gives mel bands enough bins)")
    parser.add_argument("--hop", type=integer(1, 1 << 20), help="hop length in samples (default 128, at most bins)")
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
    try:
        return SpectrogramConfig(n_fft=n_fft, hop_length=hop, n_bins=bins, n_frames=frames, framing=args.framing)
    except UserError as error:  # the settings' reason, in the words of the flags the user typed (or left out)
        reason = re.sub(r"\b(n_fft|hop_length|n_bins)\b", lambda m: _GEOMETRY_FLAGS[m.group()],
                        str(error).removeprefix("SpectrogramConfig: "))
        raise UserError(f"{reason} (from --size {args.size}, --n-fft {n_fft}, --hop {hop})") from None


_GEOMETRY_FLAGS = {"n_fft": "--n-fft", "hop_length": "--hop", "n_bins": "the bin count of --size"}


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


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def check_output(out: str | os.PathLike, option: str, writes: str, *, suffixes: tuple[str, ...] = (),
                 inputs: Sequence[str | os.PathLike | None] = (), reads: tuple[str, ...] = (),
                 folder: bool = False) -> Path:
    """Refuse, before any work, an output that would destroy an input or that names another kind of file.

    ``writes`` says what is written (for the message); ``suffixes`` are the extensions it may have;
    ``inputs`` are the command's input files and folders, and ``reads`` the extensions it reads inside an
    input folder: an output inside that folder with one of them would become (or replace) an input.
    ``folder``: the output is a folder, so an existing file there is refused. Creates nothing.
    """
    from pgsound.files import check_writable, check_writable_folder

    path = Path(out)
    if not folder and path.is_dir():
        raise UserError(f"{option} {path} is a folder; expected a file name")
    if suffixes and path.suffix.lower() not in suffixes:
        raise UserError(f"{option} {path}: expected a {' or '.join(suffixes)} file for {writes}, not "
                        f"{path.suffix or 'a name without an extension'}")
    for given in (Path(i) for i in inputs if i is not None):
        if given.is_dir():
            inside = path.resolve().is_relative_to(given.resolve())
            if inside and (path.suffix.lower() in reads or _same_file(path, given)):
                raise UserError(f"{option} {path} would be written inside the input folder {given} as one of its "
                                f"inputs: write it outside that folder")
        elif _same_file(path, given):
            raise UserError(f"{option} {path} is the input {given}: writing it would destroy it; choose another name")
    if folder:
        if path.exists() and not path.is_dir():
            raise UserError(f"{option} {path} is a file; expected a folder for {writes}")
        return check_writable_folder(path, option)
    return check_writable(path, option)
