"""The example systemd unit is hardened: `systemd-analyze security` rates its exposure <= 2.0."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "examples" / "systemd" / "tradectl.service"


def test_unit_exposure_is_at_most_2() -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: cannot rate the unit's exposure")
    result = subprocess.run(
        [analyze, "security", "--offline=true", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert match is not None, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.0, result.stdout


def test_unit_is_notify_with_watchdog_state_dir_and_restart() -> None:
    text = UNIT.read_text()
    for setting in (
        "Type=notify",
        "WatchdogSec=",
        "StateDirectory=tradectl",
        "DynamicUser=yes",
        "Restart=on-failure",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "--state-dir ${STATE_DIRECTORY}",
        "--log-format json",
        "UMask=0077",
        "StateDirectoryMode=0700",
    ):
        assert setting in text
