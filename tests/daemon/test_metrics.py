"""The daemon's Prometheus metrics: names, bounded labels, what each event moves, the address
rules of --metrics, and that a daemon without metrics or alerts loads neither library."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tradectl.journal import Journal
from tradectl.planner.domain import Observed, Position, Quote
from tradectl.records.store import journal_file
from tradectl.schemas.models import RuleSet
from tradectl.service.metrics import (
    DaemonMetrics,
    MetricsAddress,
    MetricsAddressError,
    parse_metrics_address,
    pass_outcome_label,
)
from tradectl.service.telemetry import PassFacts, allocation_drift, read_outbox


def sample(metrics: DaemonMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


ISSUE_19_METRICS = {
    "tradectl_passes",
    "tradectl_pass_duration_seconds",
    "tradectl_orders",
    "tradectl_ib_rejections",
    "tradectl_pacer_queued_messages",
    "tradectl_ib_messages_sent",
    "tradectl_connection_state",
    "tradectl_gateway_connected",
    "tradectl_reconnects",
    "tradectl_breaker_tripped",
    "tradectl_halted",
    "tradectl_rules_generation_info",
    "tradectl_rules_degraded",
    "tradectl_allocation_drift_ratio",
    "tradectl_order_efficiency_ratio",
    "tradectl_records_outbox_pending_batches",
    "tradectl_records_outbox_failed_batches",
    "tradectl_last_successful_pass_age_seconds",
    "tradectl_orphaned_protections",
    # issue #17
    "tradectl_live_state_mismatches",
}


def test_every_metric_carries_the_prefix_and_counters_end_in_total(tmp_path: Path) -> None:
    metrics = DaemonMetrics(state_dir=tmp_path)
    families = list(metrics.registry.collect())
    ours = [family for family in families if not family.name.startswith("process_")]
    assert {family.name for family in ours} >= ISSUE_19_METRICS
    for family in ours:
        assert family.name.startswith("tradectl_"), family.name
        for found in family.samples:
            if family.type == "counter" and not found.name.endswith("_created"):
                assert found.name.endswith("_total"), found.name
            assert not {"symbol", "order_id", "order_ref"} & set(found.labels), found


def test_events_move_the_metrics() -> None:
    now = [1000.0]
    metrics = DaemonMetrics(
        pacer_waiting=lambda: 7,
        messages_sent=lambda: 120,
        live_state_mismatches=lambda: 2,
        clock=lambda: now[0],
    )
    facts = PassFacts(
        sent=(("place", "scales"), ("place", "scales"), ("cancel", "brackets")),
        blocked=(("place", "allocations"),),
        drift={"core": 0.02, "satellite": 0.005},
        order_efficiency_ratio=3.5,
    )
    metrics.pass_finished(0.3, "ok", facts)
    metrics.pass_finished(0.01, "skipped: disconnected", None)
    now[0] = 1030.0
    assert sample(metrics, "tradectl_passes_total", outcome="ok") == 1
    assert sample(metrics, "tradectl_passes_total", outcome="skipped") == 1
    assert sample(metrics, "tradectl_pass_duration_seconds_count") == 2
    assert sample(metrics, "tradectl_pass_duration_seconds_bucket", le="0.5") == 2
    assert (
        sample(metrics, "tradectl_orders_total", action="place", kind="scales", outcome="sent") == 2
    )
    assert (
        sample(
            metrics, "tradectl_orders_total", action="place", kind="allocations", outcome="blocked"
        )
        == 1
    )
    assert sample(metrics, "tradectl_allocation_drift_ratio", rule="core") == 0.02
    assert sample(metrics, "tradectl_order_efficiency_ratio") == 3.5
    assert sample(metrics, "tradectl_pacer_queued_messages") == 7
    assert sample(metrics, "tradectl_ib_messages_sent_total") == 120
    assert sample(metrics, "tradectl_live_state_mismatches_total") == 2
    assert sample(metrics, "tradectl_last_successful_pass_age_seconds") == 30
    assert sample(metrics, "tradectl_last_successful_pass_timestamp_seconds") == 1000

    metrics.pass_finished(0.2, "ok", PassFacts(drift={"core": 0.0}))
    assert sample(metrics, "tradectl_allocation_drift_ratio", rule="satellite") is None

    metrics.connection_changed("link down (1100)")
    assert sample(metrics, "tradectl_gateway_connected") == 0
    assert sample(metrics, "tradectl_connection_state", state="link down (1100)") == 1
    assert sample(metrics, "tradectl_connection_state", state="connected") == 0
    metrics.reconnected()
    assert sample(metrics, "tradectl_reconnects_total") == 1

    metrics.breaker_changed(True, "NAV down 6%")
    metrics.halt_changed(True, "tradectl halt")
    assert sample(metrics, "tradectl_breaker_tripped") == 1
    assert sample(metrics, "tradectl_halted") == 1

    metrics.rules_changed("abc", ())
    metrics.rules_changed("abc", ("a.yaml:1:1: x: bad", "a.yaml:2:1: y: bad"))
    assert sample(metrics, "tradectl_rules_degraded") == 1
    assert sample(metrics, "tradectl_rules_errors") == 2
    assert sample(metrics, "tradectl_rules_generation_info", generation="abc") == 1
    metrics.rules_changed("def", ())
    assert sample(metrics, "tradectl_rules_generation_info", generation="abc") is None
    assert sample(metrics, "tradectl_rules_degraded") == 0

    metrics.order_rejected("dip", 201, "Order rejected")
    metrics.order_filled("dip", "BUY 10 AAPL @ 100")
    metrics.orphaned_protections(2)
    assert sample(metrics, "tradectl_ib_rejections_total", code="201", rule="dip") == 1
    assert sample(metrics, "tradectl_executions_total", rule="dip") == 1
    assert sample(metrics, "tradectl_orphaned_protections") == 2


def test_allocation_drift_is_the_largest_weight_gap_of_each_allocation() -> None:
    rules = RuleSet.model_validate(
        {
            "account": {"id": "DU0000001"},
            "risk": {
                "max_order_value": 100000,
                "max_position_fraction": 0.5,
                "max_risk_per_trade_fraction": 0.02,
                "max_daily_loss_fraction": 0.05,
            },
            "allocations": {
                "core": {
                    "capital": {"amount": 100000},
                    "targets": {"AAPL": 0.3, "MSFT": 0.2, "GOOGL": 0.1},
                }
            },
        }
    )
    moment = datetime(2026, 1, 5, 15, tzinfo=UTC)
    observed = Observed(
        account_id="DU0000001",
        net_liquidation=200000,
        cash=0,
        buying_power=0,
        day_start_nav=200000,
        positions={"AAPL": Position("AAPL", 200), "MSFT": Position("MSFT", 40)},
        quotes={"AAPL": Quote("AAPL", 100.0, moment), "MSFT": Quote("MSFT", 500.0, moment)},
    )
    # AAPL holds 0.20 (target 0.30), MSFT 0.20 (0.20); GOOGL has no price and is left out.
    assert allocation_drift(rules, observed) == {"core": pytest.approx(0.1)}


@pytest.mark.parametrize(
    ("text", "allow_remote", "expected"),
    [
        ("9464", False, MetricsAddress("127.0.0.1", 9464)),
        ("127.0.0.1:0", False, MetricsAddress("127.0.0.1", 0)),
        ("localhost:9464", False, MetricsAddress("localhost", 9464)),
        ("[::1]:9464", False, MetricsAddress("::1", 9464)),
        ("0.0.0.0:9464", True, MetricsAddress("0.0.0.0", 9464)),
    ],
)
def test_metrics_addresses(text: str, allow_remote: bool, expected: MetricsAddress) -> None:
    assert parse_metrics_address(text, allow_remote) == expected


@pytest.mark.parametrize("text", ["0.0.0.0:9464", "10.1.2.3:9464", "metrics.example:9464"])
def test_a_non_loopback_address_needs_the_explicit_flag(text: str) -> None:
    with pytest.raises(MetricsAddressError, match="--metrics-allow-remote"):
        parse_metrics_address(text, allow_remote=False)


@pytest.mark.parametrize("text", ["127.0.0.1:http", "127.0.0.1:70000", "127.0.0.1:"])
def test_a_bad_port_is_refused(text: str) -> None:
    with pytest.raises(MetricsAddressError):
        parse_metrics_address(text, allow_remote=False)


@pytest.mark.parametrize(
    ("outcome", "label"),
    [
        ("ok", "ok"),
        ("skipped: link down (1100)", "skipped"),
        ("stopped early", "stopped_early"),
        ("failed: ConnectionError: boom", "failed"),
        ("abandoned", "abandoned"),
        ("", "failed"),
    ],
)
def test_pass_outcomes_become_bounded_labels(outcome: str, label: str) -> None:
    assert pass_outcome_label(outcome) == label


def test_a_daemon_without_metrics_or_alerts_loads_neither_library() -> None:
    script = (
        "import sys, tradectl.cli.run, daemon.service.supervisor, daemon.service.broker\n"
        "print('prometheus_client' in sys.modules, 'apprise' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.split()[-2:] == ["False", "False"]


def test_the_records_outbox_is_read_from_the_journal(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    journal.close()
    assert read_outbox(tmp_path / "missing", 0) is None
    conn = sqlite3.connect(journal_file(tmp_path))
    rows = [
        ("a", "pending", 0, 1000.0, None),
        ("b", "pending", 3, 500.0, "503 Service Unavailable"),
        ("c", "done", 2, 100.0, None),
        ("d", "failed", 1, 100.0, "another object under our name"),
    ]
    with conn:
        conn.executemany(
            "INSERT INTO records_outbox (dataset, trade_date, batch_id, bucket, object_name, "
            "local_file, md5, crc32c, state, attempts, next_attempt_at, last_error, created_at) "
            "VALUES ('fills', '2026-01-05', ?1, 'b', ?1, 'f', 'm', 'c', ?2, ?3, 0, ?5, ?4)",
            rows,
        )
    conn.close()
    outbox = read_outbox(tmp_path, 4600.0)
    assert outbox is not None
    assert (outbox.pending, outbox.retrying, outbox.failed, outbox.failed_attempts) == (2, 1, 1, 6)
    assert outbox.oldest_pending_age_seconds == 4100.0
    assert outbox.failing
    metrics = DaemonMetrics(state_dir=tmp_path)
    assert sample(metrics, "tradectl_records_outbox_pending_batches") == 2
    assert sample(metrics, "tradectl_records_outbox_retrying_batches") == 1
    assert sample(metrics, "tradectl_records_outbox_failed_batches") == 1
    assert sample(metrics, "tradectl_records_upload_failures_total") == 6
