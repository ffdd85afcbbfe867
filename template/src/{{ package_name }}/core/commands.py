"""The command table: each group of the package (pipeline/, tracking/, ...) lists its
commands in its __init__.py, and pyproject.toml's entry points `<package>.commands` name
the groups this level has:

    COMMANDS = [Command("read", ".read", "read the raw data into data/interim/"), ...]

A command's module defines `run(**options)`, and `add_arguments(parser)` when the command
takes options (each option's `dest` is a parameter of `run`). The command line imports it
only when the command runs or shows its --help: listing the commands stays instant.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    name: str
    module: str  # relative to the group that lists it: ".read"
    help: str


def positive_int(text: str) -> int:
    """An option's whole number of at least 1 (`type=positive_int`), with a clear message."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value
