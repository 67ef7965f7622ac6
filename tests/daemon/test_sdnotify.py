"""The sd_notify protocol over a unix datagram socket, named or abstract."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tradectl.service.sdnotify import SystemdNotifier


def _receive(server: socket.socket) -> str:
    server.settimeout(2)
    return server.recv(4096).decode()


def test_ready_status_watchdog_and_stopping_reach_the_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        notifier = SystemdNotifier({"NOTIFY_SOCKET": str(path)})
        assert notifier.enabled
        notifier.ready("connected;\nrules abc")
        assert _receive(server) == "READY=1\nSTATUS=connected; rules abc"
        notifier.watchdog()
        assert _receive(server) == "WATCHDOG=1"
        notifier.stopping()
        assert _receive(server) == "STOPPING=1\nSTATUS=stopping"
        notifier.close()


def test_abstract_socket_address() -> None:
    name = f"tradectl-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(b"\0" + name.encode())
        notifier = SystemdNotifier({"NOTIFY_SOCKET": "@" + name})
        notifier.status("hello")
        assert _receive(server) == "STATUS=hello"
        notifier.close()


def test_without_systemd_nothing_happens_and_nothing_fails(tmp_path: Path) -> None:
    SystemdNotifier({}).ready("x")
    gone = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    gone.ready("x")
    gone.watchdog()


@pytest.mark.parametrize(
    ("environ", "interval"),
    [
        ({"WATCHDOG_USEC": "10000000"}, 5.0),
        ({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())}, 5.0),
        ({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_usec(
    environ: dict[str, str], interval: float | None
) -> None:
    assert SystemdNotifier(environ).watchdog_interval == interval
