"""Command line: `<package> <command>`, or `python -m <package> <command>`.

One subcommand per pipeline stage (what dvc.yaml runs) plus `runs` and
`report`. A PipelineError (bad data, bad params, a missing file) is printed as
one line, `error: ...`, with exit code 1 and no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import PipelineError

# command -> help. Each command is the module of the same name, whose `run()`
# is imported only when needed (importing MLflow alone takes seconds).
COMMANDS = {
    "read": "read the raw data into data/interim/",
    "metadata": "describe the data in reports/metadata.json",
    "validate": "check the data against canvas.yaml's data contract",
    "preprocess": "select features and split train/test",
    "train": "fit the model params.yaml describes",
    "evaluate": "score the model, write metrics and plots, track the run",
    "runs": "rank the tracked runs by the canvas metric",
    "report": "markdown report of metric and param changes against a base",
}


def run_command(args: argparse.Namespace) -> None:
    module = importlib.import_module(f".{args.command}", __package__)
    options = {key: value for key, value in vars(args).items() if key != "command"}
    module.run(**options)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=__package__, description="The project's ML pipeline (see docs/experiments.md)."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, help_text in COMMANDS.items():
        command = commands.add_parser(name, help=help_text, description=help_text)
        if name == "runs":
            command.add_argument("--limit", type=int, default=10, help="runs shown (default 10)")
        if name == "report":
            command.add_argument(
                "--base",
                help="git ref to compare with (default: the CI target branch, else origin/main, "
                "else main)",
            )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run_command(args)
    except PipelineError as error:
        message = " ".join(str(error).split())
        print(f"error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0
