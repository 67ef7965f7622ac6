"""The local control channel of a running daemon: a unix stream socket in the state directory.

One JSON request per connection (``{"command": "status", ...}`` and a newline), one JSON reply
(``{"ok": true, "result": {...}}`` or ``{"ok": false, "error": "..."}``). The socket is created
mode 0600, so only the daemon's user (and root) can steer it; there is never a network port.
A lock file next to it makes sure one state directory has at most one daemon: two daemons on one
account would place every order twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from daemon.private_files import make_private, open_private

log = logging.getLogger("tradectl.daemon")

SOCKET_NAME = "control.sock"
LOCK_NAME = "daemon.lock"
MAX_REQUEST_BYTES = 64 * 1024

Handler = Callable[[Mapping[str, Any]], Awaitable[dict[str, Any]]]


class ControlError(Exception):
    """A command the daemon refused, with the reason the user should read."""


class DaemonNotRunning(Exception):
    pass


def socket_path(state_dir: Path) -> Path:
    return state_dir / SOCKET_NAME


class StateDirLock:
    """An exclusive lock on the state directory for the lifetime of one daemon."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = open_private(self.path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ControlError(
                f"another tradectl daemon (pid {holder}) is running with state directory "
                f"{self.path.parent}; stop it first or use a different --state-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class ControlServer:
    def __init__(self, path: Path, handlers: Mapping[str, Handler]) -> None:
        self.path = path
        self._handlers = handlers
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        # The state-dir lock is held, so a socket file left here belongs to a dead daemon.
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        previous_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, path=str(self.path), limit=MAX_REQUEST_BYTES
            )
        finally:
            os.umask(previous_umask)
        make_private(self.path)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            reply = await self._reply(reader)
            writer.write(json.dumps(reply, default=str).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _reply(self, reader: asyncio.StreamReader) -> dict[str, Any]:
        try:
            line = await reader.readline()
            request = json.loads(line)
        except (ValueError, asyncio.LimitOverrunError):
            return {"ok": False, "error": "malformed request: send one JSON object per line"}
        if not isinstance(request, dict) or not isinstance(request.get("command"), str):
            return {"ok": False, "error": 'malformed request: expected {"command": NAME}'}
        handler = self._handlers.get(request["command"])
        if handler is None:
            known = ", ".join(sorted(self._handlers))
            return {"ok": False, "error": f"unknown command {request['command']!r} ({known})"}
        try:
            return {"ok": True, "result": await handler(request)}
        except ControlError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:
            log.exception("control command failed", extra={"command": request["command"]})
            return {"ok": False, "error": f"internal error: {type(exc).__name__}: {exc}"}


def send_command(
    state_dir: Path, command: str, timeout: float = 30.0, **arguments: Any
) -> dict[str, Any]:
    """Send one command to the daemon running on ``state_dir`` and return its result.

    Raises DaemonNotRunning when nobody listens, ControlError when the daemon refused.
    """
    path = socket_path(state_dir)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(timeout)
        try:
            client.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise DaemonNotRunning(f"no tradectl daemon is listening on {path}") from exc
        client.sendall(json.dumps({"command": command, **arguments}).encode() + b"\n")
        chunks = []
        while chunk := client.recv(65536):
            chunks.append(chunk)
    try:
        reply = json.loads(b"".join(chunks))
    except ValueError as exc:
        raise ControlError(f"the daemon on {path} sent no valid reply") from exc
    if not reply.get("ok"):
        raise ControlError(str(reply.get("error", "the daemon refused the command")))
    result: dict[str, Any] = reply.get("result", {})
    return result
