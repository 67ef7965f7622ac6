"""``tradectl sim``: run the simulated IB Gateway until SIGTERM or SIGINT.

See docs/sim.md for the state file, the control commands and the wire log.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from tradectl.cli.arguments import count, tcp_port
from tradectl.sim.control import serve_control_lines
from tradectl.sim.server import SimGateway
from tradectl.sim.state import SimState, SimStateError


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sim",
        description="Serve the TWS API socket protocol on loopback with a simulated account.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback)")
    parser.add_argument(
        "--port", type=tcp_port, default=4002, help="TCP port (default 4002); 0 picks a free one"
    )
    parser.add_argument(
        "--state", type=Path, metavar="FILE", help="state file (YAML); default: built-in account"
    )
    parser.add_argument(
        "--persist",
        action="store_true",
        help="write the account back to --state on exit and at every day roll "
        "(a restart is a gateway restart, not a new account)",
    )
    parser.add_argument(
        "--wire-log", type=Path, metavar="FILE", help="append one JSON line per client message"
    )
    parser.add_argument(
        "--seed", type=int, metavar="N", help="random-walk seed (overrides the state file)"
    )
    parser.add_argument(
        "--symbols", type=count, default=0, metavar="N", help="add N synthetic tickers SYM0001..."
    )
    parser.add_argument(
        "--random-walk", action="store_true", help="move prices (overrides the state file)"
    )
    parser.add_argument(
        "--world",
        action="store_true",
        help="add listings outside the US (TSX, IBIS, LSE), BRK B and IDEALPRO currency pairs",
    )
    parser.add_argument(
        "--control-socket",
        type=Path,
        metavar="PATH",
        help="unix socket accepting JSON control commands",
    )
    parser.add_argument(
        "--control-stdin", action="store_true", help="read JSON control commands from stdin"
    )
    parser.add_argument(
        "--log-level", default="WARNING", metavar="LEVEL", help="Python logging level"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    if args.persist and not args.state:
        print("tradectl sim: --persist needs --state FILE", file=sys.stderr)
        return 2
    try:
        state = SimState.load(args.state) if args.state else SimState.default()
    except SimStateError as exc:
        print(exc, file=sys.stderr)
        print(f"tradectl sim: {args.state}: the state file is not valid", file=sys.stderr)
        return 1
    if args.world:
        state = state.with_world_listings()
    if args.symbols:
        state = state.with_synthetic_symbols(args.symbols)
    if args.random_walk:
        state.market.random_walk = True
    return asyncio.run(_serve(args, state))


async def _serve(args: argparse.Namespace, state: SimState) -> int:
    try:
        gateway = SimGateway(
            state,
            host=args.host,
            port=args.port,
            wire_log=args.wire_log,
            seed=args.seed,
            persist=args.state if args.persist else None,
        )
    except ValueError as exc:
        print(f"tradectl sim: {exc}", file=sys.stderr)
        return 1
    try:
        await gateway.start()
    except OSError as exc:
        print(f"tradectl sim: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    background: list[asyncio.Task[None]] = []
    control_server = None
    if args.control_socket:
        control_server = await asyncio.start_unix_server(
            lambda r, w: _control_connection(gateway, r, w), path=str(args.control_socket)
        )
    if args.control_stdin:
        background.append(asyncio.create_task(_control_stdin(gateway)))
    print(f"tradectl sim listening on {gateway.host}:{gateway.port}", flush=True)
    await stop.wait()
    for task in background:
        task.cancel()
    if control_server is not None:
        control_server.close()
        args.control_socket.unlink(missing_ok=True)
    await gateway.stop()
    return 0


async def _control_connection(
    gateway: SimGateway, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    with contextlib.suppress(ConnectionError):
        await serve_control_lines(
            gateway.control, reader, lambda s: writer.write(s.encode() + b"\n")
        )
        await writer.drain()
    writer.close()


async def _control_stdin(gateway: SimGateway) -> None:
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await serve_control_lines(gateway.control, reader, lambda s: print(s, flush=True))
