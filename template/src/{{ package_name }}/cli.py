"""Command line: `<package> <command>`, or `python -m <package> <command>`.

The commands are the modules of this package that declare a `COMMAND` (see
core/commands.py): the pipeline stages that dvc.yaml runs, and the tools of
each level. A PipelineError (bad data, bad settings, a missing file) is
printed as one line, `error: ...`, with exit code 1 and no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from .core.commands import Command
from .core.errors import PipelineError

PACKAGE = __name__.rpartition(".")[0]


def registered_commands() -> dict[str, Command]:
    """Every command of the package, by name, in alphabetical order."""
    package = importlib.import_module(PACKAGE)
    found: dict[str, Command] = {}
    for module_info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
        if module_info.name.endswith(".__main__"):
            continue  # importing it would run the command line
        module = importlib.import_module(module_info.name)
        command = getattr(module, "COMMAND", None)
        if not isinstance(command, Command):
            continue
        if command.name in found:
            raise RuntimeError(f"two modules declare the command {command.name!r}")
        found[command.name] = command
    return dict(sorted(found.items()))


def build_parser(commands: dict[str, Command]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PACKAGE, description="The project's commands (see README.md)."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, command in commands.items():
        subparser = subparsers.add_parser(name, help=command.help, description=command.help)
        command.add_arguments(subparser)
    return parser


def main(argv: list[str] | None = None) -> int:
    commands = registered_commands()
    options = vars(build_parser(commands).parse_args(argv))
    command = commands[options.pop("command")]
    try:
        command.run(**options)
    except PipelineError as error:
        message = " ".join(str(error).split())
        print(f"error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0
