"""The local control channel of a running daemon: a unix stream socket in the state directory.

One JSON request per connection (``{"command": "status", ...}`` and a newline), one JSON reply
(``{"ok": true, "result": {...}}`` or ``{"ok": false, "error": "..."}``). The socket is created
mode 0600 (0660 for the operators group, ``$TRADECTL_OPERATORS_GROUP``), and every caller is
checked with SO_PEERCRED: the daemon's own user, root and members of the operators group are
served, anyone else is refused and logged (docs/security.md). There is never a network port.
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
import struct
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tradectl.private_files import make_control_socket_private, open_private
from tradectl.schemas.strict_modes import TrustPolicy

log = logging.getLogger("tradectl.daemon")

SOCKET_NAME = "control.sock"
LOCK_NAME = "tradectl.lock"
MAX_REQUEST_BYTES = 64 * 1024
REFUSED_READ_SECONDS = 5.0

Handler = Callable[[Mapping[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class PeerCredentials:
    pid: int
    uid: int
    gid: int


def peer_credentials(connection: socket.socket) -> PeerCredentials:
    """The process at the other end of a unix socket, as the kernel vouches for it."""
    raw = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return PeerCredentials(pid, uid, gid)


def peer_refusal(peer: PeerCredentials, policy: TrustPolicy) -> str | None:
    """Why this caller may not steer the daemon; None for the daemon's user, root and the
    operators group (by the caller's group or its membership)."""
    if policy.trusts_owner(peer.uid):
        return None
    if policy.operators_gid is not None and peer.gid == policy.operators_gid:
        return None
    group = (
        f"a member of the operators group {policy.operators_group!r}"
        if policy.operators_group
        else "in the operators group ($TRADECTL_OPERATORS_GROUP is not set)"
    )
    return (
        f"refused: uid {peer.uid} (pid {peer.pid}) is not the daemon's user (uid {policy.uid}), "
        f"root or {group}"
    )


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
    def __init__(
        self, path: Path, handlers: Mapping[str, Handler], policy: TrustPolicy | None = None
    ) -> None:
        self.path = path
        self._handlers = handlers
        self._policy = policy if policy is not None else TrustPolicy.from_environment()
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
        make_control_socket_private(self.path, self._policy.operators_gid)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            refusal = self._refusal(writer)
            if refusal is not None:
                log.warning("control socket: %s", refusal)
                # Read (and ignore) the request first: closing on a caller still writing would
                # show it a broken pipe instead of the refusal.
                with contextlib.suppress(TimeoutError, ValueError, asyncio.LimitOverrunError):
                    await asyncio.wait_for(reader.readline(), REFUSED_READ_SECONDS)
                reply: dict[str, Any] = {"ok": False, "error": refusal}
            else:
                reply = await self._reply(reader)
            writer.write(json.dumps(reply, default=str).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _refusal(self, writer: asyncio.StreamWriter) -> str | None:
        connection = writer.get_extra_info("socket")
        try:
            peer = peer_credentials(connection)
        except (OSError, struct.error, AttributeError) as exc:
            return f"refused: cannot tell who is calling ({exc})"
        return peer_refusal(peer, self._policy)

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
