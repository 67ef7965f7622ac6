"""`tradectl apply` connects while it loads (docs/apply.md, "Start and exit"): through the real
entry point (``python -m tradectl``) and ib_insync, against the sim over loopback. The early
connection loses nothing of IB's handshake, is closed unused whenever the validated rules ask for
anything else, and is never made when it cannot be shown safe."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from ib_insync import IB, LimitOrder, MarketOrder, Stock

from tradectl.cli.early_connect import early_address
from tradectl.ib import IbAdapter, early
from tradectl.ib.pacer import DEFAULT_BURST, DEFAULT_RATE
from tradectl.runtime.session import connection_settings
from tradectl.schemas.loader import load_rule_set
from tradectl.sim import SimState

from .conftest import (
    CLIENT_ID,
    DEFAULT_PRICES,
    HANDSHAKE,
    Gateway,
    allocation_rules,
    apply_subprocess,
    sim_state,
    wait_until,
    write_rules,
)
from .test_pacer import max_in_any_window

pytestmark = pytest.mark.e2e

TARGETS = {"AAPL": 0.1, "MSFT": 0.1, "SPY": 0.1}
EARLY_OFF = {"TRADECTL_CONNECT_EARLY": "0"}
# Columns that say when something happened (which two runs never share; also every "..._at"),
# and each connection's own random session id.
NOT_COMPARED = {"at", "time", "first_seen", "session"}


def apply(
    rules: Path, state_dir: Path, *options: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`tradectl apply RULES --yes --json` as a user runs it: the entry point decides whether
    to connect early."""
    return apply_subprocess(rules, state_dir, env=env, timeout=120, options=("--json", *options))


def earlier_activity(gateway: Gateway) -> None:
    """What a gateway holds before apply starts: an earlier session of apply's client id left
    a filled order (an execution and its commission) and a working one; another client left a
    working order of its own."""
    for client_id in (CLIENT_ID, 99):
        ib = IB()
        ib.connect("127.0.0.1", gateway.sim.port, clientId=client_id, timeout=20)
        try:
            if client_id == CLIENT_ID:
                ib.placeOrder(Stock("NVDA", "SMART", "USD"), MarketOrder("BUY", 10))
                ib.placeOrder(Stock("AAPL", "SMART", "USD"), LimitOrder("BUY", 5, 50.0))
            else:
                ib.placeOrder(Stock("AMZN", "SMART", "USD"), LimitOrder("BUY", 3, 100.0))
            ib.sleep(0.2)
        finally:
            ib.disconnect()
    wait_until(lambda: gateway.positions().get("NVDA") == 10, 20)


