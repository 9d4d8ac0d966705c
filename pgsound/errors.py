"""The package's user-facing errors (book: README, "Errors").

A :class:`UserError` is a mistake in what the user gave: a file, a key, a value. ``pgsound`` prints it as one
line naming what was wrong and what was expected, and exits with status 2. Every other exception is a bug or
a failure of the machine and keeps its traceback. Both are ``ValueError`` subclasses, so code that catches
``ValueError`` (or, for :class:`MissingFileError`, ``FileNotFoundError``) keeps working.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input from the user; the message names the file, key or value and what was expected."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist (or holds nothing usable)."""


class CommandError(UserError):
    """A mistake in a command's arguments: printed as ``pgsound COMMAND: error: ...``, exit status 2."""
