"""The `tradectl` command line.

Each subcommand lives in its own module in this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a
callable taking the parsed arguments and returning the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from daemon import tradectl_version

SUBCOMMAND_MODULES: tuple[str, ...] = (
    "validate",
    "schema",
    "sim",
    "plan",
    "apply",
    "records",
    "run",
    "status",
    "halt",
    "resume",
    "alert-test",
    "accept",
    "report",
    "release",
    "doctor",
)


EXIT_USAGE = 64
"""A usage error (bad arguments): sysexits.h's EX_USAGE. Not argparse's 2, which means "changes
pending" for `tradectl plan`."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error exits EXIT_USAGE (subcommand parsers inherit the class)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with every subcommand, or with only ``command``'s when it names one.

    A command imports only its own module: the daemon then does not carry what other commands
    need (pyarrow and the Cloud Storage client are ~50 MB of its resident memory), and every
    command starts faster. Help and unknown commands still see them all."""
    parser = Parser(
        prog="tradectl",
        description="Declarative order automation for Interactive Brokers.",
    )
    parser.add_argument("--version", action="version", version=f"tradectl {tradectl_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    names = (command,) if command in SUBCOMMAND_MODULES else SUBCOMMAND_MODULES
    for name in names:
        importlib.import_module(f"daemon.cli.{name.replace('-', '_')}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(arguments[0] if arguments else None)
    args = parser.parse_args(arguments)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
