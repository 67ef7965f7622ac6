"""Helpers for the local-security tests: the CLI and the daemon as subprocesses, under a umask."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.daemon.e2e_support import ACCOUNT_RULES, ladder

REPO = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def ladder_rules(tmp_path: Path, port: int) -> Path:
    """A rules directory with a two-level AAPL ladder against the gateway on ``port``."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "account.yaml").write_text(ACCOUNT_RULES.format(port=port, every="1h"))
    (rules / "rules.yaml").write_text("version: 1\nscales:\n" + ladder("dip", "AAPL", 200))
    return rules


def _start(
    args: tuple[str, ...], cwd: Path, umask: int, env: Mapping[str, str] | None, output: Any
) -> subprocess.Popen[bytes]:
    """``tradectl ARGS`` started with ``umask``, stdout and stderr to ``output``."""
    return subprocess.Popen(
        [sys.executable, "-m", "tradectl", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        stdout=output,
        stderr=subprocess.STDOUT if output is not subprocess.PIPE else subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        preexec_fn=lambda: os.umask(umask),
    )


def tradectl(
    *args: str,
    cwd: Path,
    umask: int = 0o022,
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    """``tradectl ARGS`` run to the end; its output as text."""
    with _start(args, cwd, umask, env, subprocess.PIPE) as process:
        out, err = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(
        process.args, process.returncode, out.decode(errors="replace"), err.decode(errors="replace")
    )


def start_tradectl(
    *args: str, cwd: Path, log: Path, umask: int = 0o022, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return _start(args, cwd, umask, env, output)
