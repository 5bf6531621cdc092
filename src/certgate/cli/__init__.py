"""The ``certgate`` command: the service layer's operations for people and scripts."""

from certgate.cli.main import main

__all__ = ["main"]
