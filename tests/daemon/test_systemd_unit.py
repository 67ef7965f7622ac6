"""The example systemd units are hardened: `systemd-analyze security` rates their exposure
<= 2.0. ``tradectl@.service`` runs one daemon per account (docs/daemon.md)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "examples" / "systemd"
UNIT = UNITS / "tradectl.service"
TEMPLATE = UNITS / "tradectl@.service"


@pytest.mark.parametrize("unit", [UNIT, TEMPLATE], ids=["single", "per-account"])
def test_unit_exposure_is_at_most_2(unit: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: cannot rate the unit's exposure")
    result = subprocess.run(
        [analyze, "security", "--offline=true", str(unit)],
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


def test_the_template_gives_each_account_its_rules_and_state_directory() -> None:
    text = TEMPLATE.read_text()
    assert "tradectl run /etc/tradectl/%i/rules --state-dir ${STATE_DIRECTORY}" in text
    assert "StateDirectory=tradectl/%i" in text
    assert "EnvironmentFile=-/etc/tradectl/%i/tradectl.env" in text
    # Everything else is the single unit's: the same hardening and supervision.
    single = {line for line in UNIT.read_text().splitlines() if line and line[0] != "#"}
    template = {line for line in text.splitlines() if line and line[0] != "#"}
    assert single - template == {
        "Description=tradectl declarative order automation for Interactive Brokers",
        "ExecStart=/opt/tradectl/.venv/bin/tradectl run ${TRADECTL_RULES} --state-dir "
        "${STATE_DIRECTORY} --log-format json",
        "StateDirectory=tradectl",
    }
