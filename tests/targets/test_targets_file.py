"""Reading targets files: every format, errors as file:row:column, last good kept."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradectl.runtime.targets_file import (
    TargetsFileError,
    TargetsFiles,
    read_targets_file,
    resolve_targets_path,
)
from tradectl.schemas.models import RuleSet, interned_key

AS_OF = "2026-11-30T15:30:00+00:00"


def rules(**extra: Any) -> RuleSet:
    risk = {
        "max_order_value": 50_000,
        "max_position_fraction": 0.4,
        "max_risk_per_trade_fraction": 0.02,
        "max_daily_loss_fraction": 0.05,
        "allowed_symbols": ["AAPL", "MSFT", "SPY", "GOOGL"],
    }
    document: dict[str, Any] = {
        "account": {"id": "DU1234567"},
        "risk": risk,
        "allocations": {
            "momentum": {
                "capital": {"amount": 10_000},
                "targets_from": {"file": "signals/momentum.csv", "max_age": "2h"},
            }
        },
        **extra,
    }
    return RuleSet.model_validate(document)


def write_csv(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_csv_json_and_parquet_give_the_same_targets(tmp_path: Path) -> None:
    csv_file = write_csv(
        tmp_path / "t.csv", f"symbol,weight,as_of\nAAPL,0.3,{AS_OF}\nMSFT,0.25,{AS_OF}\n"
    )
    json_file = tmp_path / "t.json"
    json_file.write_text(
        json.dumps(
            [
                {"symbol": "AAPL", "weight": 0.3, "as_of": AS_OF},
                {"symbol": "MSFT", "weight": 0.25, "as_of": AS_OF},
            ]
        )
    )
    parquet_file = tmp_path / "t.parquet"
    stamp = datetime(2026, 11, 30, 15, 30, tzinfo=UTC)
    pq.write_table(
        pa.table(
            {
                "symbol": ["AAPL", "MSFT"],
                "weight": [0.3, 0.25],
                "as_of": pa.array([stamp, stamp], pa.timestamp("us", tz="UTC")),
            }
        ),
        parquet_file,
    )

    loaded = [
        read_targets_file(p, rules(), "momentum") for p in (csv_file, json_file, parquet_file)
    ]

    for targets in loaded:
        assert targets.mode == "weight"
        assert dict(targets.targets) == {"AAPL": 0.3, "MSFT": 0.25}
        assert targets.as_of == stamp
        assert targets.as_of_source == "as_of column"
        # One string object per key, as the adapter's (tests/apply/test_interned_keys_e2e.py).
        assert all(symbol is interned_key(symbol) for symbol in targets.targets)
    assert len({targets.content_hash for targets in loaded}) == 1


def test_shares_without_as_of_take_the_modification_time(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", "symbol,shares\nAAPL,100\nSPY,0\n")
    os.utime(path, (1_700_000_000, 1_700_000_000))

    targets = read_targets_file(path, rules(), "momentum")

    assert (targets.mode, dict(targets.targets)) == ("shares", {"AAPL": 100.0, "SPY": 0.0})
    assert targets.as_of == datetime.fromtimestamp(1_700_000_000, UTC)
    assert targets.as_of_source == "modification time"


CSV_ERRORS = [
    ("symbol,weight\nAAPL,0.3\naapl,0.1\n", "3:1: 'aapl': must be an upper-case ticker"),
    ("symbol,weight\nAAPL,0.3\nMSFT,lots\n", "3:2: 'lots' is not a weight"),
    ("symbol,weight\nAAPL,1.5\n", "2:2: weight 1.5 is not within 0..1"),
    ("symbol,shares\nAAPL,10.5\n", "2:2: '10.5' is not a whole number of shares"),
    ("symbol,shares\nAAPL,-5\n", "2:2: '-5' is not a whole number of shares"),
    ("symbol,weight\nAAPL,0.1\nAAPL,0.2\n", "3:1: AAPL appears twice (first on row 2)"),
    ("symbol,weight\nTSLA,0.1\n", "2:1: TSLA is not an allowed symbol"),
    (
        "symbol,weight\nAAPL,0.5\n",
        "2:2: AAPL: weight 0.5 must be <= 0.4 (risk.max_position_fraction)",
    ),
    ("symbol,weight\nAAPL,0.4\nMSFT,0.4\nSPY,0.3\n", "4:2: weights sum to 1.1"),
    ("symbol,weight,signal\nAAPL,0.1,1\n", "1:3: unknown column 'signal'"),
    ("symbol,weight,shares\nAAPL,0.1,1\n", "1:1: needs exactly one of the columns weight"),
    ("symbol,weight\n", "2:1: no rows"),
    ("", "1:1: empty"),
    ("symbol,weight\nAAPL,0.1,7\n", "2:3: 3 fields, the header has 2"),
    ("symbol,weight,as_of\nAAPL,0.1,yesterday\n", "2:3: 'yesterday' is not an ISO 8601 time"),
    (
        "symbol,weight,as_of\nAAPL,0.1,2026-11-30T15:30:00\n",
        "2:3: as_of 2026-11-30T15:30:00 has no time zone",
    ),
    (
        f"symbol,weight,as_of\nAAPL,0.1,{AS_OF}\nMSFT,0.1,2026-11-30T16:00:00+00:00\n",
        "3:3: as_of 2026-11-30T16:00:00+00:00 differs from the first row's",
    ),
]


@pytest.mark.parametrize(("text", "expected"), CSV_ERRORS)
def test_csv_errors_name_row_and_column(tmp_path: Path, text: str, expected: str) -> None:
    path = write_csv(tmp_path / "momentum.csv", text)

    with pytest.raises(TargetsFileError) as raised:
        read_targets_file(path, rules(), "momentum")

    assert str(raised.value).startswith(f"{path}:{expected}")


def test_a_symbol_another_rule_trades_is_an_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "momentum.csv", "symbol,weight\nMSFT,0.1\nAAPL,0.1\n")
    other = {
        "brackets": {
            "aapl-dip": {
                "symbol": "AAPL",
                "side": "BUY",
                "quantity": 1,
                "entry": {"limit": 100.0},
                "stop_loss": {"percent": 1},
                "take_profit": {"percent": 1},
            }
        }
    }
    with pytest.raises(TargetsFileError, match=r":3:1: AAPL is also traded by brackets.aapl-dip"):
        read_targets_file(path, rules(**other), "momentum")


def test_json_errors_name_record_and_key(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(
        json.dumps([{"symbol": "AAPL", "weight": 0.1}, {"symbol": "MSFT", "weight": "x"}])
    )
    with pytest.raises(TargetsFileError, match=r"t.json:2:weight: 'x' is not a weight"):
        read_targets_file(path, rules(), "momentum")
    path.write_text('[{"symbol": "AAPL",\n "weight": }]')
    with pytest.raises(TargetsFileError, match=r"t.json:2:12: not JSON"):
        read_targets_file(path, rules(), "momentum")
    path.write_text('{"AAPL": 0.1}')
    with pytest.raises(TargetsFileError, match=r"t.json:1:1: a JSON targets file is a list"):
        read_targets_file(path, rules(), "momentum")


def test_parquet_errors_name_record_and_column(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"symbol": ["AAPL", "MSFT"], "shares": [10, -3]}), path)
    with pytest.raises(TargetsFileError, match=r"t.parquet:2:2: -3 is not a whole number"):
        read_targets_file(path, rules(), "momentum")
    path.write_bytes(b"not parquet")
    with pytest.raises(TargetsFileError, match=r"t.parquet:0:0: not a readable Parquet file"):
        read_targets_file(path, rules(), "momentum")


def test_relative_paths_resolve_against_the_rules_directory(tmp_path: Path) -> None:
    rule_set = rules().with_source_dir(tmp_path / "rules")
    targets_from = rule_set.allocations["momentum"].targets_from
    assert targets_from is not None
    assert resolve_targets_path(rule_set, targets_from) == tmp_path / "rules/signals/momentum.csv"


def test_last_good_version_is_kept_and_the_problem_reported(tmp_path: Path) -> None:
    rule_set = rules().with_source_dir(tmp_path)
    path = write_csv(tmp_path / "signals/momentum.csv", "symbol,shares\nAAPL,100\n")
    files = TargetsFiles()

    first = files.sources(rule_set)["momentum"]
    assert first.problem is None and first.targets is not None

    path.write_text("symbol,shares\nAAPL,lots\n")
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
    second = files.sources(rule_set)["momentum"]

    assert second.targets == first.targets
    assert second.problem is not None and ":2:2: 'lots' is not a whole number" in second.problem

    path.write_text("symbol,shares\nAAPL,50\n")
    os.utime(path, ns=(path.stat().st_mtime_ns + 2 * 10**9,) * 2)
    third = files.sources(rule_set)["momentum"]
    assert third.problem is None and third.targets is not None
    assert dict(third.targets.targets) == {"AAPL": 50.0}


def test_a_missing_file_has_no_targets(tmp_path: Path) -> None:
    source = TargetsFiles().sources(rules().with_source_dir(tmp_path))["momentum"]
    assert source.targets is None
    assert source.problem is not None and "cannot read the targets file" in source.problem


SYMBOLS = st.sampled_from(["AAPL", "MSFT", "SPY", "GOOGL"])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    mode=st.sampled_from(["weight", "shares"]),
    targets=st.dictionaries(
        SYMBOLS, st.integers(0, 25).map(lambda n: n / 100), min_size=1, max_size=4
    ),
    file_format=st.sampled_from(["csv", "json", "parquet"]),
)
def test_any_valid_targets_read_back_the_same_in_every_format(
    tmp_path: Path, mode: str, targets: dict[str, float], file_format: str
) -> None:
    values = targets if mode == "weight" else {s: float(round(w * 400)) for s, w in targets.items()}
    path = tmp_path / f"t.{file_format}"
    if file_format == "csv":
        path.write_text(f"symbol,{mode}\n" + "".join(f"{s},{v!r}\n" for s, v in values.items()))
    elif file_format == "json":
        path.write_text(json.dumps([{"symbol": s, mode: v} for s, v in values.items()]))
    else:
        pq.write_table(pa.table({"symbol": list(values), mode: list(values.values())}), path)

    loaded = read_targets_file(path, rules(), "momentum")

    assert loaded.mode == mode
    assert dict(loaded.targets) == values


def test_a_targets_file_others_can_write_is_refused_and_the_last_good_kept(tmp_path: Path) -> None:
    rule_set = rules().with_source_dir(tmp_path)
    path = write_csv(tmp_path / "signals/momentum.csv", "symbol,shares\nAAPL,100\n")
    files = TargetsFiles()
    first = files.sources(rule_set)["momentum"]
    assert first.targets is not None

    path.write_text("symbol,shares\nAAPL,5000\n")
    path.chmod(0o666)
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
    loose = files.sources(rule_set)["momentum"]

    assert loose.targets == first.targets
    assert loose.problem is not None and "chmod o-w" in loose.problem, loose.problem
