"""`tradectl apply` connects to the gateway while it loads (docs/apply.md, "Start and exit").

The entry point reads ``apply``'s arguments and the gateway's address from the raw rule file
before it imports the command, connects there while a helper thread imports the command
(``tradectl.ib.early``), and closes that connection at the end if the command never took it.
The address read here is only a hint: the command takes the connection only when the validated
rules give exactly the same settings. The hint is not even tried when it could not be right or
safe: without ``--yes`` (someone confirms the plan: a few milliseconds do not matter), with
``--sim`` (the gateway starts later, in the process), for a saved plan, a directory that holds
more than one YAML file (``gateway:`` may come from another file), a rule file that states its
``gateway.connect_timeout`` (its duration syntax is the rule models' to read), a file the
loader's YAML reader refuses, client id 0, or with ``TRADECTL_CONNECT_EARLY=0`` in the environment.
"""

from __future__ import annotations

import argparse
import importlib
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from tradectl.cli.apply_arguments import add_apply_arguments
from tradectl.ib import early
from tradectl.ib.link import REQUEST_TIMEOUT
from tradectl.ib.pacer import DEFAULT_BURST
from tradectl.schemas.yaml_source import read_rule_file

SWITCH = "TRADECTL_CONNECT_EARLY"
# The rule models' defaults (tradectl.schemas.models.Gateway); tests/cli/test_early_connect.py
# keeps them equal. Were they ever to differ, the connection would only be closed unused.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4002
DEFAULT_CLIENT_ID = 17
DEFAULT_CONNECT_TIMEOUT = 10.0
YAML_SUFFIXES = (".yaml", ".yml")


@contextmanager
def connecting_early(arguments: Sequence[str]) -> Iterator[None]:
    """Around ``tradectl apply ARGUMENTS``: connect while the command loads when the arguments
    and the rule file allow it; close the connection at the end if the command did not take
    it."""
    address = early_address(arguments)
    try:
        if address is not None:
            early.connect_while(address, lambda: importlib.import_module("tradectl.cli.apply"))
        yield
    finally:
        early.discard()


def early_address(arguments: Sequence[str]) -> early.EarlyAddress | None:
    """Where the rules named by ``apply``'s ``arguments`` connect, read without validating
    them; None when that cannot be read safely (the module's docstring lists the cases)."""
    if os.environ.get(SWITCH, "1") == "0":
        return None
    args = _parsed(arguments)
    if args is None or args.sim or not args.yes:
        return None
    rule_file = _only_rule_file(Path(args.path))
    if rule_file is None:
        return None
    # The loader's own reader (YAML 1.2 core schema, its limits); no rule model is involved.
    parsed = read_rule_file(rule_file)
    document = parsed.data
    if parsed.errors or not isinstance(document, dict):
        return None
    gateway = document.get("gateway", {})
    account = document.get("account")
    if not isinstance(gateway, dict) or not isinstance(account, dict):
        return None
    if "connect_timeout" in gateway:
        return None
    host = gateway.get("host", DEFAULT_HOST)
    port = gateway.get("port", DEFAULT_PORT)
    client_id = gateway.get("client_id", DEFAULT_CLIENT_ID)
    account_id = account.get("id")
    if not (isinstance(host, str) and isinstance(account_id, str)):
        return None
    if not (_whole(port) and _whole(client_id)) or client_id == early.MASTER_CLIENT_ID:
        return None
    return early.EarlyAddress(
        host=host,
        port=port,
        client_id=client_id,
        account=account_id,
        timeout=DEFAULT_CONNECT_TIMEOUT,
        readonly=False,
        pacing_rate=args.max_rate,
        pacing_burst=DEFAULT_BURST,
        request_timeout=REQUEST_TIMEOUT,
    )


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _only_rule_file(path: Path) -> Path | None:
    """The one YAML file ``path`` names or holds; None for anything else."""
    if path.suffix in YAML_SUFFIXES:
        return path if path.is_file() else None
    if not path.is_dir():
        return None
    try:
        found = [entry for entry in path.iterdir() if entry.name.endswith(YAML_SUFFIXES)]
    except OSError:
        return None
    return found[0] if len(found) == 1 and found[0].is_file() else None


class _Unusable(Exception):
    pass


class _QuietParser(argparse.ArgumentParser):
    """Reads the arguments without a word: the command's own parser reports what is wrong."""

    def error(self, message: str) -> NoReturn:
        raise _Unusable(message)


def _parsed(arguments: Sequence[str]) -> argparse.Namespace | None:
    parser = _QuietParser(prog="tradectl apply", add_help=False)
    add_apply_arguments(parser)
    try:
        return parser.parse_args(list(arguments))
    except _Unusable:
        return None
