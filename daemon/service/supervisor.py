"""The daemon: one asyncio process that keeps the account converged on the rules for months.

It owns the decisions of *when*: passes are level-triggered and serialized (``PassSerializer``);
triggers are start, connect and reconnect, rule changes, the resync timer, the rebalance cron,
order events, halt and resume. It owns the conditions under which nothing may be sent
(disconnected, between IB's 1100 and 1102, before the resync that follows every reconnect,
halted, stopping), the circuit breaker and halt state, hot reload with last-good fallback, the
control socket, systemd notifications and a clean stop on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tradectl import tradectl_version
from tradectl.errors import PermanentError, TemporaryError
from tradectl.journal import NothingToRelease
from tradectl.ledger_view import release_result
from tradectl.planner.market_time import in_blackout
from tradectl.private_files import LoosePermissions, ensure_state_dir
from tradectl.runtime.targets_file import resolve_targets_path
from tradectl.schemas.loader import halt_file, halt_present
from tradectl.schemas.models import Account, Alerts, Gateway, ReportSchedule, RuleSet
from tradectl.timezones import trading_day

from .backoff import Backoff
from .control import ControlError, ControlServer, StateDirLock, socket_path
from .engine import RULES_TRIGGER, BrokerSession, PassContext, PassRecord
from .records_task import RecordsFactory, RecordsTask
from .safety import SafetyState
from .schedule import OpenWindow, PassScheduler
from .sdnotify import SystemdNotifier
from .serializer import PassSerializer
from .telemetry import PassFacts, Telemetry
from .watcher import DEFAULT_DEBOUNCE_SECONDS, RulesWatcher

log = logging.getLogger("tradectl.daemon")

HALT_CANCEL_TIMEOUT_SECONDS = 30.0
DISCONNECT_TIMEOUT_SECONDS = 2.0
# The records task's last export on stop runs beside the disconnect, within the same budget.
RECORDS_STOP_TIMEOUT_SECONDS = 2.0
STUCK_PASS_SECONDS = 600.0
# Alerts still queued at SIGTERM (the "stopping" one included) get this long to go out, beside
# the disconnect.
TELEMETRY_STOP_TIMEOUT_SECONDS = 2.0
REPORT_TIMEOUT_SECONDS = 300.0
_REPORT_SUFFIXES = {"html": "html", "json": "json", "text": "txt"}


@dataclass(frozen=True)
class DaemonSettings:
    rules_dir: Path
    state_dir: Path
    debounce: float = DEFAULT_DEBOUNCE_SECONDS
    reconnect_initial: float = 0.5
    reconnect_max: float = 30.0
    # SIGTERM to exit must stay under systemd's and the 10 s: this much for the pass in
    # flight, the rest for disconnecting and flushing the journal.
    stop_grace: float = 5.0
    history: int = 20


@dataclass(frozen=True)
class LoadOutcome:
    rule_set: RuleSet | None
    errors: tuple[str, ...] = ()
    files: tuple[str, ...] = ()


RulesLoader = Callable[[Path], LoadOutcome]
# Builds the daemon's metrics and alerts from the rule set it starts with (``alerts:``).
TelemetryFactory = Callable[[RuleSet], Telemetry]


@dataclass
class RulesState:
    current: RuleSet | None = None
    generation: str | None = None
    files: tuple[str, ...] = ()
    loaded_at: str = ""
    errors: tuple[str, ...] = ()

    @property
    def degraded(self) -> bool:
        return bool(self.errors)


def _now() -> datetime:
    return datetime.now(UTC)


class Daemon:
    def __init__(
        self,
        settings: DaemonSettings,
        session: BrokerSession,
        load_rules: RulesLoader,
        notifier: SystemdNotifier | None = None,
        clock: Callable[[], datetime] = _now,
        records: RecordsFactory | None = None,
        telemetry: TelemetryFactory | None = None,
    ) -> None:
        self.settings = settings
        self._telemetry_factory = telemetry
        self.telemetry = Telemetry()
        # What telemetry was last told, so that it hears of each change once.
        self._published: dict[str, object] = {}
        self._pass_facts: PassFacts | None = None
        self._connected_before = False
        # The alerts section the telemetry was built with: a reload takes it up at the next start.
        self._alerts_settings: Alerts | None = None
        self.session = session
        self._records = None if records is None else RecordsTask(records)
        self._load_rules = load_rules
        self.notifier = notifier if notifier is not None else SystemdNotifier()
        self._clock = clock
        self.rules = RulesState()
        self.safety = SafetyState()
        self.halt_file_present = False
        # The reason of a halt command, set the moment it arrives, before it is journaled, so
        # that a pass in flight stops sending at its next order rather than after the journal
        # write (and the halt is reported with its own reason meanwhile).
        self._halt_requested: str | None = None
        self.connection = "disconnected"
        self.connection_error = ""
        self._link_ok = False
        self._needs_resync = True
        # What the live connection was opened for: a rule change of either means reconnecting.
        self._connected_target: tuple[Gateway, Account] | None = None
        self._stopping = False
        self._stop_requested = asyncio.Event()
        self._disconnected = asyncio.Event()
        # Set by every rule swap: what a permanent connect failure waits for.
        self._rules_swapped = asyncio.Event()
        self._ready_sent = False
        self.started = asyncio.Event()
        self._cancel_waiters: list[asyncio.Future[list[dict[str, Any]]]] = []
        self.passes: deque[PassRecord] = deque(maxlen=settings.history)
        self._serializer = PassSerializer(self._pass)
        self._scheduler = PassScheduler(
            self._on_schedule, self._write_report, session.market_now, self._window_changed
        )
        # The rebalance window the journal had open at start, reopened once the rules are in.
        self._saved_window: OpenWindow | None = None
        self._watcher = RulesWatcher(
            settings.rules_dir,
            self.reload,
            settings.debounce,
            self._targets_file_paths,
            on_first_change=self._rules_changing,
        )
        self._targets_paths: frozenset[str] = frozenset()
        self._reload_lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()
        self._lock = StateDirLock(settings.state_dir)
        self._control = ControlServer(
            socket_path(settings.state_dir),
            {
                "status": self._cmd_status,
                "halt": self._cmd_halt,
                "resume": self._cmd_resume,
                "reload": self._cmd_reload,
                "accept": self._cmd_accept,
                "release": self._cmd_release,
            },
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._started_at = ""
        # Whether the last pass sent anything: the next one that finds nothing to do says "in
        # sync" once, so a quiet log still shows that the account got there.
        self._last_pass_sent = False
        session.events.disconnected = self._on_disconnected
        session.events.link_lost = self._on_link_lost
        session.events.link_restored = self._on_link_restored
        session.events.order_event = self._on_order_event
        session.events.order_rejected = self._on_order_rejected
        session.events.order_filled = self._on_order_filled

    # --- lifecycle ---------------------------------------------------------------------------

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT (or ``request_stop``); 0 after a clean stop, 1 when the
        daemon cannot start."""
        try:
            ensure_state_dir(self.settings.state_dir)
            self._lock.acquire()
        except (ControlError, LoosePermissions, OSError) as exc:
            log.error("cannot start: %s", exc)
            return 1
        try:
            await self.session.open()
        except (OSError, RuntimeError) as exc:
            log.error("cannot start: %s", exc)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.session.close(), DISCONNECT_TIMEOUT_SECONDS)
            self._lock.release()
            return 1
        try:
            if not await self._initial_load():
                await self.session.close()
                return 1
            self.safety = await self.session.load_safety()
            self._saved_window = await self.session.load_rebalance_window()
            if not self._start_telemetry():
                await self.session.close()
                return 1
            if self.safety.halted:
                log.warning(
                    "halted since %s (%s): no new orders until `tradectl resume`",
                    self.safety.halted_at,
                    self.safety.halt_reason,
                )
            try:
                await self._start_components()
            except ControlError as exc:
                log.error("cannot start: %s", exc)
                await self._abort_start()
                return 1
            self.started.set()
            await self._stop_requested.wait()
            return await self._shutdown()
        finally:
            self._lock.release()

    def request_stop(self) -> None:
        if not self._stop_requested.is_set():
            log.info("stop requested: sending no new orders")
            self._stopping = True
            self._stop_requested.set()

    async def _initial_load(self) -> bool:
        outcome = self._load_rules(self.settings.rules_dir)
        self.halt_file_present = halt_present(self.settings.rules_dir)
        if outcome.rule_set is None:
            for error in outcome.errors:
                log.error("%s", error)
            log.error(
                "rule set %s is invalid: not starting. Fix the errors above (`tradectl validate "
                "%s` shows them) and start again",
                self.settings.rules_dir,
                self.settings.rules_dir,
            )
            return False
        await self._swap_rules(outcome)
        return True

    async def _start_components(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        self._started_at = self._clock().isoformat()
        try:
            await self._control.start()
        except OSError as exc:
            raise ControlError(
                f"cannot create the control socket {self._control.path}: {exc}; use a shorter "
                "--state-dir (unix socket paths are limited to about 100 characters)"
            ) from exc
        self._watcher.start()
        if self.rules.current is not None:
            self._scheduler.apply(self.rules.current.schedule)
            self._restore_window(self.rules.current)
        self._scheduler.start()
        self._serializer.start()
        self._tasks.append(loop.create_task(self._connection_loop(), name="connection"))
        interval = self.notifier.watchdog_interval
        if interval is not None:
            self._tasks.append(loop.create_task(self._watchdog_loop(interval), name="watchdog"))
        if self._records is not None and self.rules.current is not None:
            self._records.start(self.rules.current)
        if self.halt_file_present:
            log.warning("HALT file present in %s: no new orders", self.settings.rules_dir)
        self.notifier.status("connecting to the gateway")
        self.telemetry.daemon_started(self.rules.generation)
        self._publish()
        log.info(
            "daemon started",
            extra={
                "rules_dir": str(self.settings.rules_dir),
                "state_dir": str(self.settings.state_dir),
                "generation": self.rules.generation,
            },
        )

    def _restore_window(self, rule_set: RuleSet) -> None:
        """Reopen the rebalance window a restart interrupted, while its end is in the future:
        the slices it had left go on at once instead of waiting for the next cron time."""
        saved, self._saved_window = self._saved_window, None
        if saved is None:
            return
        rebalance = rule_set.schedule.rebalance
        window_end = None if rebalance is None else rebalance.window_end
        if self._scheduler.window.restore(saved, self._market_now(), window_end):
            log.info(
                "rebalance window open since %s restored%s: allocation orders may go",
                saved.opened_at.isoformat(),
                "" if saved.deadline is None else f" until {saved.deadline.isoformat()}",
            )

    def _window_changed(self, window: OpenWindow | None) -> None:
        # Queued on the broker thread in the order of the changes.
        self._in_background(
            self.session.save_rebalance_window(window), "journal the rebalance window"
        )

    def _start_telemetry(self) -> bool:
        rule_set = self.rules.current
        if self._telemetry_factory is None or rule_set is None:
            return True
        try:
            self.telemetry = self._telemetry_factory(rule_set)
        except Exception as exc:
            log.error("cannot start metrics or alerts: %s", exc)
            return False
        self._alerts_settings = rule_set.alerts
        return True

    async def _abort_start(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        await self.session.close()
        self.telemetry.close(0)

    async def _shutdown(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        self.notifier.stopping("stopping: finishing the pass in flight")
        self.telemetry.daemon_stopping()
        self._watcher.stop()
        self._scheduler.shutdown()
        finished = await self._serializer.close(self.settings.stop_grace)
        if not finished:
            log.warning(
                "abandoned the pass in flight; the journal lets the next start complete it "
                "without duplicates"
            )
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._fail_cancel_waiters("the daemon is stopping")
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(
            self._stop_records(),
            self._close_session(),
            asyncio.to_thread(self.telemetry.close, TELEMETRY_STOP_TIMEOUT_SECONDS),
        )
        await self._control.close()
        log.info("daemon stopped")
        self.notifier.close()
        return 0

    async def _stop_records(self) -> None:
        if self._records is not None:
            await self._records.stop(RECORDS_STOP_TIMEOUT_SECONDS)

    async def _close_session(self) -> None:
        try:
            await asyncio.wait_for(self.session.close(), DISCONNECT_TIMEOUT_SECONDS)
        except (TimeoutError, OSError, ConnectionError) as exc:
            log.warning("disconnect did not complete: %s", exc)

    async def _watchdog_loop(self, interval: float) -> None:
        """Ping systemd's watchdog while the daemon makes progress: a live event loop and no
        pass stuck for longer than STUCK_PASS_SECONDS (a hung gateway call, say). Then the
        pings stop and systemd restarts the daemon, whose journal resumes without duplicates."""
        warned = False
        while True:
            stuck_for = self._serializer.pass_running_for()
            if stuck_for < STUCK_PASS_SECONDS:
                self.notifier.watchdog()
                warned = False
            elif not warned:
                log.error(
                    "a reconcile pass has been running for %.0fs: no longer reassuring the "
                    "systemd watchdog, so that it restarts the daemon",
                    stuck_for,
                )
                warned = True
            await asyncio.sleep(interval)

    # --- rules -------------------------------------------------------------------------------

    def _on_sighup(self) -> None:
        if self._stopping:
            return
        log.info("SIGHUP: reloading the rules")
        if self._ready_sent:
            self.notifier.reloading()

        async def reload_then_report() -> None:
            await self._reload()
            # READY=1 ends systemd's "reloading" state; before the first sync it would claim a
            # readiness the daemon does not have yet.
            if self._ready_sent:
                self.notifier.ready(self.status_line())
            else:
                self._status_changed()

        self._in_background(reload_then_report(), "reload the rules")

    def reload(self) -> None:
        """Schedule a reload (from the watcher, SIGHUP); reloads run one at a time. A pass
        follows when the rules read targets files: one of them may be what changed (the pass
        reads them again, validated whole, the last good version kept)."""
        if self._stopping:
            return

        async def reload_then_targets() -> None:
            await self._reload()
            if self._targets_paths and not self._stopping:
                self._serializer.request("targets file")

        self._in_background(reload_then_targets(), "reload the rules")

    def _rules_changing(self) -> None:
        """An edit began: measure the gateway's clock during the debounce, so that the edit's
        pass plans without a round trip before its orders (docs/daemon.md, "Clock")."""
        if self._link_usable() and not self._stopping:
            self._in_background(self.session.measure_clock(), "measure the gateway's clock")

    def _targets_file_paths(self) -> frozenset[str]:
        # Called on watchdog's thread: reads one attribute the event loop replaces whole.
        return self._targets_paths

    def _in_background(self, work: Coroutine[Any, Any, None], what: str) -> None:
        async def guarded() -> None:
            try:
                await work
            except Exception as exc:
                log.warning("could not %s: %s", what, exc)

        task = asyncio.get_running_loop().create_task(guarded(), name=what)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _reload(self) -> None:
        async with self._reload_lock:
            if not self._stopping:
                await self._reload_now()

    async def _reload_now(self) -> None:
        """Load and validate the whole directory; swap only to a valid rule set."""
        self._check_halt_file()
        outcome = self._load_rules(self.settings.rules_dir)
        if outcome.rule_set is None:
            if outcome.errors == self.rules.errors:
                return
            self.rules.errors = outcome.errors
            for error in outcome.errors:
                log.error("%s", error)
            log.error(
                "rule change rejected (%d error%s): still acting on generation %s",
                len(outcome.errors),
                "" if len(outcome.errors) == 1 else "s",
                self.rules.generation,
                extra={"generation": self.rules.generation},
            )
            self._status_changed()
            return
        if outcome.rule_set.generation() == self.rules.generation:
            if self.rules.degraded:
                log.info("rule set valid again, unchanged: generation %s", self.rules.generation)
            self.rules.errors = ()
            self.rules.files = outcome.files
            self._status_changed()
            return
        await self._swap_rules(outcome)
        self._serializer.request(RULES_TRIGGER)

    async def _swap_rules(self, outcome: LoadOutcome) -> None:
        rule_set = outcome.rule_set
        assert rule_set is not None
        generation = rule_set.generation()
        # Queued on the broker thread ahead of any later pass, so the generation is journaled
        # before an order carries it; not awaited, so that the swap never waits for a pass in
        # flight (the pass journals its generation itself too).
        self._in_background(self.session.record_generation(generation), "record the generation")
        previous = self.rules.generation
        previous_alerts = None if self.rules.current is None else self.rules.current.alerts
        self._targets_paths = frozenset(
            os.path.abspath(resolve_targets_path(rule_set, allocation.targets_from))
            for allocation in rule_set.allocations.values()
            if allocation.targets_from is not None
        )
        self.rules = RulesState(
            current=rule_set,
            generation=generation,
            files=outcome.files,
            loaded_at=self._clock().isoformat(),
        )
        self._rules_swapped.set()
        if previous is not None:
            self._scheduler.apply(rule_set.schedule)
            if self._records is not None:
                self._records.rules_changed(rule_set)
            if (
                self._telemetry_factory is not None
                and rule_set.alerts != self._alerts_settings
                and rule_set.alerts != previous_alerts
            ):
                log.warning(
                    "alerts settings changed: they take effect when the daemon restarts "
                    "(systemctl restart tradectl)"
                )
        log.info(
            "rule set loaded: generation %s (%d rules)",
            generation,
            len(rule_set.rule_names()),
            extra={"generation": generation, "previous": previous},
        )
        target = (rule_set.gateway, rule_set.account)
        if self._connected_target is not None and self._connected_target != target:
            log.warning("gateway or account settings changed: reconnecting")
            self._mark_disconnected()

    def _check_halt_file(self) -> None:
        present = halt_present(self.settings.rules_dir)
        if present == self.halt_file_present:
            return
        self.halt_file_present = present
        if present:
            log.warning("HALT file appeared in %s: no new orders", self.settings.rules_dir)
        else:
            log.info("HALT file removed from %s", self.settings.rules_dir)
        self._serializer.request("halt-file")

    # --- connection --------------------------------------------------------------------------

    async def _connection_loop(self) -> None:
        backoff = Backoff(self.settings.reconnect_initial, self.settings.reconnect_max)
        while not self._stopping:
            rule_set = self.rules.current
            assert rule_set is not None
            gateway = rule_set.gateway
            self._disconnected.clear()
            self.connection = "connecting"
            try:
                await asyncio.wait_for(
                    self.session.connect(rule_set),
                    gateway.connect_timeout.total_seconds() + 5,
                )
            except asyncio.CancelledError:
                raise
            except PermanentError as exc:
                await self._wait_for_a_fix(rule_set, exc)
                backoff.reset()
                continue
            except Exception as exc:
                self.connection = "disconnected"
                self.connection_error = f"{type(exc).__name__}: {exc}".rstrip(": ")
                delay = backoff.next_delay()
                if isinstance(exc, TemporaryError) and exc.delay is not None:
                    delay = exc.delay
                log.warning(
                    "cannot connect to the gateway at %s (%s); retrying in %.1fs",
                    self.session.address(rule_set),
                    self.connection_error,
                    delay,
                    extra={"attempt": backoff.attempt},
                )
                self._status_changed()
                with contextlib.suppress(Exception):
                    await self.session.disconnect()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_requested.wait(), delay)
                continue
            backoff.reset()
            self._connected_target = (gateway, rule_set.account)
            self.connection = "connected"
            self.connection_error = ""
            self._link_ok = True
            self._needs_resync = True
            if self._connected_before:
                self.telemetry.reconnected()
            self._connected_before = True
            self._publish()
            log.info(
                "connected to the gateway at %s",
                self.session.address(rule_set),
                extra={"client_id": gateway.client_id},
            )
            self._serializer.request("connect")
            await self._disconnected.wait()
            self._connected_target = None
            if self._stopping:
                return
            if self._in_blackout():
                log.info(
                    "disconnected from the gateway during IB's daily reset blackout (expected): "
                    "no orders until reconnected and resynced"
                )
            else:
                log.warning(
                    "disconnected from the gateway: no orders until reconnected and resynced"
                )
            self._status_changed()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.session.disconnect(), DISCONNECT_TIMEOUT_SECONDS)

    async def _wait_for_a_fix(self, rule_set: RuleSet, error: PermanentError) -> None:
        """A failure no retry fixes (a wrong or unmarked live account, a journal bound to
        another account): stay up, degraded and saying why, until a rule change may fix it
        or SIGTERM. Retrying would only repeat the refusal every few seconds."""
        self._rules_swapped.clear()
        self.connection = "refused"
        self.connection_error = f"{type(error).__name__}: {error}"
        log.error(
            "cannot trade through the gateway at %s: %s; not retrying until the rules change "
            "(edit them, `tradectl reload` or SIGHUP) or the daemon stops",
            self.session.address(rule_set),
            error,
        )
        self._status_changed()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.session.disconnect(), DISCONNECT_TIMEOUT_SECONDS)
        waits = [
            asyncio.ensure_future(self._stop_requested.wait()),
            asyncio.ensure_future(self._rules_swapped.wait()),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        if not self._stopping:
            log.info("rules changed: connecting again")

    def _in_blackout(self) -> bool:
        """IB's nightly reset drops links and sockets: expected inside a configured blackout."""
        rules = self.rules.current
        if rules is None:
            return False
        return in_blackout(self._market_now(), rules.schedule.blackouts, None) is not None

    def _mark_disconnected(self) -> None:
        self.connection = "disconnected"
        self._link_ok = False
        self._needs_resync = True
        self._disconnected.set()

    def _on_disconnected(self) -> None:
        if self.connection == "connected":
            self._mark_disconnected()

    def _on_link_lost(self) -> None:
        if self._link_ok:
            log.log(
                logging.INFO if self._in_blackout() else logging.WARNING,
                "gateway lost its connection to IB (1100)%s: no orders until restored",
                " during IB's daily reset blackout (expected)" if self._in_blackout() else "",
            )
        self._link_ok = False
        self._status_changed()

    def _on_link_restored(self, data_lost: bool) -> None:
        log.info(
            "gateway connection to IB restored (%s): resyncing",
            "1101, data lost" if data_lost else "1102",
        )
        self._link_ok = True
        self._needs_resync = True
        self._serializer.request("link-restored")

    def _on_order_event(self, what: str) -> None:
        self._serializer.request(what)

    def _on_order_rejected(self, rule: str | None, code: int, text: str) -> None:
        self.telemetry.order_rejected(rule, code, text)

    def _on_order_filled(self, rule: str | None, description: str) -> None:
        self.telemetry.order_filled(rule, description)

    async def _write_report(self, schedule: ReportSchedule) -> None:
        """The day's report, written by `tradectl report` in a child process: the charts'
        library never loads into the daemon, and a failure there cannot hurt trading."""
        day = trading_day(self._market_now())
        directory = Path(schedule.dir)
        out = directory / f"report-{day.isoformat()}.{_REPORT_SUFFIXES[schedule.format]}"
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tradectl",
                "report",
                "--date",
                day.isoformat(),
                "--format",
                schedule.format,
                "--out",
                str(out),
                "--state-dir",
                str(self.settings.state_dir),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            _, errors = await asyncio.wait_for(process.communicate(), REPORT_TIMEOUT_SECONDS)
        except (OSError, TimeoutError) as exc:
            log.warning("could not write the daily report %s: %s", out, exc)
            return
        if process.returncode != 0:
            log.warning("could not write the daily report %s: %s", out, errors.decode().strip())
            return
        log.info("daily report written: %s", out, extra={"report": str(out)})

    def _on_schedule(self, reason: str) -> None:
        if reason == "timer":
            # Also re-read the rules: inotify misses changes on some file systems and when the
            # rules directory is replaced (a symlink swap by a deployment tool, say).
            self.reload()
        self._serializer.request(reason)

    # --- the pass ----------------------------------------------------------------------------

    def _market_now(self) -> datetime:
        """Now on the gateway's clock: the trading day (breaker), blackouts and the rebalance
        window follow the gateway, not the host (docs/daemon.md, "Clock")."""
        return self.session.market_now()

    @property
    def halted(self) -> bool:
        return self.safety.halted or self.halt_file_present or self._halt_requested is not None

    def connection_state(self) -> str:
        if self.connection == "connected" and not self._link_ok:
            return "link down (1100)"
        return self.connection

    def _link_usable(self) -> bool:
        return self.connection == "connected" and self._link_ok

    def _may_send(self) -> bool:
        if self._stopping or self.halted:
            return False
        return self._link_usable() and not self._needs_resync

    def _may_cancel_owned(self) -> bool:
        return self._link_usable() and not self._needs_resync

    async def _pass(self, reasons: frozenset[str]) -> None:
        record = PassRecord(
            started=self._clock().isoformat(),
            reasons=sorted(reasons),
            generation=self.rules.generation,
        )
        self.passes.append(record)
        self._pass_facts = None
        started = time.monotonic()
        try:
            record.outcome = await self._run_pass(reasons, record)
        except asyncio.CancelledError:
            record.outcome = "abandoned"
            raise
        except Exception as exc:
            record.outcome = f"failed: {type(exc).__name__}: {exc}"
            log.warning("reconcile pass failed: %s", exc, exc_info=True)
        finally:
            record.finished = self._clock().isoformat()
            self.telemetry.pass_finished(
                time.monotonic() - started, record.outcome, self._pass_facts
            )
            self._status_changed()

    async def _run_pass(self, reasons: frozenset[str], record: PassRecord) -> str:
        rule_set = self.rules.current
        assert rule_set is not None
        if not self._link_usable():
            log.info(
                "pass skipped: %s, nothing sent",
                self.connection_state(),
                extra={"reasons": sorted(reasons)},
            )
            return f"skipped: {self.connection_state()}"
        if self._needs_resync:
            await self.session.resync(rule_set)
            self._needs_resync = False
            log.info("resynced with the gateway")
        if self._cancel_waiters and self.halted:
            await self._cancel_owned()
        self._scheduler.window.close_if_ended(self._market_now())
        allocations_due = self._scheduler.window.due
        context = PassContext(
            reasons=reasons,
            halted=self.halted,
            allocations_due=allocations_due,
            may_send=self._may_send,
            abandon=lambda: self._stopping,
        )
        summary = await self.session.reconcile(rule_set, context)
        record.summary = asdict(summary)
        self._pass_facts = summary.facts
        if self._records is not None:
            # The pass journaled any executions it saw (resync included).
            self._records.poke()
        if summary.breaker_tripped is not None:
            self.safety = self.safety.trip(trading_day(self._market_now()), summary.breaker_tripped)
            log.error(
                "circuit breaker tripped: %s; opening orders stop until the next trading day or "
                "`tradectl resume`",
                summary.breaker_tripped,
                extra={"net_liquidation": summary.net_liquidation},
            )
        log.log(
            logging.INFO if summary.planned or summary.sent else logging.DEBUG,
            "pass complete: planned %d, sent %d, blocked %d%s",
            summary.planned,
            summary.sent,
            summary.blocked,
            ", stopped early" if summary.stopped_early else "",
            extra={"reasons": sorted(reasons), "generation": self.rules.generation},
        )
        if summary.stopped_early:
            return "stopped early"
        if summary.planned == 0 and self._last_pass_sent:
            log.info(
                "in sync: the account matches the rules",
                extra={"generation": self.rules.generation},
            )
        self._last_pass_sent = summary.sent > 0
        rebalance = rule_set.schedule.rebalance
        self._scheduler.window.pass_completed(
            allocations_due,
            work_left=summary.allocation_work_left,
            now=self._market_now(),
            session_close=summary.session_close,
            window_end=None if rebalance is None else rebalance.window_end,
        )
        if not self._ready_sent:
            self._ready_sent = True
            log.info("first sync complete", extra={"generation": self.rules.generation})
            self.notifier.ready(self.status_line())
        return "ok"

    async def _cancel_owned(self) -> None:
        try:
            cancelled = await self.session.cancel_owned_orders(self._may_cancel_owned)
        except Exception as exc:
            self._fail_cancel_waiters(f"cancelling owned orders failed: {exc}")
            raise
        waiters, self._cancel_waiters = self._cancel_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(cancelled)

    def _fail_cancel_waiters(self, reason: str) -> None:
        waiters, self._cancel_waiters = self._cancel_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(ControlError(reason))

    async def _save_safety(self, state: SafetyState) -> None:
        # Persisted before it takes effect, so a crash right after cannot forget it.
        await self.session.save_safety(state)
        self.safety = state

    # --- control commands --------------------------------------------------------------------

    async def _cmd_status(self, request: Any) -> dict[str, Any]:
        return self.status()

    async def _cmd_halt(self, request: Any) -> dict[str, Any]:
        if self._stopping:
            raise ControlError("the daemon is stopping")
        reason = str(request.get("reason") or "tradectl halt")
        if not self.safety.halted:
            self._halt_requested = reason
            await self._save_safety(self.safety.halt(reason, self._clock()))
            log.warning("halted (%s): no new orders until `tradectl resume`", reason)
        result: dict[str, Any] = {"halted": True, "cancelled": [], "cancel_pending": False}
        if request.get("cancel"):
            waiter: asyncio.Future[list[dict[str, Any]]] = (
                asyncio.get_running_loop().create_future()
            )
            self._cancel_waiters.append(waiter)
            self._serializer.request("halt")
            if not self._link_usable():
                result["cancel_pending"] = True
                result["message"] = (
                    "not connected to the gateway: owned orders will be cancelled as soon as "
                    "the connection is back"
                )
                return result
            try:
                result["cancelled"] = await asyncio.wait_for(
                    asyncio.shield(waiter), HALT_CANCEL_TIMEOUT_SECONDS
                )
            except TimeoutError:
                result["cancel_pending"] = True
                result["message"] = "cancelling owned orders is still in progress"
        else:
            self._serializer.request("halt")
        self._status_changed()
        return result

    async def _cmd_resume(self, request: Any) -> dict[str, Any]:
        if self._stopping:
            raise ControlError("the daemon is stopping")
        was = {"halted": self.safety.halted, "breaker": self.safety.breaker_day is not None}
        await self._save_safety(self.safety.resumed())
        self._halt_requested = None
        self._fail_cancel_waiters("resumed before the owned orders could be cancelled")
        log.info("resumed: halt and circuit breaker cleared", extra=was)
        result: dict[str, Any] = {"resumed": True, "cleared": was}
        if self.halt_file_present:
            result["message"] = (
                f"still halted: remove {halt_file(self.settings.rules_dir)} to resume"
            )
        self._serializer.request("resume")
        self._status_changed()
        return result

    async def _cmd_accept(self, request: Any) -> dict[str, Any]:
        if self._stopping:
            raise ControlError("the daemon is stopping")
        rule = str(request.get("rule") or "")
        try:
            line = await self.session.accept_targets(rule)
        except LookupError as exc:
            raise ControlError(str(exc)) from exc
        log.warning("%s (tradectl accept)", line, extra={"rule": rule})
        self._serializer.request("accept")
        return {"accepted": True, "message": line}

    async def _cmd_release(self, request: Any) -> dict[str, Any]:
        """`tradectl release RULE`: journal the release, then a pass cancels the protective legs
        (docs/planning.md, "Orphaned protections and release")."""
        if self._stopping:
            raise ControlError("the daemon is stopping")
        rule = request.get("rule")
        if not isinstance(rule, str) or not rule:
            raise ControlError("release needs a rule name")
        reason = str(request.get("reason") or "tradectl release")
        try:
            released = await self.session.release(rule, reason)
        except NothingToRelease as exc:
            raise ControlError(str(exc)) from None
        log.warning(
            "released brackets.%s: %g %s shares no longer protected",
            rule,
            released.held,
            released.symbol,
        )
        self._serializer.request("release")
        return release_result(released)

    async def _cmd_reload(self, request: Any) -> dict[str, Any]:
        await self._reload()
        return self._rules_status()

    # --- status ------------------------------------------------------------------------------

    def _rules_status(self) -> dict[str, Any]:
        return {
            "dir": str(self.settings.rules_dir),
            "generation": self.rules.generation,
            "loaded_at": self.rules.loaded_at,
            "files": list(self.rules.files),
            "health": "degraded" if self.rules.degraded else "ok",
            "errors": list(self.rules.errors),
            "brackets": None if self.rules.current is None else sorted(self.rules.current.brackets),
        }

    def status(self) -> dict[str, Any]:
        today = trading_day(self._market_now())
        rule_set = self.rules.current
        return {
            "pid": os.getpid(),
            "version": tradectl_version(),
            "started_at": self._started_at,
            "rules": self._rules_status(),
            "connection": {
                "state": self.connection_state(),
                "gateway": self.session.address(rule_set) if rule_set else None,
                "error": self.connection_error,
                "resynced": not self._needs_resync,
            },
            "halt": {
                "halted": self.halted,
                "by_command": self.safety.halted,
                "reason": self.safety.halt_reason,
                "since": self.safety.halted_at,
                "halt_file": self.halt_file_present,
            },
            "breaker": {
                "tripped": self.safety.breaker_active(today),
                "day": self.safety.breaker_day.isoformat() if self.safety.breaker_day else None,
                "reason": self.safety.breaker_reason,
            },
            "schedule": {
                "allocations_due": self._scheduler.window.due,
                "rebalance_window_until": _iso(self._scheduler.window.deadline),
                "next_rebalance": _iso(self._scheduler.next_rebalance()),
                "next_report": _iso(self._scheduler.next_report()),
            },
            "passes": [asdict(record) for record in self.passes],
            "pass_running": self._serializer.in_pass,
            "account": self.session.status(),
        }

    def _status_changed(self) -> None:
        self.notifier.status(self.status_line())
        self._publish()

    def _publish(self) -> None:
        """Tell telemetry about every state that changed since it last heard."""
        today = trading_day(self._market_now())
        connection = self.connection_state()
        if self._published.get("connection") != connection:
            self._published["connection"] = connection
            self.telemetry.connection_changed(connection)
        reason = self.safety.halt_reason or self._halt_requested
        halt = (self.halted, reason or ("HALT file" if self.halted else ""))
        if self._published.get("halt") != halt[0]:
            self._published["halt"] = halt[0]
            self.telemetry.halt_changed(*halt)
        breaker = self.safety.breaker_active(today)
        if self._published.get("breaker") != breaker:
            self._published["breaker"] = breaker
            self.telemetry.breaker_changed(breaker, self.safety.breaker_reason)
        rules = (self.rules.generation, self.rules.errors)
        if self._published.get("rules") != rules:
            self._published["rules"] = rules
            self.telemetry.rules_changed(*rules)
        orphaned = _orphaned_protections(self.session.status())
        if self._published.get("orphaned") != orphaned:
            self._published["orphaned"] = orphaned
            self.telemetry.orphaned_protections(orphaned)

    def status_line(self) -> str:
        parts = [self.connection_state()]
        if self.connection == "refused":
            parts[0] = f"REFUSED: {self.connection_error}"
        generation = self.rules.generation or "none"
        parts.append(f"rules {generation}" + (" DEGRADED" if self.rules.degraded else ""))
        if self.halted:
            parts.append("HALTED")
        if self.safety.breaker_active(trading_day(self._market_now())):
            parts.append("BREAKER TRIPPED")
        if self.passes:
            last = self.passes[-1]
            parts.append(f"last pass {last.outcome or 'running'}")
        return "; ".join(parts)


def _orphaned_protections(account: dict[str, Any]) -> int:
    """How many orphaned protections the session's last pass found (none before a pass)."""
    return len(account.get("orphaned_protections", ()))


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
