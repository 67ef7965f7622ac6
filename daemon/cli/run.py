"""`tradectl run [DIR] [--sim] [--state-dir D] [--log-format text|json] [--metrics HOST:PORT]`:
the daemon."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import logging
import signal
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tradectl.cli.arguments import DEFAULT_RULES, add_state_options, seconds
from tradectl.cli.embedded_sim import embedded_gateway
from tradectl.journal import resolve_state_dir
from tradectl.records.service import RecordsService
from tradectl.schemas.loader import load_rule_set
from tradectl.schemas.models import RuleSet
from tradectl.service.broker import IbBrokerSession
from tradectl.service.logformat import configure_logging
from tradectl.service.sdnotify import SystemdNotifier
from tradectl.service.supervisor import Daemon, DaemonSettings, LoadOutcome
from tradectl.service.telemetry import Telemetry, TelemetryFanout
from tradectl.service.watcher import DEFAULT_DEBOUNCE_SECONDS

log = logging.getLogger("tradectl.daemon")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        description="Watch DIR, reconcile on start, on every rule change, on fills, after "
        "reconnects, every schedule.reconcile_every and at schedule.rebalance; stop cleanly on "
        "SIGTERM. Control it with tradectl status, halt and resume.",
    )
    parser.add_argument("path", nargs="?", default=DEFAULT_RULES, metavar="DIR")
    parser.add_argument(
        "--sim",
        action="store_true",
        help="start the simulated gateway in-process on a free loopback port and trade it",
    )
    add_state_options(parser, sim_flag=False)
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="text for a terminal (default), json for journald and log shippers",
    )
    parser.add_argument(
        "--log-level", choices=("debug", "info", "warning", "error"), default="info"
    )
    parser.add_argument(
        "--debounce",
        type=seconds(0),
        default=DEFAULT_DEBOUNCE_SECONDS,
        metavar="S",
        help=f"quiet time after a rule file change before reloading (default "
        f"{DEFAULT_DEBOUNCE_SECONDS})",
    )
    parser.add_argument(
        "--reconnect-max",
        type=seconds(0.5),
        default=30.0,
        metavar="S",
        help="longest wait between reconnection attempts (default 30)",
    )
    parser.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="serve Prometheus metrics on http://HOST:PORT/metrics (off by default; a bare PORT "
        "means 127.0.0.1:PORT; see docs/observability.md)",
    )
    parser.add_argument(
        "--metrics-allow-remote",
        action="store_true",
        help="allow --metrics on an address other than loopback: anyone who reaches it sees "
        "what the account does",
    )
    parser.set_defaults(func=run)


def load_rules_dir(path: Path) -> LoadOutcome:
    result = load_rule_set([path])
    return LoadOutcome(
        result.rule_set,
        tuple(str(error) for error in result.errors),
        tuple(str(file) for file in result.files),
    )


def sim_banner(rules_dir: Path, gateway: str, state_dir: Path) -> str:
    """What `make demo` (`run --sim`) runs, where things are, and what to try next."""
    rules = rules_dir.absolute()
    return "\n".join(
        (
            "tradectl demo: the daemon keeps a simulated IB paper account on your rules",
            f"  gateway   simulated, {gateway}, account DU0000001 (kept in the state directory)",
            f"  rules     {rules}  (edit a file: the change is traded within a second)",
            f"  state     {state_dir}  (journal and simulated account; delete it to start over)",
            "  try       tradectl status --sim    tradectl halt --sim    tradectl resume --sim",
            f"            tradectl plan {rules_dir} --sim    touch {rules_dir / 'HALT'}",
            "  stop      Ctrl-C",
        )
    )


def run(args: argparse.Namespace) -> int:
    configure_logging(args.log_format, getattr(logging, args.log_level.upper()))
    rules_dir = Path(args.path)
    if not rules_dir.is_dir():
        log.error("%s is not a directory: give the directory that holds the rule files", rules_dir)
        return 1
    state_dir = resolve_state_dir(args.state_dir, sim=args.sim)
    with ExitStack() as stack:
        gateway = stack.enter_context(embedded_gateway(args.sim, state_dir, keep_account=True))
        host, port = gateway if gateway is not None else (None, None)
        settings = DaemonSettings(
            rules_dir=rules_dir,
            state_dir=state_dir,
            debounce=args.debounce,
            reconnect_max=args.reconnect_max,
        )
        if sys.__stderr__ is not None:
            # `kill -USR1 <pid>` prints every thread's stack: what a stuck daemon waits for.
            faulthandler.register(signal.SIGUSR1, file=sys.__stderr__, all_threads=True)
        session = IbBrokerSession(settings.state_dir, host=host, port=port)
        state_dir = settings.state_dir
        metrics: Telemetry | None = None
        if args.metrics:
            served = serve_metrics(args, session, state_dir, stack)
            if served is None:
                return 1
            metrics = served
        if args.sim and args.log_format == "text":
            print(sim_banner(rules_dir, f"{host}:{port}", state_dir), file=sys.stderr, flush=True)

        def records_service(rules: RuleSet) -> RecordsService:
            return RecordsService(state_dir, rules.records, rules.account.id)

        def telemetry(rules: RuleSet) -> Telemetry:
            sinks = [] if metrics is None else [metrics]
            if rules.alerts is not None:
                # Imported only with an alerts section: apprise is big.
                from tradectl.service.alerts import start_alerts

                sinks.append(start_alerts(rules.alerts, state_dir))
            return TelemetryFanout(sinks)

        daemon = Daemon(
            settings,
            session,
            load_rules_dir,
            SystemdNotifier(),
            records=records_service,
            telemetry=telemetry,
        )
        return asyncio.run(daemon.run())


def serve_metrics(
    args: argparse.Namespace, session: IbBrokerSession, state_dir: Path, stack: ExitStack
) -> Telemetry | None:
    """Start the metrics endpoint; None (logged) when the address is refused or taken."""
    # Imported only with --metrics: a daemon without metrics never loads prometheus_client.
    from tradectl.service.metrics import (
        DaemonMetrics,
        MetricsAddressError,
        MetricsServer,
        parse_metrics_address,
    )

    try:
        address = parse_metrics_address(args.metrics, args.metrics_allow_remote)
    except MetricsAddressError as exc:
        log.error("%s", exc)
        return None
    metrics = DaemonMetrics(
        pacer_waiting=session.pacer_waiting,
        messages_sent=session.messages_sent,
        live_state_mismatches=session.live_state_mismatches,
        state_dir=state_dir,
    )
    try:
        server = MetricsServer(address, metrics.registry)
    except OSError as exc:
        log.error("cannot serve metrics on %s:%d: %s", address.host, address.port, exc.strerror)
        return None
    stack.callback(server.close)
    if not address.loopback:
        log.warning("metrics: serving on %s, reachable beyond this machine", address.host)
    log.info("metrics: serving %s", server.url, extra={"metrics_port": server.port})
    return metrics
