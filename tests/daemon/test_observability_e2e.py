"""Metrics and push alerts of `tradectl run` against the simulated gateway: the /metrics page
Prometheus scrapes, and the alerts a JSON webhook on loopback receives (docs/observability.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.daemon.e2e_support import ACCOUNT_RULES, DaemonProcess, Wire, ladder, wait_until
from tests.daemon.test_e2e import owned, rules_dir, start_daemon, write_atomically
from tradectl.sim import SimThread

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def metrics_url(daemon: DaemonProcess) -> str:
    index = daemon.wait_log(lambda line: "metrics_port" in line, 20, "the metrics endpoint")
    return f"http://127.0.0.1:{daemon.lines()[index]['metrics_port']}/metrics"


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def wait_metric(url: str, name: str, expected: float, timeout: float = 20, **labels: str) -> None:
    wait_until(
        lambda: value(scrape(url), name, **labels) == expected,
        timeout,
        f"{name}{labels} == {expected}",
    )


def test_metrics_move_as_orders_go_out_ib_rejects_one_and_the_connection_drops(
    tmp_path: Path, sim: SimThread, wire: Wire, started: list[DaemonProcess]
) -> None:
    directory = rules_dir(tmp_path, sim, "version: 1\nscales:\n" + ladder("dip", "AAPL", 200))
    daemon = start_daemon(started, directory, tmp_path, extra=("--metrics", "127.0.0.1:0"))
    url = metrics_url(daemon)
    wire.wait_placed(lambda placed: len(owned(placed, "dip")) == 2, 20, "the ladder")

    sent = {"action": "place", "kind": "scales", "outcome": "sent"}
    wait_metric(url, "tradectl_orders_total", 2, **sent)
    samples = scrape(url)
    assert value(samples, "tradectl_gateway_connected") == 1
    assert value(samples, "tradectl_connection_state", state="connected") == 1
    assert value(samples, "tradectl_passes_total", outcome="ok")
    assert value(samples, "tradectl_pass_duration_seconds_count")
    assert value(samples, "tradectl_ib_messages_sent_total")
    assert value(samples, "tradectl_pacer_queued_messages") == 0
    assert value(samples, "tradectl_breaker_tripped") == 0
    assert value(samples, "tradectl_halted") == 0
    assert value(samples, "tradectl_rules_degraded") == 0
    assert value(samples, "tradectl_reconnects_total") == 0
    assert value(samples, "tradectl_orphaned_protections") == 0
    assert value(samples, "tradectl_records_outbox_failed_batches") == 0
    assert value(samples, "tradectl_order_efficiency_ratio") == 2.0
    assert value(samples, "tradectl_last_successful_pass_age_seconds") is not None
    generation = [key for key in samples if key[0] == "tradectl_rules_generation_info"]
    assert len(generation) == 1

    sim.control.reject_next_orders(1)
    write_atomically(
        directory / "rules.yaml",
        "version: 1\nscales:\n" + ladder("dip", "AAPL", 200) + ladder("msft", "MSFT", 400),
    )
    wait_metric(url, "tradectl_ib_rejections_total", 1, code="201", rule="msft")
    wait_metric(url, "tradectl_orders_total", 4, **sent)

    sim.control.drop_connections()
    wait_metric(url, "tradectl_reconnects_total", 1)
    wait_metric(url, "tradectl_gateway_connected", 1)
    assert daemon.stop()[0] == 0


class AlertReceiver:
    """A JSON webhook on loopback: what Apprise's json:// URL posts to."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.alerts.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"json://127.0.0.1:{self.server.server_port}/alerts"

    def titles(self) -> list[str]:
        with self._lock:
            return [str(alert["title"]) for alert in self.alerts]

    def wait_for(self, title: str, timeout: float = 20) -> None:
        wait_until(lambda: title in self.titles(), timeout, f"the alert {title!r}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[AlertReceiver]:
    found = AlertReceiver()
    yield found
    found.close()


ALERTS = "alerts: {urls_from_env: TEST_ALERT_URLS, disconnect_after: 5s}\n"
ALLOCATION = (
    "version: 1\nallocations:\n  core:\n    capital: {fraction_of_nav: 1.0}\n"
    "    targets: {AAPL: 0.30}\n"
)


@pytest.mark.slow
def test_one_alert_and_one_recovery_per_event_and_nothing_twice(
    tmp_path: Path, sim: SimThread, receiver: AlertReceiver, started: list[DaemonProcess]
) -> None:
    directory = rules_dir(tmp_path, sim, ALLOCATION, every="1s")
    (directory / "alerts.yaml").write_text("version: 1\n" + ALERTS)
    daemon = start_daemon(started, directory, tmp_path, env={"TEST_ALERT_URLS": receiver.url})
    receiver.wait_for("tradectl started")
    wait_until(lambda: sim.snapshot().positions.get("AAPL"), 20, "the AAPL position")

    sim.control.set_price("AAPL", 137.5)
    receiver.wait_for("tradectl circuit breaker tripped")
    assert daemon.cli("resume").returncode == 0
    receiver.wait_for("tradectl circuit breaker reset")
    assert daemon.cli("halt", "--reason", "lunch").returncode == 0
    receiver.wait_for("tradectl halted")
    assert daemon.cli("resume").returncode == 0
    receiver.wait_for("tradectl resumed")

    mark = len(daemon.lines())
    write_atomically(directory / "rules.yaml", ALLOCATION + "  broken: [\n")
    receiver.wait_for("tradectl rules degraded")
    write_atomically(directory / "rules.yaml", ALLOCATION)
    receiver.wait_for("tradectl rules recovered")

    # A short drop: the daemon is back well within disconnect_after, so no alert at all.
    sim.control.drop_connections()
    daemon.wait_message("disconnected from the gateway", after=mark)
    mark = daemon.wait_message("resynced with the gateway", after=mark)
    # A long one, flapping: refused for 12 s, more than disconnect_after (5 s).
    sim.control.refuse_connections(12)
    daemon.wait_message("disconnected from the gateway", after=mark)
    receiver.wait_for("tradectl gateway unreachable")
    assert sim.wait_listening(30)
    receiver.wait_for("tradectl reconnected to the gateway")

    assert daemon.stop()[0] == 0
    receiver.wait_for("tradectl stopping", timeout=5)
    assert sorted(receiver.titles()) == sorted(
        [
            "tradectl started",
            "tradectl circuit breaker tripped",
            "tradectl circuit breaker reset",
            "tradectl halted",
            "tradectl resumed",
            "tradectl rules degraded",
            "tradectl rules recovered",
            "tradectl gateway unreachable",
            "tradectl reconnected to the gateway",
            "tradectl stopping",
        ]
    )
    kinds = {alert["title"]: alert["type"] for alert in receiver.alerts}
    assert kinds["tradectl circuit breaker tripped"] == "failure"
    assert kinds["tradectl circuit breaker reset"] == "success"
    halted = next(alert for alert in receiver.alerts if alert["title"] == "tradectl halted")
    assert "lunch" in halted["message"]
    assert all(receiver.url.split("//")[1] not in str(line) for line in daemon.lines())


def test_alert_test_sends_one_test_alert_to_every_target(
    tmp_path: Path, receiver: AlertReceiver, reserved_port: int
) -> None:
    other = AlertReceiver()
    try:
        directory = tmp_path / "rules"
        directory.mkdir()
        (directory / "account.yaml").write_text(
            ACCOUNT_RULES.format(port=reserved_port, every="30s")
        )
        urls_file = tmp_path / "alert-urls"
        urls_file.write_text(f"# the desk\n{receiver.url}\n{other.url}\n")
        urls_file.chmod(0o600)
        (directory / "alerts.yaml").write_text(
            f"version: 1\nalerts: {{urls_from_env: null, urls_from_file: {urls_file}}}\n"
        )
        result = subprocess.run(
            [sys.executable, "-m", "tradectl", "alert-test", str(directory)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert receiver.titles() == ["tradectl test alert"]
        assert other.titles() == ["tradectl test alert"]
        assert "target 1 (json): delivered" in result.stdout
        assert "127.0.0.1" not in result.stdout + result.stderr
    finally:
        other.close()


def test_alert_test_fails_without_a_url_or_an_alerts_section(
    tmp_path: Path, reserved_port: int
) -> None:
    directory = tmp_path / "rules"
    directory.mkdir()
    (directory / "account.yaml").write_text(ACCOUNT_RULES.format(port=reserved_port, every="30s"))

    def alert_test() -> subprocess.CompletedProcess[str]:
        environment = {k: v for k, v in os.environ.items() if k != "TRADECTL_ALERT_URLS"}
        return subprocess.run(
            [sys.executable, "-m", "tradectl", "alert-test", str(directory)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=environment,
        )

    missing_section = alert_test()
    assert missing_section.returncode == 1
    assert "no alerts section" in missing_section.stderr
    (directory / "alerts.yaml").write_text("version: 1\nalerts: {fills: true}\n")
    missing_url = alert_test()
    assert missing_url.returncode == 1
    assert "no alert URL found in $TRADECTL_ALERT_URLS" in missing_url.stderr
