"""The command registry: each command module declares its own command.

A module that offers a command ends with

    COMMAND = Command("name", "one-line help", run, add_arguments)

where `run` takes the parsed options as keyword arguments. The command line
(cli.py) finds every such module in the package, so a level adds commands by
adding modules, and cli.py never changes. Command modules must stay cheap to
import: heavy libraries are imported inside the functions that use them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass


def positive_int(text: str) -> int:
    """An option's whole number of at least 1 (`type=positive_int`), with a clear message."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value


def no_arguments(parser: argparse.ArgumentParser) -> None:
    """For commands without options."""


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    run: Callable[..., object]
    add_arguments: Callable[[argparse.ArgumentParser], None] = no_arguments
