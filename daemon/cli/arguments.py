"""Argument types that refuse bad values as usage errors, before a command does anything."""

from __future__ import annotations

import argparse
from collections.abc import Callable

# The rule directory a command reads when none is named: the checkout's default rule set.
DEFAULT_RULES = "rules/"

STATE_DIR_HELP = (
    "the state directory (journal, control socket); default $STATE_DIRECTORY, else "
    "$TRADECTL_STATE_DIR, else $XDG_STATE_HOME/tradectl (~/.local/state/tradectl)"
)


def add_state_options(parser: argparse.ArgumentParser, *, sim_flag: bool = True) -> None:
    """``--state-dir`` and, for commands that do not start a gateway, ``--sim``: the state of
    runs made with ``--sim`` (the ``sim/`` subdirectory of the default)."""
    parser.add_argument("--state-dir", metavar="D", help=STATE_DIR_HELP)
    if sim_flag:
        parser.add_argument(
            "--sim",
            action="store_true",
            help="the state of `run --sim`/`apply --sim` (the sim/ subdirectory of the default)",
        )


def add_rules_dir(parser: argparse.ArgumentParser) -> None:
    """The optional positional ``rules_dir`` of the commands that read one rule set."""
    parser.add_argument(
        "rules_dir",
        nargs="?",
        default=DEFAULT_RULES,
        metavar="DIR",
        help=f"rule directory or file (default: {DEFAULT_RULES})",
    )


def seconds(minimum: float, *, inclusive: bool = True) -> Callable[[str], float]:
    """A number of seconds, at least ``minimum`` (above it when not ``inclusive``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
        if value < minimum or (not inclusive and value == minimum):
            bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"
            raise argparse.ArgumentTypeError(f"must be {bound} seconds, not {text}")
        return value

    return parse


def whole_number(
    minimum: int, maximum: int | None = None, *, what: str = ""
) -> Callable[[str], int]:
    """A whole number from ``minimum`` to ``maximum`` (no upper bound when None); ``what``
    explains the range in the message."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f">= {minimum}" if maximum is None else f"{minimum}-{maximum}"
            raise argparse.ArgumentTypeError(f"{value} is out of range: use {bounds}{what}")
        return value

    return parse


tcp_port = whole_number(0, 65535, what=" (0 picks a free port)")
count = whole_number(0)
