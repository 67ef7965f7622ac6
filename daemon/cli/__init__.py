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
from typing import Any, NoReturn

from tradectl import tradectl_version

# Every subcommand and the line `tradectl --help` shows for it: the one home of that line. The
# listing needs no command's module, so --help imports none of them (together they load
# ib_insync, pyarrow and the daemon: half a second before the usage would show).
COMMANDS: dict[str, str] = {
    "validate": "check a rule set and print a summary or every error",
    "schema": "print or write the JSON Schema of rule files",
    "sim": "run the simulated IB Gateway",
    "plan": "show the orders tradectl would place, modify and cancel (sends nothing)",
    "apply": "one pass: plan, confirm, send, wait for acknowledgements",
    "records": "export fills from the journal; show and drain the GCS upload outbox",
    "run": "the daemon: keep the account converged on the rules until SIGTERM",
    "status": "show the running daemon: rules, connection, passes, orders, fills, halt, breaker",
    "halt": "stop all new orders at once (until tradectl resume)",
    "resume": "clear the halt and the circuit breaker",
    "alert-test": "send one test alert to every configured alert target",
    "accept": "accept the targets file held for an allocation (a jump above max_turnover)",
    "report": "the day's fills, P&L, order efficiency and account, from the journal",
    "release": "stop protecting what a bracket rule holds: cancel its stop and target",
    "doctor": "check, read-only, that the gateway, account, symbols and state directory are ready",
}


EXIT_USAGE = 64
"""A usage error (bad arguments): sysexits.h's EX_USAGE. Not argparse's 2, which means "changes
pending" for `tradectl plan`."""


class _Version(argparse.Action):
    """``--version``: reads the installed version only when asked (see ``tradectl_version``)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="show the version"
        )

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> NoReturn:
        print(f"tradectl {tradectl_version()}")
        parser.exit()


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error exits EXIT_USAGE (subcommand parsers inherit the class)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with ``command``'s full subparser when it names one; otherwise (help, no or an
    unknown command) with every command listed but none of their modules imported.

    A command imports only its own module: the daemon then does not carry what other commands
    need (pyarrow and the Cloud Storage client are ~50 MB of its resident memory), and every
    command starts faster."""
    parser = Parser(
        prog="tradectl",
        description="Declarative order automation for Interactive Brokers.",
    )
    parser.add_argument("--version", action=_Version)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    if command in COMMANDS:
        module = importlib.import_module(f"tradectl.cli.{command.replace('-', '_')}")
        module.register(subparsers)
        return parser
    for name, summary in COMMANDS.items():
        subparsers.add_parser(name, help=summary)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    code, _ = _run_command(argv)
    return code


def console_main() -> NoReturn:
    """The `tradectl` program (and `python -m tradectl`): run the command, then end the process.
    A one-shot command that sets ``exit_without_teardown`` (apply) ends it at once, without the
    interpreter's tear-down of every module (``quick_exit``). `apply` connects to the gateway
    while it loads, when its arguments and rule file allow (``early_connect``)."""
    arguments = sys.argv[1:]
    if arguments[:1] == ["apply"]:
        from tradectl.cli.early_connect import connecting_early

        with connecting_early(arguments[1:]):
            code, args = _run_command(arguments)
    else:
        code, args = _run_command(arguments)
    if getattr(args, "exit_without_teardown", False):
        from tradectl.cli.quick_exit import exit_without_teardown

        exit_without_teardown(code)
    sys.exit(code)


def _run_command(argv: Sequence[str] | None) -> tuple[int, argparse.Namespace]:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(arguments[0] if arguments else None)
    args = parser.parse_args(arguments)
    code: int = args.func(args)
    return code, args


if __name__ == "__main__":
    console_main()
