"""The ``pgsound`` command line: one subcommand module per job under ``pgsound/commands/``.

Each module there has ``register(subparsers)``, which adds its parser(s) and sets ``func`` to the function
that runs the command. Heavy imports happen inside those functions so that ``pgsound --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from pgsound.errors import UserError

# The order here is the order of ``pgsound --help``: the path of the data through the package.
COMMAND_MODULES: tuple[str, ...] = (
    "pgsound.commands.info",
    "pgsound.commands.sound",
    "pgsound.commands.prepare",
    "pgsound.commands.preflight",
    "pgsound.commands.train",
    "pgsound.commands.generate",
    "pgsound.commands.evaluate",
)


class CommandError(UserError):
    """A mistake in a command's arguments: printed as ``pgsound COMMAND: error: ...``, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pgsound",
        description="Progressive Growing of GANs for sound: prepare data, train, generate, evaluate.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
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
