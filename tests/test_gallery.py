"""The shipped rule sets work as documented: every gallery set can trade on the simulated
gateway (nothing blocked unless a comment says the block is the point), `validate --sim` warns
about a rule that can never pass its own limits, and the README's validate examples pass."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.schemas.rules_fixture import NOT_RULE_SETS
from tradectl.cli import main

REPO = Path(__file__).resolve().parents[1]
# Every rule set of the gallery but examples/signals, whose targets file its strategy writes
# first (tests/daemon/test_signals_example.py trades it against the sim); the monitoring
# examples hold no rules at all.
GALLERY = sorted(
    [REPO / "rules"]
    + [
        path
        for path in (REPO / "examples").iterdir()
        if path.is_dir() and path.name not in (*NOT_RULE_SETS, "signals")
    ]
)
ON_PURPOSE = "blocked on purpose"


@pytest.fixture(autouse=True)
def _current_event_loop() -> Iterator[None]:
    """ib_insync's synchronous API wants a current event loop; a test that ran asyncio.run()
    earlier in this process may have left none."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield
    asyncio.set_event_loop(None)
    loop.close()


def _blocked_on_purpose(directory: Path, rule: str) -> bool:
    """A rule's block says ON_PURPOSE in a comment (from its name to the next rule)."""
    for path in directory.glob("*.y*ml"):
        text = path.read_text()
        match = re.search(rf"^(\s+){re.escape(rule)}:.*?(?=^\1\S|\Z)", text, re.M | re.S)
        if match and ON_PURPOSE in match.group(0):
            return True
    return False


@pytest.mark.e2e
@pytest.mark.parametrize("directory", GALLERY, ids=[path.name for path in GALLERY])
def test_every_gallery_rule_can_trade_on_the_sim(
    directory: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["plan", str(directory), "--sim", "--json", "--state-dir", str(tmp_path)])
    plan = json.loads(capsys.readouterr().out)
    assert code == 2, "a gallery set has something to do on a fresh account"
    blocked = [
        f"{intent['kind']}.{intent['rule']}: {intent['blocked_by']}"
        for intent in plan["intents"]
        if intent["blocked_by"] and not _blocked_on_purpose(directory, intent["rule"])
    ]
    assert blocked == []


@pytest.mark.e2e
def test_validate_with_sim_warns_about_a_rule_that_can_never_pass_its_limits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        (REPO / "examples/brackets/rules.yaml")
        .read_text()
        .replace("{risk_fraction: 0.001}", "{risk_fraction: 0.005}")
    )
    assert main(["validate", str(rules), "--sim"]) == 0
    out = capsys.readouterr().out
    warnings = [line for line in out.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        "warning: brackets.msft-breakout (MSFT) can never pass its own limit at current prices: "
        "risk.max_order_value: 156,138 > 50,000"
    ]
    assert main(["validate", str(rules), "--sim", "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["warnings"]) == 1

    assert main(["validate", str(REPO / "examples/brackets"), "--sim"]) == 0
    assert "warning" not in capsys.readouterr().out


def test_validate_online_without_a_gateway_says_the_check_could_not_run(
    tmp_path: Path, reserved_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.yaml"
    text = (REPO / "examples/brackets/rules.yaml").read_text()
    rules.write_text(text.replace("port: 4002", f"port: {reserved_port}"))
    assert main(["validate", str(rules), "--online"]) == 1
    captured = capsys.readouterr()
    assert "valid rule set" in captured.out
    assert "the check against the gateway could not run" in captured.err


def test_the_readmes_validate_examples_pass(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)
    readme = (REPO / "README.md").read_text()
    commands = re.findall(r"^tradectl (validate[^#\n]*)", readme, re.M)
    assert len(commands) >= 3
    for command in commands:
        arguments = shlex.split(command)
        assert main(arguments) == 0, (command, capsys.readouterr())