def journal_rows(state_dir: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the journal holds that says what the broker reported and what was sent, without
    the moments they happened."""
    connection = sqlite3.connect(state_dir / "journal.sqlite3")
    try:
        rows = {}
        for table in (
            "intents",
            "orders",
            "order_status_history",
            "executions",
            "commissions",
            "gateway_errors",
            "ledger",
            "ledger_fills",
        ):
            cursor = connection.execute(f"SELECT * FROM {table}")
            names = [column[0] for column in cursor.description]
            kept = [
                i
                for i, name in enumerate(names)
                if name not in NOT_COMPARED and not name.endswith("_at")
            ]
            rows[table] = sorted(
                (tuple(row[i] for i in kept) for row in cursor.fetchall()), key=repr
            )
        return rows
    finally:
        connection.close()


def closed(gateway: Gateway, client_id: int = CLIENT_ID) -> bool:
    return not gateway.client_connected(client_id)


def test_an_early_connection_journals_what_a_normal_one_does_and_places_nothing_twice(
    gateway: Gateway, tmp_path: Path
) -> None:
    """A gateway holds an earlier session's working order, fill and commission, another
    client's order, and the fills of a first apply (connected early). A second apply, early and
    as usual, each from a copy of the same journal: both learn all of it from the handshake and
    the pass, journal the same rows, and send nothing again."""
    earlier_activity(gateway)
    rules = allocation_rules(tmp_path / "rules", gateway, TARGETS)
    first = apply(rules, tmp_path / "state")
    assert first.returncode == 0, first.stdout + first.stderr
    result = json.loads(first.stdout)
    assert result["connected_early"] is True
    assert result["sent"] == len(TARGETS)
    wait_until(lambda: all(gateway.positions().get(symbol) for symbol in TARGETS), 20)
    again = {}
    for name, env in (("early", {}), ("normal", EARLY_OFF)):
        shutil.copytree(tmp_path / "state", tmp_path / name)
        finished = apply(rules, tmp_path / name, env=env)
        assert finished.returncode == 0, finished.stdout + finished.stderr
        again[name] = json.loads(finished.stdout)
    assert again["early"]["connected_early"] is True
    assert again["normal"]["connected_early"] is False
    assert again["early"]["sent"] == again["normal"]["sent"] == 0
    assert again["early"]["plan"] == again["normal"]["plan"]
    early_rows = journal_rows(tmp_path / "early")
    # The earlier session's fill and the first apply's, each with its commission.
    assert len(early_rows["executions"]) == len(early_rows["commissions"]) == len(TARGETS) + 1
    assert early_rows == journal_rows(tmp_path / "normal")
    owned = [ref for ref in gateway.placed_refs() if ref.startswith("tctl:")]
    assert len(owned) == len(TARGETS) == len(set(owned))
    # One connection per apply: earlier_activity's, then the three applies'.
    handshakes = [m for m in gateway.messages("startApi") if m["client_id"] == CLIENT_ID]
    assert len(handshakes) == 4


@pytest.mark.parametrize("differs", ["port", "client_id", "account"])
def test_validated_settings_that_differ_from_the_hint_close_the_early_connection_first(
    gateway_factory: Callable[[SimState], Gateway],
    tmp_path: Path,
    differs: str,
    apply_in_process: Any,
) -> None:
    """The hint is read from one rule file, the rules apply validates from another, so they
    differ as a hint can differ from its validated rules (an edit between the two reads, say).
    The early connection is closed before the adapter sends anything, and apply connects to
    what the validated rules name."""
    validated = gateway_factory(sim_state(DEFAULT_PRICES))
    hinted = gateway_factory(sim_state(DEFAULT_PRICES)) if differs == "port" else validated
    hint_options: dict[str, Any] = {}
    if differs == "client_id":
        hint_options["client_id"] = CLIENT_ID + 1
    if differs == "account":
        hint_options["account"] = {"id": "DU0000002"}
    hint_rules = allocation_rules(tmp_path / "hint", hinted, TARGETS, **hint_options)
    address = early_address([str(hint_rules), "--yes"])
    assert address is not None
    early.connect_while(address, lambda: None)
    try:
        hint_client = address.client_id
        assert hinted.client_connected(hint_client)
        outcome = apply_in_process(allocation_rules(tmp_path / "rules", validated, TARGETS))
    finally:
        early.discard()
    assert outcome.code == 0, outcome.out + outcome.err
    wait_until(lambda: closed(hinted, hint_client), 20)
    hinted_messages = [m for m in hinted.messages() if m["client_id"] == hint_client]
    starts = [i for i, m in enumerate(hinted_messages) if m["msg"] == "startApi"]
    hint_session = hinted_messages[: starts[1]] if len(starts) > 1 else hinted_messages
    assert {m["msg"] for m in hint_session} <= HANDSHAKE
    applied = [m for m in validated.messages() if m["client_id"] == CLIENT_ID]
    if validated is hinted and hint_client == CLIENT_ID:
        applied = applied[len(hint_session) :]
    assert [m["msg"] for m in applied].count("startApi") == 1
    assert len(validated.placed_refs()) == len(TARGETS)
    # The early session ended before apply's own connection said a word.
    assert max(m["time"] for m in hint_session) < min(m["time"] for m in applied)


def test_client_id_0_and_a_directory_of_several_files_connect_as_usual(
    gateway: Gateway, tmp_path: Path
) -> None:
    master = allocation_rules(tmp_path / "master", gateway, TARGETS, client_id=0)
    assert early_address([str(master), "--yes"]) is None
    finished = apply(master, tmp_path / "state-master")
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert json.loads(finished.stdout)["connected_early"] is False
    several = allocation_rules(tmp_path / "several", gateway, TARGETS, client_id=CLIENT_ID + 2)
    (several / "more.yaml").write_text("version: 1\n")
    assert early_address([str(several), "--yes"]) is None


def test_apply_with_the_embedded_sim_works_and_connects_as_usual(
    gateway: Gateway, tmp_path: Path
) -> None:
    rules = allocation_rules(tmp_path / "rules", gateway, TARGETS)
    finished = apply(rules, tmp_path / "state", "--sim")
    assert finished.returncode == 0, finished.stdout + finished.stderr
    result = json.loads(finished.stdout)
    assert result["connected_early"] is False
    assert result["sent"] == len(TARGETS)
    # The rules' own gateway heard nothing: --sim replaces it, and no hint went there.
    assert gateway.messages() == []


def test_the_handshake_and_the_orders_go_through_one_bucket(
    gateway_factory: Callable[[SimState], Gateway], tmp_path: Path
) -> None:
    """The early handshake's messages and the adapter's that follow at once share the pacer's
    bucket: no one-second window on the wire carries more than 47 + 1.5 messages."""
    symbols = [f"SYM{number:04d}" for number in range(1, 61)]
    gateway = gateway_factory(sim_state(dict.fromkeys(symbols, 50.0)))
    core = {
        "capital": {"fraction_of_nav": 0.9},
        "drift": {"absolute": 0.001},
        "min_trade_value": 0,
        "order": {"type": "limit", "offset_bps": 10},
        "targets": dict.fromkeys(symbols, 0.015),
    }
    rules = write_rules(tmp_path / "rules", gateway, allocations={"core": core})
    finished = apply(rules, tmp_path / "state")
    assert finished.returncode == 0, finished.stdout + finished.stderr
    result = json.loads(finished.stdout)
    assert result["connected_early"] is True
    assert result["sent"] == len(symbols)
    assert not any(run["errors"] for run in result["passes"])
    mine = [m for m in gateway.messages() if m["client_id"] == CLIENT_ID]
    assert not any(m.get("dropped") for m in mine)
    received = [(datetime.fromisoformat(m["time"]).timestamp(), m["msg"]) for m in mine]
    # The bucket sends at most 47 + 1.5 in any second; the sim's receive times bunch by a
    # message under load (on the usual path too: benchmarks/README.md, round five).
    assert max_in_any_window(received, 1.0) <= DEFAULT_RATE + DEFAULT_BURST + 1 < 50


def test_the_adapter_takes_over_the_link_and_the_bucket_of_the_handshake(
    gateway: Gateway, tmp_path: Path
) -> None:
    rules_dir = allocation_rules(tmp_path / "rules", gateway, TARGETS)
    address = early_address([str(rules_dir), "--yes"])
    assert address is not None
    early.connect_while(address, lambda: None)
    try:
        rules = load_rule_set([rules_dir]).rule_set
        assert rules is not None
        settings = connection_settings(rules, readonly=False)
        link = early.claim(settings)
        assert link is not None
        assert link.messages_sent == len(HANDSHAKE)
        adapter = IbAdapter(settings, None, link=link)
        adapter.connect()
        try:
            assert adapter.link is link and adapter.ib is link.ib
            # The handshake's 7 and the adapter's first (reqCurrentTime) in one count and one
            # bucket: what the handshake took from the bucket, the adapter waits for.
            assert adapter.messages_sent == len(HANDSHAKE) + 1
        finally:
            adapter.disconnect()
    finally:
        early.discard()
