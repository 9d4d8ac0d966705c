"""The ``pgsound`` command line: one subcommand module per job under ``pgsound/commands/``.

Each module there has ``register(subparsers)``, which adds its parser(s) and sets ``func`` to the function
that runs the command. Heavy imports happen inside those functions so that ``pgsound --help`` is instant.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence

from pgsound.commands import evaluate, generate, info, preflight, prepare, sound, train
from pgsound.commands.options import OneLineParser
from pgsound.errors import CommandError, UserError
from pgsound.profile import current_profile, use_pretrained

__all__ = ["CommandError", "build_parser", "main"]

# The order here is the order of ``pgsound --help``: the path of the data through the package.
COMMAND_MODULES = (info, sound, prepare, preflight, train, generate, evaluate)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="pgsound",
        description="Progressive Growing of GANs for sound: prepare data, train, generate, evaluate.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, or a mistake in the arguments that the parser reported in one line
        return int(stop.code or 0)
    # A warning is one line too, named like an error (Python's default adds the source line that raised it).
    warnings.formatwarning = lambda message, *_, **__: f"pgsound {args.command}: warning: {message}\n"
    try:
        # The book's profile variable: the commands do not read it, but a typo there is a typo everywhere.
        current_profile()
        use_pretrained()
        status = args.func(args)
    except UserError as error:  # the user's mistake: one line; anything else is a bug and keeps its traceback
        print(f"pgsound {args.command}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`pgsound dataset info x.h5 | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's exit flush would fail again
        return 141  # 128 + SIGPIPE, as a shell reports it
    except OSError as error:
        if error.filename is None:
            raise
        # The machine's answer about a path: a full disk, a read-only folder, a file where a folder should be.
        # Files are written whole or not at all (pgsound.files.atomic_write), so what was written before stands.
        print(f"pgsound {args.command}: error: {error.filename}: {error.strerror or error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"pgsound {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
