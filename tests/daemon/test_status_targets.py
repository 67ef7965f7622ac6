"""`tradectl status` shows what each file-fed allocation does with its targets file."""

from __future__ import annotations

from tradectl.cli.status import render_status


def test_status_lists_each_targets_file_with_its_state_and_reason() -> None:
    status = {
        "pid": 1,
        "started_at": "2026-11-30T15:00:00+00:00",
        "rules": {"dir": "rules", "generation": "abc", "health": "ok", "errors": []},
        "connection": {"state": "connected", "gateway": "127.0.0.1:4002", "error": ""},
        "halt": {"halted": False, "by_command": False, "halt_file": False},
        "breaker": {"tripped": False},
        "schedule": {"next_rebalance": None, "allocations_due": True},
        "passes": [],
        "account": {
            "targets_files": [
                {
                    "rule": "momentum",
                    "status": "held",
                    "reason": "new targets file t.csv would turn over 80% of the allocation",
                }
            ]
        },
    }

    text = render_status(status)

    assert (
        "targets:     allocations.momentum HELD: new targets file t.csv would turn over 80% of "
        "the allocation"
    ) in text
