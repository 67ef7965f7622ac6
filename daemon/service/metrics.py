"""Prometheus metrics of the daemon (`tradectl run --metrics HOST:PORT`), see docs/observability.md.

Only `tradectl run --metrics` imports this module, so a daemon without metrics never loads
prometheus_client. Values that change on their own (the pacer's queue, messages written, the
records outbox, the age of the last good pass) are read when Prometheus scrapes; everything
else is set from the daemon's ``Telemetry`` events. Labels stay bounded: rule names, order
actions, rule kinds and IB error codes, never symbols or order ids.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .telemetry import CONNECTION_STATES, OutboxState, PassFacts, Telemetry, read_outbox

log = logging.getLogger("tradectl.daemon")

DEFAULT_METRICS_PORT = 9464
# Passes take milliseconds against a quiet account and up to minutes for a large plan at IB's
# 50 messages per second.
PASS_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
PASS_OUTCOMES = ("ok", "skipped", "stopped_early", "failed", "abandoned")


class MetricsAddressError(ValueError):
    pass


@dataclass(frozen=True)
class MetricsAddress:
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def parse_metrics_address(text: str, allow_remote: bool) -> MetricsAddress:
    """``HOST:PORT``, ``[IPv6]:PORT`` or a bare ``PORT`` (on 127.0.0.1). A non-loopback host
    needs ``allow_remote``: the metrics tell anyone who can read them what the account does."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "127.0.0.1", text
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise MetricsAddressError(
            f"--metrics {text!r}: give HOST:PORT, e.g. 127.0.0.1:{DEFAULT_METRICS_PORT}"
        ) from None
    if not 0 <= port <= 65535:
        raise MetricsAddressError(f"--metrics {text!r}: port must be between 0 and 65535")
    address = MetricsAddress(host, port)
    if not address.loopback and not allow_remote:
        raise MetricsAddressError(
            f"--metrics {text!r} is not a loopback address: anyone who reaches it sees what the "
            "account does. Add --metrics-allow-remote to serve it there anyway (and firewall it)"
        )
    return address


def pass_outcome_label(outcome: str) -> str:
    """The bounded label of a pass outcome ("skipped: disconnected" → "skipped")."""
    label = outcome.split(":", 1)[0].strip().replace(" ", "_")
    return label if label in PASS_OUTCOMES else "failed"


