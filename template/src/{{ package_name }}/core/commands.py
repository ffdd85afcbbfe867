"""The command table: each group of the package lists its commands.

A group (pipeline/, tracking/, ...) lists its commands in its __init__.py:

    COMMANDS = [Command("read", ".read", "read the raw data into data/interim/"), ...]

and pyproject.toml names the groups this level has (the entry points
`<package>.commands`). The command line (cli.py) reads only these tables to
list the commands; it imports a command's module when the command runs or
shows its --help. That module defines `run(**options)`, and
`add_arguments(parser)` when the command takes options: each option's `dest`
is a parameter of `run`.
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
