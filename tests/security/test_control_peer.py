"""The control socket checks who calls (SO_PEERCRED): the daemon's user, root and the operators
group are served; anyone else is refused, and the refusal is logged. The real test connects as
a second uid even through a socket whose file mode would let it in."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tradectl.schemas.strict_modes import TrustPolicy
from tradectl.service.control import ControlServer, PeerCredentials, peer_refusal, socket_path

STRANGER_UID = 4242
STRANGER_GID = 4343


async def _echo(request: Mapping[str, Any]) -> dict[str, Any]:
    return {"echo": dict(request)}


def test_own_user_root_and_operators_are_served_others_refused() -> None:
    policy = TrustPolicy(uid=1000, operators_gid=2000, operators_group="traders")
    assert peer_refusal(PeerCredentials(pid=1, uid=1000, gid=1000), policy) is None
    assert peer_refusal(PeerCredentials(pid=1, uid=0, gid=0), policy) is None
    assert peer_refusal(PeerCredentials(pid=1, uid=3000, gid=2000), policy) is None
    refusal = peer_refusal(PeerCredentials(pid=77, uid=3000, gid=3000), policy)
    assert refusal is not None
    assert "uid 3000 (pid 77)" in refusal
    assert "operators group 'traders'" in refusal
    unset = peer_refusal(PeerCredentials(pid=77, uid=3000, gid=2000), TrustPolicy(uid=1000))
    assert unset is not None
    assert "TRADECTL_OPERATORS_GROUP is not set" in unset


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another uid can reach (pytest's tmp dirs are private to root)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run a client as a second uid")
    directory = Path(tempfile.mkdtemp(prefix="tctl-peer-", dir="/tmp"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory)


def call_as(uid: int, gid: int, path: Path) -> dict[str, Any]:
    """Send one command from a forked child that has become ``uid``:``gid``."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        status = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.settimeout(30)
                client.connect(str(path))
                client.sendall(b'{"command": "echo"}\n')
                os.write(write_end, client.makefile("rb").readline())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        line = pipe.read()
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    reply: dict[str, Any] = json.loads(line)
    return reply


def serve_and_call(directory: Path, policy: TrustPolicy, uid: int, gid: int) -> dict[str, Any]:
    async def scenario() -> dict[str, Any]:
        server = ControlServer(socket_path(directory), {"echo": _echo}, policy)
        await server.start()
        try:
            # Loosen the file mode on purpose: the peer check must hold on its own.
            socket_path(directory).chmod(0o666)
            return await asyncio.to_thread(call_as, uid, gid, socket_path(directory))
        finally:
            await server.close()

    return asyncio.run(scenario())


def test_a_second_uid_is_refused_and_logged(
    shared_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="tradectl.daemon"):
        reply = serve_and_call(shared_dir, TrustPolicy(uid=0), STRANGER_UID, STRANGER_GID)
    assert reply["ok"] is False
    assert reply["error"].startswith(f"refused: uid {STRANGER_UID} (pid ")
    assert any(f"uid {STRANGER_UID}" in record.getMessage() for record in caplog.records)


def test_a_second_uid_in_the_operators_group_is_served(shared_dir: Path) -> None:
    policy = TrustPolicy(uid=0, operators_gid=STRANGER_GID, operators_group="traders")
    reply = serve_and_call(shared_dir, policy, STRANGER_UID, STRANGER_GID)
    assert reply == {"ok": True, "result": {"echo": {"command": "echo"}}}
    assert "echo" in reply["result"]
