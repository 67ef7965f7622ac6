"""Where `tradectl apply` connects while it loads, read from its arguments and the raw rule file
(docs/apply.md, "Start and exit"): only a hint, checked against the validated rules later, and
not even tried where it cannot be right or safe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tradectl.cli import early_connect
from tradectl.cli.early_connect import early_address
from tradectl.ib.early import EarlyAddress
from tradectl.ib.link import REQUEST_TIMEOUT
from tradectl.ib.pacer import DEFAULT_BURST, DEFAULT_RATE
from tradectl.schemas.models import Gateway

ACCOUNT = {"id": "DU0000001"}


def rule_file(directory: Path, name: str = "rules.yaml", **gateway: object) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    document = {"version": 1, "account": ACCOUNT, "gateway": gateway}
    (directory / name).write_text(yaml.safe_dump(document))
    return directory


def test_the_hint_is_the_gateway_of_the_only_rule_file_with_the_models_defaults(
    tmp_path: Path,
) -> None:
    rules = rule_file(tmp_path / "rules", port=4010)
    assert early_address([str(rules), "--yes", "--max-rate", "30"]) == EarlyAddress(
        host="127.0.0.1",
        port=4010,
        client_id=17,
        account="DU0000001",
        timeout=10.0,
        readonly=False,
        pacing_rate=30.0,
        pacing_burst=DEFAULT_BURST,
        request_timeout=REQUEST_TIMEOUT,
    )
    named = early_address([str(rules / "rules.yaml"), "--json", "--yes"])
    assert named is not None and named.pacing_rate == DEFAULT_RATE


def test_the_defaults_read_without_the_models_are_the_models() -> None:
    defaults = Gateway()
    assert defaults.host == early_connect.DEFAULT_HOST
    assert defaults.port == early_connect.DEFAULT_PORT
    assert defaults.client_id == early_connect.DEFAULT_CLIENT_ID
    assert defaults.connect_timeout.total_seconds() == early_connect.DEFAULT_CONNECT_TIMEOUT


@pytest.mark.parametrize(
    "case",
    [
        "client id 0",
        "no --yes",
        "--sim",
        "switched off",
        "connect_timeout",
        "several files",
        "saved plan",
        "not YAML",
        "no account",
        "port as text",
        "bad arguments",
    ],
)
def test_no_hint_where_it_cannot_be_right_or_safe(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = rule_file(tmp_path / "rules", client_id=0 if case == "client id 0" else 18)
    options = ["--yes"]
    if case == "no --yes":
        options = []
    elif case == "--sim":
        options.append("--sim")
    elif case == "switched off":
        monkeypatch.setenv("TRADECTL_CONNECT_EARLY", "0")
    elif case == "connect_timeout":
        rule_file(rules, connect_timeout="5s")
    elif case == "several files":
        rule_file(rules, name="more.yml")
    elif case == "saved plan":
        rules = tmp_path / "plan.json"
        rules.write_text(json.dumps({"format": "tradectl-plan"}))
    elif case == "not YAML":
        (rules / "rules.yaml").write_text("gateway: [unclosed\n")
    elif case == "no account":
        (rules / "rules.yaml").write_text("version: 1\ngateway: {port: 4010}\n")
    elif case == "port as text":
        rule_file(rules, port="4010")
    elif case == "bad arguments":
        options.extend(["--max-rate", "500"])
    assert early_address([str(rules), *options]) is None


def test_unreadable_arguments_say_nothing_the_command_itself_reports_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert early_address([str(rule_file(tmp_path / "rules")), "--yes", "--no-such"]) is None
    assert early_address(["--help"]) is None
    assert capsys.readouterr() == ("", "")
