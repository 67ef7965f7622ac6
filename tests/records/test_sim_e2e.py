"""Fills from a real `tradectl apply` against the simulated gateway reach the Parquet files
and the bucket, each exactly once, with the journal's context."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pytest
import yaml

from tests.records.conftest import BUCKET, Emulator
from tradectl.cli import main
from tradectl.journal import Journal
from tradectl.records.service import RecordsService
from tradectl.records.store import read_backlog
from tradectl.schemas.models import Records
from tradectl.sim import SimState, start_sim_thread

pytestmark = pytest.mark.e2e

ACCOUNT = "DU0000001"


def write_rules(directory: Path, port: int, records: dict[str, str]) -> Path:
    directory.mkdir()
    document = {
        "version": 1,
        "account": {"id": ACCOUNT},
        "gateway": {"host": "127.0.0.1", "port": port, "client_id": 17},
        "risk": {
            "max_order_value": 50_000,
            "max_position_fraction": 0.35,
            "max_risk_per_trade_fraction": 0.05,
            "max_daily_loss_fraction": 0.05,
            "max_orders_per_minute": 3000,
        },
        "records": records,
        "allocations": {
            "core": {
                "capital": {"fraction_of_nav": 0.5},
                "drift": {"absolute": 0.01},
                "min_trade_value": 0,
                "order": {"type": "limit", "offset_bps": 10},
                "targets": {"AAPL": 0.2, "MSFT": 0.2},
            }
        },
    }
    (directory / "rules.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return directory


def test_fills_of_an_apply_run_reach_files_and_bucket_once(
    emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = SimState.from_dict(
        {
            "account": {"id": ACCOUNT, "cash": 200_000},
            "symbols": {"AAPL": {"price": 100.0}, "MSFT": {"price": 200.0}},
        }
    )
    records = Records(dir=str(tmp_path / "records"), gcs=f"gs://{BUCKET}/sim")
    sim = start_sim_thread(state)
    try:
        rules = write_rules(tmp_path / "rules", sim.port, records.model_dump(exclude_none=True))
        state_dir = tmp_path / "state"
        # apply may return before every fill is reported; the next pass journals the rest.
        for _ in range(5):
            assert main(["apply", str(rules), "--yes", "--state-dir", str(state_dir)]) == 0
            if "Nothing to send." in capsys.readouterr().out:
                break
    finally:
        sim.stop()

    journal = Journal.open_read_only(state_dir)
    assert journal is not None
    executions = {execution.exec_id: execution for execution in journal.executions()}
    journal.close()
    assert {e.symbol for e in executions.values()} == {"AAPL", "MSFT"}

    report = RecordsService(state_dir, records, ACCOUNT).flush_once()

    assert report.upload is not None and report.upload.retrying == report.upload.failed == 0
    table = ds.dataset(tmp_path / "records" / "fills", partitioning="hive").to_table()
    rows = {row["exec_id"]: row for row in table.to_pylist()}
    assert table.num_rows == len(rows) == len(executions)
    for exec_id, execution in executions.items():
        row = rows[exec_id]
        assert (row["symbol"], row["quantity"], row["price"]) == (
            execution.symbol,
            execution.shares,
            execution.price,
        )
        assert row["time"] == execution.time
        assert row["order_ref"] == execution.order_ref and row["rule"] == "core"
        assert row["intent_reason"] and row["config_generation"]
        assert row["commission"] is not None and row["account"] == ACCOUNT
    assert table.schema.field("time").type == pa.timestamp("us", tz="UTC")
    assert sorted(emulator.exec_ids(tmp_path)) == sorted(executions)
    assert all(count == 1 for count in emulator.hooks.stored.values())
    backlog = read_backlog(state_dir, 0.0)
    assert backlog is not None and backlog.pending == backlog.failed == 0
