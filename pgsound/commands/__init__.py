"""Subcommands of ``pgsound``; see ``pgsound.cli``."""
