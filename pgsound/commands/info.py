"""``pgsound info``: versions, the torch device, threads, the profile and the shipped runs."""

from __future__ import annotations

import argparse
import platform


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("info", help="print versions, the torch device, threads and the profile")
    parser.set_defaults(func=run)


def info_lines() -> list[str]:
    import numpy
    import torch

    import pgsound
    from pgsound import pretrained
    from pgsound.device import describe_device
    from pgsound.device_check import choose_device
    from pgsound.profile import ENV_VAR, current_profile

    choice = choose_device()  # on a Mac with torch's MPS build, runs the one-step self-check (once)
    lines = [
        f"pgsound   {pgsound.__version__}",
        f"python    {platform.python_version()} ({platform.machine()})",
        f"torch     {torch.__version__} (CUDA {torch.version.cuda or 'none'})",
        f"numpy     {numpy.__version__}",
    ]
    for module in ("librosa", "soundfile", "h5py"):
        try:
            version = __import__(module).__version__
        except ImportError:
            version = "not installed"
        lines.append(f"{module:<9} {version}")
    lines += [
        f"device    {describe_device(choice.device)}; {choice.note}",
        f"threads   {torch.get_num_threads()} intra-op, {torch.get_num_interop_threads()} inter-op",
        f"profile   {current_profile()} (set {ENV_VAR} to smoke, cpu or gpu)",
        f"shipped   {', '.join(pretrained.names()) or 'none'} (pgsound generate --pretrained NAME)",
    ]
    return lines


def run(args: argparse.Namespace) -> int:
    print("\n".join(info_lines()))
    return 0
