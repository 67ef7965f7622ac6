"""The control socket: one JSON request, one JSON reply, owner-only, one daemon per state dir."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tradectl.service.control import (
    ControlError,
    ControlServer,
    DaemonNotRunning,
    StateDirLock,
    send_command,
    socket_path,
)


async def _echo(request: Mapping[str, Any]) -> dict[str, Any]:
    return {"echo": dict(request)}


async def _refuse(request: Mapping[str, Any]) -> dict[str, Any]:
    raise ControlError("not now: the daemon is stopping")


async def _broken(request: Mapping[str, Any]) -> dict[str, Any]:
    raise KeyError("oops")


def test_commands_round_trip_and_errors_are_explained(tmp_path: Path) -> None:
    async def scenario() -> None:
        server = ControlServer(
            socket_path(tmp_path), {"echo": _echo, "refuse": _refuse, "broken": _broken}
        )
        await server.start()
        try:
            assert stat.S_IMODE(socket_path(tmp_path).stat().st_mode) == 0o600
            reply = await asyncio.to_thread(send_command, tmp_path, "echo", cancel=True)
            assert reply == {"echo": {"command": "echo", "cancel": True}}
            with pytest.raises(ControlError, match="not now"):
                await asyncio.to_thread(send_command, tmp_path, "refuse")
            with pytest.raises(ControlError, match="unknown command 'nope'"):
                await asyncio.to_thread(send_command, tmp_path, "nope")
            with pytest.raises(ControlError, match="internal error: KeyError"):
                await asyncio.to_thread(send_command, tmp_path, "broken")
        finally:
            await server.close()
        assert not socket_path(tmp_path).exists()

    asyncio.run(scenario())


def test_no_daemon_is_reported_as_such(tmp_path: Path) -> None:
    with pytest.raises(DaemonNotRunning, match="no tradectl daemon is listening"):
        send_command(tmp_path, "status")


def test_a_state_dir_has_at_most_one_daemon(tmp_path: Path) -> None:
    first = StateDirLock(tmp_path)
    first.acquire()
    second = StateDirLock(tmp_path)
    with pytest.raises(ControlError, match="another tradectl daemon"):
        second.acquire()
    first.release()
    second.acquire()
    second.release()
