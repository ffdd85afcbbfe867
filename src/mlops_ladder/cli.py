"""`mlops-ladder <command>`: the template's tools for the projects it generates."""

from __future__ import annotations

import argparse
import sys
from importlib import metadata

from . import doctor


def version() -> str:
    try:
        return metadata.version("mlops-ladder")
    except metadata.PackageNotFoundError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mlops-ladder",
        description="Tools of the mlops-ladder template for the projects it generates.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    doctor.add_arguments(
        commands.add_parser(
            "doctor",
            help="report which maturity level a project meets, check by check",
            description=doctor.DESCRIPTION,
            epilog=doctor.EPILOG,
        )
    )
    arguments = parser.parse_args(argv)
    return doctor.run(arguments)


if __name__ == "__main__":
    sys.exit(main())
