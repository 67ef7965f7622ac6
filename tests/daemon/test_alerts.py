"""Which alerts the daemon's events call for: once per condition and once for its end, however
much it flaps; rate-limited; delivered with bounded retries; URLs never in the log."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.daemon.e2e_support import wait_until
from tradectl.schemas.models import Alerts
from tradectl.service.alerts import (
    Alert,
    AlertConfigError,
    AlertDispatcher,
    AlertPolicy,
    AppriseTargets,
    alert_urls,
    deliver,
)
from tradectl.service.telemetry import OutboxState

SETTINGS = Alerts(disconnect_after=timedelta(minutes=10), repeat_after=timedelta(hours=1))


def titles(alerts: Sequence[Alert]) -> list[str]:
    return [alert.title for alert in alerts]


def test_a_flapping_connection_alerts_once_after_the_threshold_and_recovers_once() -> None:
    policy = AlertPolicy(SETTINGS)
    sent: list[Alert] = []
    now = 0.0
    # Down and up every 30 s for five minutes: never down for 10 minutes, so nothing.
    for _ in range(10):
        sent += policy.connection("disconnected", now)
        sent += policy.connection("connected", now + 20)
        now += 30
    assert sent == []
    # Then down for good, with reconnection attempts flapping between states.
    for step in range(40):
        state = "connecting" if step % 2 else "disconnected"
        sent += policy.connection(state, now + step * 30)
        sent += policy.due(now + step * 30)
    sent += policy.connection("connected", now + 1300)
    assert titles(sent) == [
        "tradectl gateway unreachable",
        "tradectl reconnected to the gateway",
    ]
    assert [alert.severity for alert in sent] == ["failure", "success"]


def test_the_unreachable_alert_falls_due_with_time_alone() -> None:
    policy = AlertPolicy(SETTINGS)
    assert policy.connection("disconnected", 100) == []
    assert policy.next_deadline() == 700
    assert policy.due(699) == []
    assert titles(policy.due(700)) == ["tradectl gateway unreachable"]
    assert policy.next_deadline() is None
    assert policy.due(800) == []


@pytest.mark.parametrize(
    ("raise_", "clear", "started", "ended"),
    [
        (
            lambda p, t: p.breaker(True, "NAV down 6%", t),
            lambda p, t: p.breaker(False, "", t),
            "tradectl circuit breaker tripped",
            "tradectl circuit breaker reset",
        ),
        (
            lambda p, t: p.halt(True, "tradectl halt", t),
            lambda p, t: p.halt(False, "", t),
            "tradectl halted",
            "tradectl resumed",
        ),
        (
            lambda p, t: p.rules("abc", ("rules/a.yaml:1:1: x: bad",), t),
            lambda p, t: p.rules("abc", (), t),
            "tradectl rules degraded",
            "tradectl rules recovered",
        ),
        (
            lambda p, t: p.outbox(OutboxState(3, 1, last_error="conflict"), t),
            lambda p, t: p.outbox(OutboxState(0, 0), t),
            "tradectl records upload failing",
            "tradectl records uploads recovered",
        ),
        (
            lambda p, t: p.outbox(
                OutboxState(3, 0, retrying=1, oldest_pending_age_seconds=4000), t
            ),
            lambda p, t: p.outbox(
                OutboxState(3, 0, retrying=0, oldest_pending_age_seconds=4000), t
            ),
            "tradectl records upload failing",
            "tradectl records uploads recovered",
        ),
    ],
)
def test_a_condition_alerts_when_it_starts_and_when_it_ends_never_twice(
    raise_: object, clear: object, started: str, ended: str
) -> None:
    policy = AlertPolicy(SETTINGS)
    sent: list[Alert] = []
    sent += clear(policy, 0)  # type: ignore[operator]
    for moment in range(5):
        sent += raise_(policy, moment)  # type: ignore[operator]
    for moment in range(5, 10):
        sent += clear(policy, moment)  # type: ignore[operator]
    assert titles(sent) == [started, ended]


def test_the_same_rejection_alerts_at_most_once_per_repeat_after_and_counts_the_rest() -> None:
    policy = AlertPolicy(SETTINGS)
    first = policy.rejected("dip", 201, "Order rejected", 0)
    repeats = [
        policy.rejected("dip", 201, "Order rejected", 60 * minute) for minute in range(1, 59)
    ]
    other = policy.rejected("dip", 103, "Duplicate order id", 100)
    later = policy.rejected("dip", 201, "Order rejected", 3600)
    assert titles(first) == ["tradectl order rejected by IB"]
    assert "IB error 201: Order rejected" in first[0].body
    assert all(found == [] for found in repeats)
    assert "IB error 103" in other[0].body
    assert "58 more like it" in later[0].body


def test_no_more_than_max_per_hour_alerts() -> None:
    policy = AlertPolicy(Alerts(max_per_hour=3, fills=True))
    sent = [alert for n in range(10) for alert in policy.filled("dip", f"BUY {n} AAPL", n)]
    assert len(sent) == 3
    assert len(policy.filled("dip", "BUY 1 AAPL", 3601)) == 1


def test_fills_alert_only_when_asked_for() -> None:
    assert AlertPolicy(Alerts()).filled("dip", "BUY 10 AAPL @ 100", 0) == []
    assert titles(AlertPolicy(Alerts(fills=True)).filled("dip", "BUY 10 AAPL @ 100", 0)) == [
        "tradectl fill: BUY 10 AAPL @ 100"
    ]


def test_each_new_orphaned_protection_alerts_and_none_left_recovers() -> None:
    policy = AlertPolicy(SETTINGS)
    sent = policy.orphaned(0, 0) + policy.orphaned(1, 1) + policy.orphaned(1, 2)
    sent += policy.orphaned(2, 3) + policy.orphaned(0, 4)
    assert titles(sent) == [
        "tradectl orphaned protection",
        "tradectl orphaned protection",
        "tradectl orphaned protections resolved",
    ]


@given(st.lists(st.sampled_from(["disconnected", "connecting", "connected"]), max_size=60))
def test_alerts_and_recoveries_of_the_gateway_alternate(states: list[str]) -> None:
    policy = AlertPolicy(Alerts(disconnect_after=timedelta(seconds=60)))
    sent: list[Alert] = []
    for step, state in enumerate(states):
        sent += policy.connection(state, step * 45.0)
        sent += policy.due(step * 45.0 + 1)
    severities = [alert.severity for alert in sent]
    assert severities == ["failure", "success"] * (len(sent) // 2) + ["failure"] * (len(sent) % 2)


class FlakyTargets:
    def __init__(self, failures: list[int]) -> None:
        self.failures = failures
        self.calls: list[int] = []

    @property
    def labels(self) -> Sequence[str]:
        return [f"target {n + 1} (json)" for n in range(len(self.failures))]

    def send(self, index: int, alert: Alert) -> bool:
        self.calls.append(index)
        if self.failures[index] > 0:
            self.failures[index] -= 1
            return False
        return True


def test_a_failed_delivery_is_logged_and_retried_a_bounded_number_of_times(
    caplog: pytest.LogCaptureFixture,
) -> None:
    targets = FlakyTargets([1, 100])
    waits: list[float] = []
    alert = Alert("k", "tradectl halted", "body", "failure")
    with caplog.at_level(logging.WARNING):
        delivered = deliver(targets, alert, 3, lambda s: bool(waits.append(s)), 1.0)
    assert delivered == [True, False]
    assert targets.calls == [0, 0, 1, 1, 1, 1]
    assert waits == [1.0, 1.0, 2.0, 4.0]
    assert "delivering 'tradectl halted' to target 2 (json) failed (attempt 4 of 4)" in caplog.text


def test_the_dispatcher_never_blocks_the_caller_and_flushes_on_close() -> None:
    release = threading.Event()
    received: list[str] = []

    class SlowTargets:
        labels = ("target 1 (json)",)

        def send(self, index: int, alert: Alert) -> bool:
            release.wait(10)
            received.append(alert.title)
            return True

    dispatcher = AlertDispatcher(SETTINGS, SlowTargets(), records_check=3600)
    dispatcher.daemon_started("abc")
    dispatcher.breaker_changed(True, "NAV down 6%")
    dispatcher.breaker_changed(True, "NAV down 6%")
    assert received == []  # the daemon went on while the target hung
    release.set()
    dispatcher.daemon_stopping()
    dispatcher.close(10)
    assert received == ["tradectl started", "tradectl circuit breaker tripped", "tradectl stopping"]


def test_the_dispatcher_checks_the_records_outbox() -> None:
    received: list[str] = []

    class Targets:
        labels = ("target 1 (json)",)

        def send(self, index: int, alert: Alert) -> bool:
            received.append(alert.title)
            return True

    state = OutboxState(2, 1, last_error="another object under our name")
    dispatcher = AlertDispatcher(SETTINGS, Targets(), outbox=lambda: state, records_check=0.05)
    wait_until(lambda: received == ["tradectl records upload failing"], 10, "the failing alert")
    state = OutboxState(0, 0)
    wait_until(lambda: received[-1:] == ["tradectl records uploads recovered"], 10, "recovery")
    dispatcher.close(5)
    assert received == ["tradectl records upload failing", "tradectl records uploads recovered"]


def test_urls_come_from_the_environment_and_a_private_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    urls_file = tmp_path / "urls"
    urls_file.write_text(
        "# ops\nntfy://secret-topic  # phone\n\ntgram://bot/chat, mailto://u:p@x\n"
    )
    urls_file.chmod(0o644)
    settings = Alerts(urls_from_env="MY_URLS", urls_from_file=str(urls_file))
    with caplog.at_level(logging.WARNING):
        urls = alert_urls(settings, {"MY_URLS": "json://a/b, slack://t/x"})
    assert urls == [
        "json://a/b",
        "slack://t/x",
        "ntfy://secret-topic",
        "tgram://bot/chat",
        "mailto://u:p@x",
    ]
    assert "can be read by other users" in caplog.text
    assert "secret-topic" not in caplog.text
    with pytest.raises(AlertConfigError, match="cannot read"):
        alert_urls(Alerts(urls_from_file=str(tmp_path / "missing")), {})


def test_a_rule_file_cannot_hold_an_alert_url() -> None:
    with pytest.raises(ValueError, match="never a URL"):
        Alerts(urls_from_file="ntfy://my-topic")
    with pytest.raises(ValueError):
        Alerts(urls_from_env="ntfy://my-topic")
    with pytest.raises(ValueError, match="urls_from_env or urls_from_file"):
        Alerts(urls_from_env=None)


def test_an_unusable_url_is_refused_without_showing_it() -> None:
    with pytest.raises(AlertConfigError) as refused:
        AppriseTargets(["json://127.0.0.1/ok", "nosuchservice://secret-token@host"])
    assert "target 2 (nosuchservice)" in str(refused.value)
    assert "secret-token" not in str(refused.value)


def test_a_failed_apprise_delivery_logs_neither_the_url_nor_its_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    targets = AppriseTargets([f"json://user:secret-password@127.0.0.1:{closed_port}/secret-path"])
    alert = Alert("k", "tradectl halted", "body", "failure")
    with caplog.at_level(logging.DEBUG):
        delivered = deliver(targets, alert, 1, lambda seconds: False, 0.0)
    assert delivered == [False]
    assert "target 1 (json) failed (attempt 2 of 2)" in caplog.text
    assert "secret" not in caplog.text
    assert str(closed_port) not in caplog.text
