"""Command line: `<package> <command>`, or `python -m <package> <command>`.

The commands come from the groups' tables (core/commands.py). A PipelineError is printed
as one line, `error: ...`, with exit code 1 and no traceback.
"""

from __future__ import annotations

import importlib
import sys
from argparse import ArgumentParser
from dataclasses import replace
from importlib import metadata

from .core.commands import Command
from .core.errors import PipelineError

PACKAGE = __name__.rpartition(".")[0]


def registered_commands() -> dict[str, Command]:
    """Every command of this level's groups, by name, in alphabetical order."""
    try:
        groups = metadata.distribution(PACKAGE).entry_points.select(group=f"{PACKAGE}.commands")
    except metadata.PackageNotFoundError:
        raise PipelineError(f"the package {PACKAGE} is not installed: run `uv sync`") from None
    found: dict[str, Command] = {}
    for group in groups:
        for command in group.load():
            if command.name in found:
                raise RuntimeError(f"two groups list the command {command.name!r}")
            found[command.name] = replace(command, module=group.module + command.module)
    return dict(sorted(found.items()))


def build_parser(commands: dict[str, Command], chosen: str | None = None) -> ArgumentParser:
    """The parser of every command; only the `chosen` one's module is imported, for its options."""
    parser = ArgumentParser(prog=PACKAGE, description="The project's commands (see README.md).")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, command in commands.items():
        subparser = subparsers.add_parser(name, help=command.help, description=command.help)
        if name == chosen:
            add_arguments = getattr(importlib.import_module(command.module), "add_arguments", None)
            if add_arguments is not None:
                add_arguments(subparser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        commands = registered_commands()
        chosen = next((word for word in argv if not word.startswith("-")), None)
        options = vars(build_parser(commands, chosen).parse_args(argv))
        module = importlib.import_module(commands[options.pop("command")].module)
        module.run(**options)
    except PipelineError as error:
        message = " ".join(str(error).split())
        print(f"error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0
