"""The Grafana dashboard and Prometheus alert rules in examples/ load and name only metrics the
daemon exports; promtool accepts the rules and their unit tests where it is installed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tradectl.service.metrics import DaemonMetrics

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "examples" / "grafana" / "tradectl.json"
ALERTS = REPO / "examples" / "prometheus" / "alerts.yml"
ALERT_TESTS = REPO / "examples" / "prometheus" / "alerts.test.yml"
METRIC_NAME = re.compile(r"\btradectl_[a-z0-9_]+")
SAMPLE_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}


def exported_names(tmp_path: Path) -> set[str]:
    """Every series name the daemon's registry can export (labelled or not)."""
    names: set[str] = set()
    for family in DaemonMetrics(state_dir=tmp_path).registry.collect():
        names.update(family.name + suffix for suffix in SAMPLE_SUFFIXES.get(family.type, ("",)))
    return names


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def test_every_dashboard_panel_queries_metrics_the_daemon_exports(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exported = exported_names(tmp_path)
    queries = panel_queries(dashboard)
    assert len(dashboard["panels"]) >= 15
    assert all(panel.get("targets") for panel in dashboard["panels"])
    for title, expr in queries:
        named = METRIC_NAME.findall(expr)
        assert named, f"panel {title!r} queries no tradectl metric: {expr}"
        assert set(named) <= exported, f"panel {title!r}: {set(named) - exported} not exported"
    shown = {name for _, expr in queries for name in METRIC_NAME.findall(expr)}
    assert len(shown) >= 20


def test_every_alert_rule_names_metrics_the_daemon_exports(tmp_path: Path) -> None:
    rules = [
        rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]
    ]
    exported = exported_names(tmp_path)
    alerts = {rule["alert"]: rule["expr"] for rule in rules}
    assert {
        "TradectlCircuitBreakerTripped",
        "TradectlRulesDegraded",
        "TradectlGatewayUnreachable",
        "TradectlIbRejections",
        "TradectlOrphanedProtection",
    } <= set(alerts)
    for name, expr in alerts.items():
        assert set(METRIC_NAME.findall(expr)) <= exported, f"{name}: {expr}"
    assert (
        next(rule for rule in rules if rule["alert"] == "TradectlGatewayUnreachable")["for"]
        == "10m"
    )


PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (Debian: apt-get install prometheus; `make promtool`)",
)


@needs_promtool
def test_promtool_accepts_the_alert_rules() -> None:
    assert PROMTOOL is not None
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_promtool
def test_the_alert_rules_fire_when_they_should() -> None:
    assert PROMTOOL is not None
    result = subprocess.run(
        [PROMTOOL, "test", "rules", ALERT_TESTS.name],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ALERT_TESTS.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
