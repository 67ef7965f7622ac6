"""Helpers for the local-security tests: the CLI and the daemon as subprocesses, under a umask."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def tradectl(
    *args: str,
    cwd: Path,
    umask: int = 0o022,
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    """``tradectl ARGS`` in a subprocess started with ``umask``."""
    return subprocess.run(
        [sys.executable, "-m", "daemon", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
        preexec_fn=lambda: os.umask(umask),
    )


def start_tradectl(
    *args: str, cwd: Path, log: Path, umask: int = 0o022, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "daemon", *args],
            cwd=cwd,
            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
            stdout=output,
            stderr=output,
            stdin=subprocess.DEVNULL,
            preexec_fn=lambda: os.umask(umask),
        )
