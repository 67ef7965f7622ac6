"""Push alerts: tell the operator's phone when the daemon needs a person (docs/observability.md).

Three parts:
- ``AlertPolicy`` (pure, clock passed in) turns the daemon's telemetry events into alerts. A
  condition (breaker, halt, degraded rules, gateway unreachable, orphaned protection, records
  outbox failing) alerts once when it starts and once when it ends, however often it flaps in
  between; the gateway counts as unreachable only after ``disconnect_after`` without a
  connection. One-off events (an IB rejection) alert at most once per ``repeat_after`` for the
  same rule and code, and all alerts together at most ``max_per_hour``.
- ``AlertDispatcher`` runs the policy and the deliveries on its own thread, so a slow or dead
  alert target never holds up a pass; a failed delivery is logged and retried a bounded number
  of times.
- ``AppriseTargets`` delivers through Apprise (ntfy, Telegram, Slack, email, JSON webhooks, …).

The target URLs carry secrets: they come from the environment or a file, are never logged (a
target is named by its number and scheme), and Apprise's own logging, which may print them, is
silenced.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import stat
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from tradectl.schemas.models import Alerts

from .telemetry import OutboxState, PassFacts, Telemetry, read_outbox

log = logging.getLogger("tradectl.daemon")

Severity = Literal["info", "success", "warning", "failure"]

# Keys of the conditions that alert once when they start and once when they end.
BREAKER, HALT, RULES, GATEWAY, ORPHANED, RECORDS = (
    "breaker",
    "halt",
    "rules",
    "gateway",
    "orphaned",
    "records",
)
RETRY_DELAY_SECONDS = 2.0
RECORDS_CHECK_SECONDS = 60.0
# Errors of a degraded rule set shown in its alert; the rest are in the log and `tradectl status`.
ERRORS_SHOWN = 5


class AlertConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Alert:
    key: str
    title: str
    body: str
    severity: Severity


def target_label(index: int, url: str) -> str:
    """How logs and `tradectl alert-test` name a target: never the URL, which holds secrets."""
    scheme = url.split("://", 1)[0] if "://" in url else "?"
    return f"target {index} ({scheme})"


def url_sources(settings: Alerts) -> str:
    """Where ``settings`` look for alert URLs, e.g. "$TRADECTL_ALERT_URLS or /etc/x"."""
    sources = (
        settings.urls_from_env and f"${settings.urls_from_env}",
        settings.urls_from_file,
    )
    return " or ".join(source for source in sources if source)


def alert_urls(settings: Alerts, environ: Mapping[str, str] | None = None) -> list[str]:
    """The alert URLs from the environment variable and the file ``settings`` name."""
    environ = os.environ if environ is None else environ
    urls: list[str] = []
    if settings.urls_from_env is not None:
        urls += environ.get(settings.urls_from_env, "").replace(",", " ").split()
    if settings.urls_from_file is not None:
        # $CREDENTIALS_DIRECTORY/alert-urls: systemd's LoadCredential= (docs/observability.md).
        path = Path(os.path.expandvars(settings.urls_from_file)).expanduser()
        try:
            mode = path.stat().st_mode
            text = path.read_text()
        except OSError as exc:
            raise AlertConfigError(
                f"alerts.urls_from_file: cannot read {path}: {exc.strerror or exc}"
            ) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning(
                "alerts: %s can be read by other users; it holds secrets: chmod 600 it", path
            )
        for line in text.splitlines():
            urls += line.split("#", 1)[0].replace(",", " ").split()
    return urls


class AlertPolicy:
    """Which alerts the daemon's events call for, and when (see the module docstring)."""

    def __init__(self, settings: Alerts) -> None:
        self.settings = settings
        self._active: set[str] = set()
        self._unreachable_since: float | None = None
        self._last_one_off: dict[str, float] = {}
        self._suppressed: collections.Counter[str] = collections.Counter()
        self._sent: collections.deque[float] = collections.deque()
        self._dropped = 0
        self._orphaned = 0

    # --- events ---------------------------------------------------------------------------------

    def started(self, generation: str | None, now: float) -> list[Alert]:
        return self._limit([_info("started", "tradectl started", f"rules {generation}")], now)

    def stopping(self, now: float) -> list[Alert]:
        body = "SIGTERM: no new orders; working orders stay at IB"
        return self._limit([_info("stopping", "tradectl stopping", body)], now)

    def connection(self, state: str, now: float) -> list[Alert]:
        if state != "connected":
            if self._unreachable_since is None:
                self._unreachable_since = now
            return self.due(now)
        down_for = 0.0 if self._unreachable_since is None else now - self._unreachable_since
        self._unreachable_since = None
        return self._end(
            GATEWAY,
            "tradectl reconnected to the gateway",
            f"after {_duration(down_for)} without a usable connection; resyncing before any order",
            now,
        )

    def halt(self, halted: bool, reason: str, now: float) -> list[Alert]:
        if halted:
            return self._start(HALT, "tradectl halted", f"{reason}: no new orders", now)
        return self._end(HALT, "tradectl resumed", "orders go out again", now)

    def breaker(self, tripped: bool, reason: str, now: float) -> list[Alert]:
        if tripped:
            body = f"{reason}; opening orders stop until the next trading day or `tradectl resume`"
            return self._start(BREAKER, "tradectl circuit breaker tripped", body, now)
        return self._end(BREAKER, "tradectl circuit breaker reset", "opening orders allowed", now)

    def rules(self, generation: str | None, errors: Sequence[str], now: float) -> list[Alert]:
        if errors:
            shown = "\n".join(errors[:ERRORS_SHOWN])
            more = len(errors) - ERRORS_SHOWN
            body = (
                f"a rule change was rejected; generation {generation} stays in force.\n{shown}"
                + (f"\n… and {more} more (`tradectl validate`)" if more > 0 else "")
            )
            return self._start(RULES, "tradectl rules degraded", body, now)
        return self._end(
            RULES, "tradectl rules recovered", f"generation {generation} is valid and in force", now
        )

    def rejected(self, rule: str | None, code: int, text: str, now: float) -> list[Alert]:
        key = f"rejected:{rule}:{code}"
        last = self._last_one_off.get(key)
        if last is not None and now - last < self.settings.repeat_after.total_seconds():
            self._suppressed[key] += 1
            return []
        self._last_one_off[key] = now
        repeats = self._suppressed.pop(key, 0)
        body = f"rule {rule or '(none)'}: IB error {code}: {text}"
        if repeats:
            body += f" ({repeats} more like it since the last alert)"
        return self._limit([Alert(key, "tradectl order rejected by IB", body, "failure")], now)

    def filled(self, rule: str | None, description: str, now: float) -> list[Alert]:
        if not self.settings.fills:
            return []
        return self._limit([_info("fill", f"tradectl fill: {description}", f"rule {rule}")], now)

    def orphaned(self, count: int, now: float) -> list[Alert]:
        previous, self._orphaned = self._orphaned, count
        if count > previous:
            body = (
                f"{count} protective order(s) kept for positions whose rule was removed: close "
                "the position or release the protection explicitly"
            )
            self._active.discard(ORPHANED)
            return self._start(ORPHANED, "tradectl orphaned protection", body, now)
        if count == 0:
            return self._end(ORPHANED, "tradectl orphaned protections resolved", "none left", now)
        return []

    def outbox(self, state: OutboxState | None, now: float) -> list[Alert]:
        if state is None:
            return []
        if state.failing:
            body = (
                f"{state.failed} batch(es) refused, {state.retrying} retrying, the oldest "
                f"waiting {_duration(state.oldest_pending_age_seconds)} ({state.last_error}); "
                "the journal keeps every fill: see `tradectl records`"
            )
            return self._start(RECORDS, "tradectl records upload failing", body, now)
        return self._end(RECORDS, "tradectl records uploads recovered", "the outbox drains", now)

    # --- time -----------------------------------------------------------------------------------

    def due(self, now: float) -> list[Alert]:
        """Alerts that fall due with time alone: the gateway unreachable for long enough."""
        since = self._unreachable_since
        if since is None or now - since < self.settings.disconnect_after.total_seconds():
            return []
        body = (
            f"no usable connection to the gateway for {_duration(now - since)}: nothing is "
            "sent, stops already at IB still work"
        )
        return self._start(GATEWAY, "tradectl gateway unreachable", body, now)

    def next_deadline(self) -> float | None:
        if self._unreachable_since is None or GATEWAY in self._active:
            return None
        return self._unreachable_since + self.settings.disconnect_after.total_seconds()

    # --- dedup and rate -------------------------------------------------------------------------

    def _start(self, key: str, title: str, body: str, now: float) -> list[Alert]:
        if key in self._active:
            return []
        self._active.add(key)
        return self._limit([Alert(key, title, body, "failure")], now)

    def _end(self, key: str, title: str, body: str, now: float) -> list[Alert]:
        if key not in self._active:
            return []
        self._active.discard(key)
        return self._limit([Alert(key, title, body, "success")], now)

    def _limit(self, alerts: list[Alert], now: float) -> list[Alert]:
        while self._sent and now - self._sent[0] >= 3600:
            self._sent.popleft()
        allowed: list[Alert] = []
        for alert in alerts:
            if len(self._sent) >= self.settings.max_per_hour:
                self._dropped += 1
                log.warning(
                    "alerts: more than %d in an hour, not sending %r (%d dropped so far)",
                    self.settings.max_per_hour,
                    alert.title,
                    self._dropped,
                )
                continue
            self._sent.append(now)
            allowed.append(alert)
        return allowed


