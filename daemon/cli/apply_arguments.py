"""`tradectl apply`'s arguments, apart from the command so that the entry point can read them
before it imports the command (``tradectl.cli.early_connect``)."""

from __future__ import annotations

import argparse

from tradectl.cli.arguments import DEFAULT_RULES, add_state_options, seconds
from tradectl.ib.pacer import DEFAULT_RATE, IB_MESSAGE_LIMIT

# Exporting one pass's fills takes well under a second; an upload stuck in the network is what
# this bounds.
RECORDS_WAIT_SECONDS = 5.0


def add_apply_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        nargs="?",
        default=DEFAULT_RULES,
        metavar="DIR|PLAN",
        help=f"rule directory (default {DEFAULT_RULES}) or a plan saved by `tradectl plan --out`",
    )
    parser.add_argument(
        "--sim", action="store_true", help="start the simulated gateway in-process and use it"
    )
    parser.add_argument("--yes", action="store_true", help="send without asking")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the result as one JSON object on stdout (the tables go to stderr); needs --yes",
    )
    add_state_options(parser, sim_flag=False)
    parser.add_argument(
        "--timeout",
        type=seconds(0, inclusive=False),
        default=30.0,
        metavar="S",
        help="seconds to wait for acknowledgements (default 30)",
    )
    parser.add_argument(
        "--max-rate",
        type=_rate,
        default=DEFAULT_RATE,
        metavar="N",
        help=f"messages per second to the gateway, all kinds together (default {DEFAULT_RATE:g}; "
        "IB allows 50)",
    )
    parser.add_argument(
        "--records-wait",
        type=float,
        default=RECORDS_WAIT_SECONDS,
        metavar="S",
        help="seconds the command may wait at its end to export (and upload) the pass's records "
        f"(default {RECORDS_WAIT_SECONDS:g}); what is not done by then stays in the journal for "
        "the daemon or `tradectl records export`/`upload`",
    )


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 1 <= value <= IB_MESSAGE_LIMIT:
        raise argparse.ArgumentTypeError(
            f"must be between 1 and {IB_MESSAGE_LIMIT} (IB answers error 100 above its limit)"
        )
    return value