class _PulledValues(Collector):
    """Values read at scrape time, from whichever thread serves the scrape."""

    def __init__(self, metrics: DaemonMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        metrics = self._metrics
        yield GaugeMetricFamily(
            "tradectl_pacer_queued_messages",
            "Messages the pacer holds back to stay under IB's 50 messages per second",
            value=metrics.pacer_waiting(),
        )
        yield CounterMetricFamily(
            "tradectl_ib_messages_sent",
            "Messages written to the gateway (rate() gives messages per second)",
            value=metrics.messages_sent(),
        )
        yield CounterMetricFamily(
            "tradectl_live_state_mismatches",
            "Full reads that found the state streamed by IB differing from a fresh read "
            "(logged and corrected; docs/daemon.md, Live state)",
            value=metrics.live_state_mismatches(),
        )
        yield GaugeMetricFamily(
            "tradectl_last_successful_pass_age_seconds",
            "Seconds since the last pass that completed (since start when none has yet)",
            value=max(0.0, metrics.clock() - metrics.last_success),
        )
        yield from self._records()

    def _records(self) -> Iterable[Metric]:
        state_dir = self._metrics.state_dir
        if state_dir is None:
            return
        try:
            found = read_outbox(state_dir, time.time())
        except Exception as exc:
            log.debug("metrics: cannot read the records outbox: %s", exc)
            return
        outbox = found if found is not None else OutboxState(pending=0, failed=0)
        yield GaugeMetricFamily(
            "tradectl_records_outbox_pending_batches",
            "Records batches waiting to be uploaded",
            value=outbox.pending,
        )
        yield GaugeMetricFamily(
            "tradectl_records_outbox_retrying_batches",
            "Waiting records batches whose upload already failed at least once",
            value=outbox.retrying,
        )
        yield GaugeMetricFamily(
            "tradectl_records_outbox_failed_batches",
            "Records batches the bucket refused for good (see `tradectl records`)",
            value=outbox.failed,
        )
        yield CounterMetricFamily(
            "tradectl_records_upload_failures",
            "Failed upload attempts of records batches, over the journal's lifetime",
            value=outbox.failed_attempts,
        )
        yield GaugeMetricFamily(
            "tradectl_records_outbox_oldest_pending_age_seconds",
            "Age of the oldest batch waiting to be uploaded (0 when none waits)",
            value=outbox.oldest_pending_age_seconds,
        )


class DaemonMetrics(Telemetry):
    """The daemon's metrics in their own registry."""

    def __init__(
        self,
        *,
        pacer_waiting: Callable[[], int] = lambda: 0,
        messages_sent: Callable[[], int] = lambda: 0,
        live_state_mismatches: Callable[[], int] = lambda: 0,
        state_dir: Path | None = None,
        clock: Callable[[], float] = time.time,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.pacer_waiting = pacer_waiting
        self.messages_sent = messages_sent
        self.live_state_mismatches = live_state_mismatches
        self.state_dir = state_dir
        self.clock = clock
        self.last_success = clock()
        self._lock = threading.Lock()
        r = self.registry
        ProcessCollector(registry=r)
        self.passes = Counter(
            "tradectl_passes", "Reconcile passes by outcome", ["outcome"], registry=r
        )
        self.pass_duration = Histogram(
            "tradectl_pass_duration_seconds",
            "Duration of reconcile passes",
            buckets=PASS_DURATION_BUCKETS,
            registry=r,
        )
        self.last_success_time = Gauge(
            "tradectl_last_successful_pass_timestamp_seconds",
            "Unix time of the last pass that completed",
            registry=r,
        )
        self.orders = Counter(
            "tradectl_orders",
            "Order actions by action (place, modify, cancel), rule kind and outcome (sent, "
            "blocked by a risk limit)",
            ["action", "kind", "outcome"],
            registry=r,
        )
        self.rejections = Counter(
            "tradectl_ib_rejections",
            "Order actions IB refused, by IB error code and rule",
            ["code", "rule"],
            registry=r,
        )
        self.fills = Counter(
            "tradectl_executions", "Executions of tradectl's orders by rule", ["rule"], registry=r
        )
        self.connection = Gauge(
            "tradectl_connection_state",
            "1 for the daemon's current gateway connection state",
            ["state"],
            registry=r,
        )
        self.connected = Gauge(
            "tradectl_gateway_connected",
            "1 while connected to the gateway and the gateway to IB",
            registry=r,
        )
        self.reconnects = Counter(
            "tradectl_reconnects", "Connections made again after a drop", registry=r
        )
        self.breaker = Gauge(
            "tradectl_breaker_tripped", "1 while the daily-loss circuit breaker holds", registry=r
        )
        self.halted = Gauge(
            "tradectl_halted", "1 while halted (tradectl halt or a HALT file)", registry=r
        )
        self.generation = Gauge(
            "tradectl_rules_generation_info",
            "1 for the generation (content hash) of the rule set in force",
            ["generation"],
            registry=r,
        )
        self.rules_loaded = Gauge(
            "tradectl_rules_loaded_timestamp_seconds",
            "Unix time the rule set in force was loaded",
            registry=r,
        )
        self.degraded = Gauge(
            "tradectl_rules_degraded",
            "1 while a rule change is rejected and the last good rule set stays in force",
            registry=r,
        )
        self.rule_errors = Gauge(
            "tradectl_rules_errors", "Errors of the rejected rule change", registry=r
        )
        self.drift = Gauge(
            "tradectl_allocation_drift_ratio",
            "Largest absolute gap between a symbol's weight and its target, per allocation",
            ["rule"],
            registry=r,
        )
        self.efficiency = Gauge(
            "tradectl_order_efficiency_ratio",
            "IB's Order Efficiency Ratio of today's tradectl orders: (submissions + revisions "
            "+ cancels) / (executions + 1); IB may restrict an account above 20",
            registry=r,
        )
        self.orphaned = Gauge(
            "tradectl_orphaned_protections",
            "Protective orders kept for a position whose rule was removed",
            registry=r,
        )
        for state in CONNECTION_STATES:
            self.connection.labels(state=state).set(1 if state == "disconnected" else 0)
        for outcome in PASS_OUTCOMES:
            self.passes.labels(outcome=outcome)
        self._drift_rules: set[str] = set()
        self._generation: str | None = None
        self.registry.register(_PulledValues(self))

    def pass_finished(self, seconds: float, outcome: str, facts: PassFacts | None) -> None:
        label = pass_outcome_label(outcome)
        self.passes.labels(outcome=label).inc()
        self.pass_duration.observe(seconds)
        if label == "ok":
            self.last_success = self.clock()
            self.last_success_time.set(self.last_success)
        if facts is None:
            return
        for action, kind in facts.sent:
            self.orders.labels(action=action, kind=kind, outcome="sent").inc()
        for action, kind in facts.blocked:
            self.orders.labels(action=action, kind=kind, outcome="blocked").inc()
        with self._lock:
            for gone in self._drift_rules - set(facts.drift):
                self.drift.remove(gone)
            for rule, gap in facts.drift.items():
                self.drift.labels(rule=rule).set(gap)
            self._drift_rules = set(facts.drift)
        if facts.order_efficiency_ratio is not None:
            self.efficiency.set(facts.order_efficiency_ratio)

    def connection_changed(self, state: str) -> None:
        for known in CONNECTION_STATES:
            self.connection.labels(state=known).set(1 if known == state else 0)
        self.connected.set(1 if state == "connected" else 0)

    def reconnected(self) -> None:
        self.reconnects.inc()

    def halt_changed(self, halted: bool, reason: str) -> None:
        self.halted.set(1 if halted else 0)

    def breaker_changed(self, tripped: bool, reason: str) -> None:
        self.breaker.set(1 if tripped else 0)

    def rules_changed(self, generation: str | None, errors: Sequence[str]) -> None:
        self.degraded.set(1 if errors else 0)
        self.rule_errors.set(len(errors))
        if generation != self._generation:
            if self._generation is not None:
                self.generation.remove(self._generation)
            if generation is not None:
                self.generation.labels(generation=generation).set(1)
            self._generation = generation
            self.rules_loaded.set(self.clock())

    def order_rejected(self, rule: str | None, code: int, text: str) -> None:
        self.rejections.labels(code=str(code), rule=rule or "").inc()

    def order_filled(self, rule: str | None, description: str) -> None:
        self.fills.labels(rule=rule or "").inc()

    def orphaned_protections(self, count: int) -> None:
        self.orphaned.set(count)


class MetricsServer:
    """The HTTP endpoint Prometheus scrapes (``/metrics``), on its own thread."""

    def __init__(self, address: MetricsAddress, registry: CollectorRegistry) -> None:
        self._server: WSGIServer
        self._server, self._thread = start_http_server(address.port, address.host, registry)
        self.host = address.host
        self.port: int = self._server.server_port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
