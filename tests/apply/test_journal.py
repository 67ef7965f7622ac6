from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tradectl.journal import (
    MIGRATIONS,
    AlreadyLive,
    BrokerRecord,
    Journal,
    JournalError,
    JournalLocked,
    JournalVersionError,
    RecordedExecution,
    match_journal,
    resolve_state_dir,
)
from tradectl.planner.domain import Intent, OrderSpec

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def place(key: str, ref: str, quantity: int = 10) -> Intent:
    return Intent(
        key=key,
        action="place",
        kind="brackets",
        rule="aapl-pullback",
        leg=ref.rsplit(":", 1)[1],
        symbol="AAPL",
        purpose="opening",
        reason="entry not working",
        order=OrderSpec(
            symbol="AAPL",
            action="BUY",
            quantity=quantity,
            order_type="LMT",
            order_ref=ref,
            limit_price=150.0,
        ),
    )


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal.open(tmp_path, clock=lambda: NOW)


def test_fresh_journal_is_wal_and_at_the_latest_schema_version(
    journal: Journal, tmp_path: Path
) -> None:
    journal.close()
    db = sqlite3.connect(tmp_path / "journal.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    versions = [row[0] for row in db.execute("SELECT version FROM schema_version ORDER BY version")]
    assert versions == list(range(1, len(MIGRATIONS) + 1))


def test_reopening_applies_no_migration_twice(tmp_path: Path) -> None:
    Journal.open(tmp_path).close()
    Journal.open(tmp_path).close()
    db = sqlite3.connect(tmp_path / "journal.sqlite3")
    assert db.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == len(MIGRATIONS)


def test_a_journal_from_a_newer_tradectl_is_refused(tmp_path: Path) -> None:
    Journal.open(tmp_path).close()
    db = sqlite3.connect(tmp_path / "journal.sqlite3")
    db.execute("INSERT INTO schema_version VALUES (?, 'later')", (len(MIGRATIONS) + 1,))
    db.commit()
    db.close()
    with pytest.raises(JournalVersionError, match="upgrade tradectl"):
        Journal.open(tmp_path)


def test_a_second_process_on_the_same_state_dir_is_refused(
    journal: Journal, tmp_path: Path
) -> None:
    with pytest.raises(JournalLocked, match="in use by another tradectl process"):
        Journal.open(tmp_path)


def test_state_dir_comes_from_option_then_systemd_then_env_then_xdg(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", "/home/trader")
    assert resolve_state_dir(None) == Path("/home/trader/.local/state/tradectl")
    monkeypatch.setenv("XDG_STATE_HOME", "/xdg")
    assert resolve_state_dir(None) == Path("/xdg/tradectl")
    assert resolve_state_dir(None, sim=True) == Path("/xdg/tradectl/sim")
    monkeypatch.setenv("TRADECTL_STATE_DIR", "/srv/tradectl")
    assert resolve_state_dir(None) == Path("/srv/tradectl")
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/tradectl:/var/lib/other")
    assert resolve_state_dir(None) == Path("/var/lib/tradectl")
    assert resolve_state_dir(None, sim=True) == Path("/var/lib/tradectl/sim")
    # Relative paths are pinned to where the command started, and an explicit one is kept.
    assert resolve_state_dir("here") == tmp_path / "here"
    assert resolve_state_dir("here", sim=True) == tmp_path / "here"


def test_order_ids_increase_and_are_never_reused_even_when_unsent(journal: Journal) -> None:
    first = journal.journal_intents(
        [place("k1", "tctl:a:g:entry")], client_id=17, session="s1", next_valid_order_id=5
    )
    assert first[0].order_id == 5
    journal.finish_intent(first[0].id, "unsent")
    # The connection offers a lower id again (a gateway restart, say): the journal's mark wins.
    second = journal.journal_intents(
        [place("k1", "tctl:a:g:entry"), place("k2", "tctl:a:g:stop")],
        client_id=17,
        session="s2",
        next_valid_order_id=1,
    )
    assert [intent.order_id for intent in second] == [6, 7]
    assert journal.order_id_high_water(17) == 7
    assert journal.order_id_high_water(18) == -1


def test_a_live_key_is_never_journaled_twice_and_the_group_rolls_back(journal: Journal) -> None:
    journal.journal_intents(
        [place("k1", "tctl:a:g:entry")], client_id=17, session="s", next_valid_order_id=1
    )
    with pytest.raises(AlreadyLive, match="k1"):
        journal.journal_intents(
            [place("k2", "tctl:a:g:stop"), place("k1", "tctl:a:g:entry")],
            client_id=17,
            session="s",
            next_valid_order_id=1,
        )
    assert [intent.key for intent in journal.live_intents()] == ["k1"]
    assert journal.order_id_high_water(17) == 1


def test_intent_lifecycle_and_in_flight_keys(journal: Journal) -> None:
    (intent,) = journal.journal_intents(
        [place("k1", "tctl:a:g:entry")], client_id=17, session="s", next_valid_order_id=1
    )
    assert journal.in_flight_keys() == {"k1"}
    journal.mark_sent(intent.id)
    assert journal.intent(intent.id).state == "sent"
    assert journal.in_flight_keys() == {"k1"}
    journal.mark_acknowledged(intent.id, perm_id=9001)
    assert journal.in_flight_keys() == frozenset()
    assert journal.known_perm_ids() == {9001}
    journal.finish_intent(intent.id, "filled")
    assert journal.live_intents() == []
    # A finished key may be planned again (tomorrow's allocation, say).
    journal.journal_intents(
        [place("k1", "tctl:a:g:entry")], client_id=17, session="s", next_valid_order_id=1
    )


def test_live_intents_read_again_show_every_change(journal: Journal) -> None:
    first, second = journal.journal_intents(
        [place("k1", "tctl:a:g:entry"), place("k2", "tctl:b:g:entry")],
        client_id=17,
        session="s",
        next_valid_order_id=1,
    )
    assert [intent.state for intent in journal.live_intents()] == ["journaled", "journaled"]
    journal.mark_sent(first.id)
    journal.mark_acknowledged(first.id, perm_id=9001)
    journal.finish_intent(second.id, "cancelled")
    (live,) = journal.live_intents()
    assert (live.key, live.state, live.perm_id) == ("k1", "acknowledged", 9001)
    assert journal.live_intents() == [journal.intent(first.id)]


def test_unconfirmed_places_are_the_places_journaled_or_sent_and_not_yet_acknowledged(
    journal: Journal,
) -> None:
    _, second, third = journal.journal_intents(
        [
            place("k1", "tctl:a:g:entry"),
            place("k2", "tctl:b:g:entry"),
            place("k3", "tctl:c:g:entry"),
        ],
        client_id=17,
        session="s",
        next_valid_order_id=1,
    )
    journal.mark_sent(second.id)
    journal.mark_sent(third.id)
    journal.mark_acknowledged(third.id, perm_id=9001)
    assert [intent.key for intent in journal.unconfirmed_places()] == ["k1", "k2"]
    assert {intent.key for intent in journal.live_intents()} == {"k1", "k2", "k3"}


def resync(journal: Journal, broker: list[BrokerRecord], now: datetime = NOW) -> dict[str, str]:
    transitions = match_journal(
        journal.live_intents(),
        broker,
        known_perm_ids=journal.known_perm_ids(),
        now=now,
        ack_timeout=timedelta(seconds=30),
    )
    return {
        journal.intent(transition.intent_id).key: transition.state for transition in transitions
    }


def test_crash_between_journal_and_send_marks_the_intent_unsent(journal: Journal) -> None:
    journal.journal_intents(
        [place("k1", "tctl:a:g:entry")], client_id=17, session="old", next_valid_order_id=1
    )
    assert resync(journal, []) == {"k1": "unsent"}


def test_crash_between_send_and_ack_adopts_the_broker_order(journal: Journal) -> None:
    (intent,) = journal.journal_intents(
        [place("k1", "tctl:a:g:entry")], client_id=17, session="old", next_valid_order_id=1
    )
    broker = [BrokerRecord("open", "tctl:a:g:entry", intent.order_id or 0, 17, 555, "Submitted")]
    assert resync(journal, broker) == {"k1": "acknowledged"}


def test_an_earlier_order_with_the_same_ref_is_not_mistaken_for_this_intent(
    journal: Journal,
) -> None:
    (earlier,) = journal.journal_intents(
        [place("slice-1", "tctl:core:g:AAPL")], client_id=17, session="old", next_valid_order_id=1
    )
    journal.mark_acknowledged(earlier.id, perm_id=100)
    journal.finish_intent(earlier.id, "filled")
    journal.journal_intents(
        [place("slice-2", "tctl:core:g:AAPL")], client_id=17, session="old", next_valid_order_id=1
    )
    # Completed orders may carry no order id: only the permId tells them apart.
    broker = [BrokerRecord("completed", "tctl:core:g:AAPL", 0, 17, 100, "Filled", 10)]
    assert resync(journal, broker) == {"slice-2": "unsent"}
    broker.append(BrokerRecord("completed", "tctl:core:g:AAPL", 0, 17, 101, "Filled", 10))
    assert resync(journal, broker) == {"slice-2": "filled"}


def test_executions_alone_prove_an_order_was_sent(journal: Journal) -> None:
    (intent,) = journal.journal_intents(
        [place("k1", "tctl:a:g:entry", quantity=10)],
        client_id=17,
        session="old",
        next_valid_order_id=1,
    )
    order_id = intent.order_id or 0
    broker = [BrokerRecord("execution", "tctl:a:g:entry", order_id, 17, 7, filled=4)]
    assert resync(journal, broker) == {"k1": "acknowledged"}
    broker.append(BrokerRecord("execution", "tctl:a:g:entry", order_id, 17, 7, filled=6))
    assert resync(journal, broker) == {"k1": "filled"}


def test_a_sent_intent_without_trace_stays_in_flight_until_the_timeout(journal: Journal) -> None:
    # Sent by an earlier process that crashed right after the write: the gateway may still be
    # processing it, so it is not planned again before the acknowledgement timeout.
    (intent,) = journal.journal_intents(
        [place("k1", "tctl:a:g:entry")], client_id=17, session="old", next_valid_order_id=1
    )
    journal.mark_sent(intent.id)
    assert resync(journal, []) == {}
    assert resync(journal, [], now=NOW + timedelta(seconds=29)) == {}
    assert resync(journal, [], now=NOW + timedelta(minutes=5)) == {"k1": "unsent"}


def test_another_clients_order_with_the_same_id_is_not_adopted(journal: Journal) -> None:
    (intent,) = journal.journal_intents(
        [place("k1", "tctl:a:g:entry")], client_id=17, session="old", next_valid_order_id=1
    )
    broker = [BrokerRecord("open", "tctl:a:g:entry", intent.order_id or 0, 99, 0, "Submitted")]
    assert resync(journal, broker) == {"k1": "unsent"}


def test_terminal_broker_status_ends_an_adopted_intent(journal: Journal) -> None:
    (intent,) = journal.journal_intents(
        [place("k1", "tctl:a:g:entry")], client_id=17, session="old", next_valid_order_id=1
    )
    broker = [BrokerRecord("completed", "tctl:a:g:entry", intent.order_id or 0, 17, 5, "Inactive")]
    assert resync(journal, broker) == {"k1": "rejected"}


def test_an_acknowledged_order_that_vanished_is_closed(journal: Journal) -> None:
    (intent,) = journal.journal_intents(
        [place("k1", "tctl:a:g:entry")], client_id=17, session="old", next_valid_order_id=1
    )
    journal.mark_acknowledged(intent.id, perm_id=5)
    assert resync(journal, [BrokerRecord("open", "tctl:a:g:entry", 0, 17, 5, "Submitted")]) == {}
    assert resync(journal, []) == {"k1": "cancelled"}


def test_key_value_state_survives_reopening(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        journal.set_state("halt", "by operator")
        journal.set_state("breaker_tripped_on", "2026-11-25")
        journal.delete_state("breaker_tripped_on")
    with Journal.open(tmp_path) as journal:
        assert journal.get_state("halt") == "by operator"
        assert journal.get_state("breaker_tripped_on") is None


def test_order_efficiency_counts_todays_sent_actions_against_owned_executions(
    journal: Journal,
) -> None:
    day_start = NOW - timedelta(hours=6)
    placed = journal.journal_intents(
        [place(f"k{i}", f"tctl:a:g:L{i}") for i in range(1, 4)],
        client_id=17,
        session="s",
        next_valid_order_id=1,
    )
    for intent in placed[:2]:
        journal.mark_sent(intent.id)
    assert placed[2].state == "journaled"
    for exec_id, ref, when in [
        ("e1", "tctl:a:g:L1", NOW),
        ("e2", None, NOW),
        ("e3", "tctl:a:g:L2", day_start - timedelta(minutes=1)),
    ]:
        journal.record_execution(
            RecordedExecution(exec_id, 1, 17, 0, ref, "AAPL", "BOT", 10, 150.0, when)
        )
    efficiency = journal.order_efficiency(day_start)
    # Unsent intents, manual fills and yesterday's fills do not count.
    assert (efficiency.submissions, efficiency.revisions, efficiency.cancels) == (2, 0, 0)
    assert efficiency.executions == 1
    assert efficiency.ratio == 1.0
    assert not efficiency.too_high
    assert "order efficiency ratio 1.0" in efficiency.line()


def test_a_journal_belongs_to_the_first_account_it_trades(tmp_path: Path) -> None:
    with Journal.open(tmp_path, clock=lambda: NOW) as journal:
        journal.bind_account("DU0000001")
        journal.bind_account("DU0000001")
        with pytest.raises(JournalError, match=r"belongs to account DU0000001.*DU7654321"):
            journal.bind_account("DU7654321")
    other = tmp_path / "other"
    other.mkdir(mode=0o700)
    Journal.open(other).close()
    reader = Journal.open_read_only(other)
    assert reader is not None
    reader.bind_account("DU7654321")
    assert reader.get_state("account") is None
    reader.close()


def settle_resync(journal: Journal, broker: list[BrokerRecord]) -> None:
    for transition in match_journal(
        journal.live_intents(),
        broker,
        known_perm_ids=journal.known_perm_ids(),
        now=NOW,
        ack_timeout=timedelta(seconds=30),
    ):
        journal.apply_transition(transition)


def modify(ref: str, order_id: int, quantity: int) -> Intent:
    spec = place("unused", ref, quantity).order
    return Intent(
        key=f"{ref}#mod:{quantity}",
        action="modify",
        kind="brackets",
        rule="aapl-pullback",
        leg="stop",
        symbol="AAPL",
        purpose="protective",
        reason="resize to the filled entry",
        order=spec,
        order_id=order_id,
    )


def test_failure_3_a_stop_filled_for_its_shrunk_quantity_closes_its_place_intent(
    journal: Journal,
) -> None:
    """Issue #12, failure 3: the stop was placed for 100, modified down to 30 and filled 30
    while no tradectl ran. IB's completed order carries order id 0; its executions carry the
    order id. The place intent must close, so a replacement stop is not refused."""
    ref = "tctl:aapl-pullback:g1:stop"
    (stop,) = journal.journal_intents(
        [place(ref, ref, quantity=100)], client_id=17, session="old", next_valid_order_id=1
    )
    order_id = stop.order_id or 0
    # The place was acknowledged before IB had given the order a permId.
    journal.mark_acknowledged(stop.id, perm_id=0)
    (resize,) = journal.journal_intents(
        [modify(ref, order_id, 30)], client_id=17, session="old", next_valid_order_id=1
    )
    journal.mark_acknowledged(resize.id, perm_id=555)
    broker = [
        BrokerRecord("completed", ref, 0, 0, 555, "Filled", filled=30, quantity=30),
        BrokerRecord("execution", ref, order_id, 17, 555, filled=30),
    ]
    settle_resync(journal, broker)
    closed = journal.intent(stop.id)
    assert (closed.state, closed.filled, closed.perm_id) == ("filled", 30, 555)
    assert [intent.action for intent in journal.live_intents()] == ["modify"]  # done once acked
    (replacement,) = journal.journal_intents(
        [place(ref, ref, quantity=70)], client_id=17, session="new", next_valid_order_id=1
    )
    assert replacement.state == "journaled"


def test_executions_are_matched_by_perm_id_when_the_order_id_was_reused(journal: Journal) -> None:
    # After a gateway restart IB may hand out the same order ids again (ib-behaviour.md).
    ref = "tctl:aapl-pullback:g1:entry"
    (entry,) = journal.journal_intents(
        [place(ref, ref, quantity=10)], client_id=17, session="old", next_valid_order_id=1
    )
    journal.mark_acknowledged(entry.id, perm_id=777)
    broker = [
        BrokerRecord("execution", ref, 0, 17, 777, filled=4),
        BrokerRecord("execution", ref, 99, 17, 777, filled=6),
    ]
    settle_resync(journal, broker)
    assert (journal.intent(entry.id).state, journal.intent(entry.id).filled) == ("filled", 10)


def test_a_completed_order_renamed_by_a_rule_edit_is_still_found_by_perm_id(
    journal: Journal,
) -> None:
    ref = "tctl:aapl-pullback:g1:stop"
    (stop,) = journal.journal_intents(
        [place(ref, ref, quantity=10)], client_id=17, session="old", next_valid_order_id=1
    )
    journal.mark_acknowledged(stop.id, perm_id=888)
    edited = "tctl:aapl-pullback:g2:stop"
    settle_resync(journal, [BrokerRecord("completed", edited, 0, 0, 888, "Filled", 10, 10)])
    assert journal.intent(stop.id).state == "filled"


def test_an_id_0_completed_order_owned_by_another_place_intent_is_not_adopted(
    journal: Journal,
) -> None:
    ref = "tctl:aapl-pullback:g1:stop"
    (first,) = journal.journal_intents(
        [place(ref, ref)], client_id=17, session="old", next_valid_order_id=1
    )
    journal.mark_acknowledged(first.id, perm_id=100)
    journal.finish_intent(first.id, "filled")
    (second,) = journal.journal_intents(
        [place(ref, ref)], client_id=17, session="old", next_valid_order_id=1
    )
    journal.mark_sent(second.id)
    settle_resync(journal, [BrokerRecord("completed", ref, 0, 0, 100, "Filled", 10, 10)])
    assert journal.intent(second.id).state == "sent"


def test_rows_from_before_con_ids_stay_valid_and_new_ones_keep_the_con_id(
    tmp_path: Path,
) -> None:
    # A journal written by the tradectl before conIds were kept (schema 4), with one fill.
    db = sqlite3.connect(tmp_path / "journal.sqlite3")
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL)")
    for number, script in enumerate(MIGRATIONS[:4], start=1):
        db.executescript(script)
        db.execute("INSERT INTO schema_version VALUES (?, 'earlier')", (number,))
    db.execute(
        "INSERT INTO executions (exec_id, order_id, client_id, perm_id, order_ref, symbol, side, "
        "shares, price, time, recorded_at) VALUES ('old', 1, 17, 9, 'tctl:dip:g1:L1', 'AAPL', "
        "'BOT', 10, 150.0, ?, ?)",
        (NOW.isoformat(), NOW.isoformat()),
    )
    db.commit()
    db.close()

    with Journal.open(tmp_path, clock=lambda: NOW) as journal:
        journal.record_execution(
            RecordedExecution(
                "new",
                2,
                17,
                10,
                "tctl:dip:g2:L1",
                "SHOP@SMART/TSE:CAD",
                "BOT",
                5,
                200.0,
                NOW,
                con_id=800000102,
            )
        )
        fills = {(e.exec_id, e.symbol, e.con_id) for e in journal.executions()}
        ledger = {(row.generation, row.symbol, row.entered) for row in journal.ledger()}

    assert fills == {("old", "AAPL", 0), ("new", "SHOP@SMART/TSE:CAD", 800000102)}
    assert ledger == {("g1", "AAPL", 10.0), ("g2", "SHOP@SMART/TSE:CAD", 5.0)}
    db = sqlite3.connect(tmp_path / "journal.sqlite3")
    by_generation = db.execute("SELECT generation, con_id FROM ledger ORDER BY generation")
    assert by_generation.fetchall() == [("g1", None), ("g2", 800000102)]