def _info(key: str, title: str, body: str) -> Alert:
    return Alert(key, title, body, "info")


def _duration(seconds: float) -> str:
    whole = int(seconds)
    if whole < 120:
        return f"{whole}s"
    return f"{whole // 60}m {whole % 60:02d}s"


class AlertTargets(Protocol):
    @property
    def labels(self) -> Sequence[str]:
        """One name per target, safe to log."""

    def send(self, index: int, alert: Alert) -> bool:
        """Deliver ``alert`` to target ``index``; False when it did not go out."""


class _WhileDelivering(logging.Filter):
    """Drops the HTTP libraries' log lines while an alert is being delivered: they name the
    target's host and path, and a path can be the secret (a Slack webhook, an ntfy topic).
    Apprise may deliver on threads of its own, so this holds for every thread meanwhile; the
    lines it also drops from other work (a records upload's debug lines) are rarely wanted."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._deliveries = 0

    def filter(self, record: logging.LogRecord) -> bool:
        return self._deliveries == 0

    def __enter__(self) -> None:
        with self._lock:
            self._deliveries += 1

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._deliveries -= 1


_DELIVERING = _WhileDelivering()
for _name in ("urllib3", "requests"):
    logging.getLogger(_name).addFilter(_DELIVERING)
# urllib3 logs from loggers below "urllib3"; a logger's filters do not apply to its children.
logging.getLogger("urllib3.connectionpool").addFilter(_DELIVERING)
logging.getLogger("urllib3.connection").addFilter(_DELIVERING)
logging.getLogger("urllib3.util.retry").addFilter(_DELIVERING)


class AppriseTargets:
    """Each URL as its own Apprise object, so a retry goes only to the target that failed."""

    def __init__(self, urls: Sequence[str]) -> None:
        import apprise

        # Apprise's log lines can carry the URLs (tokens, passwords): keep them out of ours.
        logging.getLogger("apprise").setLevel(logging.CRITICAL + 1)
        self._apprise = apprise
        self._targets: list[apprise.Apprise] = []
        self._labels: list[str] = []
        for index, url in enumerate(urls, 1):
            target = apprise.Apprise()
            if not target.add(url):
                raise AlertConfigError(
                    f"alert {target_label(index, url)} is not a URL Apprise understands "
                    "(https://github.com/caronc/apprise/wiki lists the forms)"
                )
            self._targets.append(target)
            self._labels.append(target_label(index, url))

    @property
    def labels(self) -> Sequence[str]:
        return self._labels

    def send(self, index: int, alert: Alert) -> bool:
        notify_type = {
            "info": self._apprise.NotifyType.INFO,
            "success": self._apprise.NotifyType.SUCCESS,
            "warning": self._apprise.NotifyType.WARNING,
            "failure": self._apprise.NotifyType.FAILURE,
        }[alert.severity]
        try:
            with _DELIVERING:
                return bool(
                    self._targets[index].notify(
                        body=alert.body, title=alert.title, notify_type=notify_type
                    )
                )
        except Exception as exc:
            log.warning("alerts: %s raised %s", self._labels[index], type(exc).__name__)
            return False


def deliver(
    targets: AlertTargets,
    alert: Alert,
    retries: int,
    wait: Callable[[float], bool],
    retry_delay: float = RETRY_DELAY_SECONDS,
) -> list[bool]:
    """Send ``alert`` to every target, trying a failed one ``retries`` more times with a
    growing delay; ``wait(seconds)`` returns True when the wait was cut short (stopping), after
    which no further retry is made. Returns which targets got it."""
    delivered: list[bool] = []
    for index, label in enumerate(targets.labels):
        attempts = retries + 1
        for attempt in range(1, attempts + 1):
            if targets.send(index, alert):
                delivered.append(True)
                break
            log.warning(
                "alerts: delivering %r to %s failed (attempt %d of %d)",
                alert.title,
                label,
                attempt,
                attempts,
            )
            if attempt == attempts or wait(retry_delay * 2 ** (attempt - 1)):
                delivered.append(False)
                break
    return delivered


class AlertDispatcher(Telemetry):
    """``Telemetry`` that turns the daemon's events into push alerts on a worker thread."""

    def __init__(
        self,
        settings: Alerts,
        targets: AlertTargets,
        *,
        outbox: Callable[[], OutboxState | None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
        retry_delay: float = RETRY_DELAY_SECONDS,
        records_check: float = RECORDS_CHECK_SECONDS,
    ) -> None:
        self.policy = AlertPolicy(settings)
        self._targets = targets
        self._outbox = outbox
        self._clock = clock
        self._retry_delay = retry_delay
        self._records_check = records_check
        self._events: queue.Queue[Callable[[float], list[Alert]] | None] = queue.Queue()
        self._stopping = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
        self._thread.start()

    # --- Telemetry ------------------------------------------------------------------------------

    def _put(self, event: Callable[[float], list[Alert]]) -> None:
        if not self._closed:
            self._events.put(event)

    def daemon_started(self, generation: str | None) -> None:
        self._put(lambda now: self.policy.started(generation, now))

    def daemon_stopping(self) -> None:
        self._put(self.policy.stopping)

    def pass_finished(self, seconds: float, outcome: str, facts: PassFacts | None) -> None:
        """Passes themselves do not alert: what goes wrong in them arrives as its own event."""

    def connection_changed(self, state: str) -> None:
        self._put(lambda now: self.policy.connection(state, now))

    def halt_changed(self, halted: bool, reason: str) -> None:
        self._put(lambda now: self.policy.halt(halted, reason, now))

    def breaker_changed(self, tripped: bool, reason: str) -> None:
        self._put(lambda now: self.policy.breaker(tripped, reason, now))

    def rules_changed(self, generation: str | None, errors: Sequence[str]) -> None:
        self._put(lambda now: self.policy.rules(generation, tuple(errors), now))

    def order_rejected(self, rule: str | None, code: int, text: str) -> None:
        self._put(lambda now: self.policy.rejected(rule, code, text, now))

    def order_filled(self, rule: str | None, description: str) -> None:
        self._put(lambda now: self.policy.filled(rule, description, now))

    def orphaned_protections(self, count: int) -> None:
        self._put(lambda now: self.policy.orphaned(count, now))

    def close(self, timeout: float) -> None:
        """Deliver what is queued within ``timeout`` seconds, then stop retrying and return; a
        delivery still in flight is left to the (daemon) thread."""
        self._closed = True
        self._events.put(None)
        self._thread.join(timeout)
        self._stopping.set()

    # --- the worker -----------------------------------------------------------------------------

    def _run(self) -> None:
        next_outbox_check = self._clock()
        while True:
            now = self._clock()
            if now >= next_outbox_check:
                next_outbox_check = now + self._records_check
                self._check_outbox(now)
            deadline = self.policy.next_deadline()
            wake_at = next_outbox_check if deadline is None else min(deadline, next_outbox_check)
            try:
                event = self._events.get(timeout=max(0.0, wake_at - self._clock()))
            except queue.Empty:
                self._send(self.policy.due(self._clock()))
                continue
            if event is None:
                return
            try:
                alerts = event(self._clock())
            except Exception:
                log.exception("alerts: could not process an event")
                continue
            self._send(alerts)
            self._send(self.policy.due(self._clock()))

    def _check_outbox(self, now: float) -> None:
        try:
            state = self._outbox()
        except Exception as exc:
            log.debug("alerts: cannot read the records outbox: %s", exc)
            return
        self._send(self.policy.outbox(state, now))

    def _send(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            log.info("alert: %s", alert.title, extra={"alert": alert.key})
            deliver(
                self._targets,
                alert,
                self.policy.settings.retries,
                self._stopping.wait,
                self._retry_delay,
            )


def records_outbox(state_dir: Path) -> Callable[[], OutboxState | None]:
    return lambda: read_outbox(state_dir, time.time())


def start_alerts(settings: Alerts, state_dir: Path) -> Telemetry:
    """The daemon's alerts for an ``alerts:`` section; raises AlertConfigError when a URL or
    the URL file is unusable (the daemon then does not start: its operator expects alerts)."""
    urls = alert_urls(settings)
    if not urls:
        log.warning(
            "alerts: the rules have an alerts section but no alert URL is set (%s): no alerts "
            "will be sent",
            url_sources(settings),
        )
        return Telemetry()
    targets = AppriseTargets(urls)
    log.info("alerts: %d target(s): %s", len(urls), ", ".join(targets.labels))
    return AlertDispatcher(settings, targets, outbox=records_outbox(state_dir))
