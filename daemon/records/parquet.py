"""Fill records as an Arrow table, and atomic, deterministic Parquet files.

A batch file's bytes depend only on the fills it holds, so rewriting a batch after a crash
produces the same file (and the same checksum the GCS uploader compares against).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import google_crc32c

from tradectl.private_files import make_dirs, open_private, records_modes
from tradectl.records.model import DEFAULT_TRADE_ZONE, FillRecord, OrderRecord, trade_date

if TYPE_CHECKING:
    import pyarrow as pa

# pyarrow (~40 MB resident) is imported by the functions that build tables and files, not
# here: the daemon imports this module at start and may run for days before its first batch.

FILLS_DATASET = "fills"


@functools.cache
def fill_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("exec_id", pa.string(), nullable=False),
            pa.field("time", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("trade_date", pa.date32(), nullable=False),
            pa.field("account", pa.string()),
            pa.field("symbol", pa.string(), nullable=False),
            pa.field("con_id", pa.int64()),
            pa.field("side", pa.string(), nullable=False),
            pa.field("quantity", pa.float64(), nullable=False),
            pa.field("price", pa.float64(), nullable=False),
            pa.field("commission", pa.float64()),
            pa.field("commission_currency", pa.string()),
            pa.field("order_id", pa.int64(), nullable=False),
            pa.field("perm_id", pa.int64(), nullable=False),
            pa.field("order_ref", pa.string()),
            pa.field("rule", pa.string()),
            pa.field("leg", pa.string()),
            pa.field("rule_generation", pa.string()),
            pa.field("intent_reason", pa.string()),
            pa.field("config_generation", pa.string()),
            pa.field("journal_seq", pa.int64(), nullable=False),
        ]
    )


ORDERS_DATASET = "orders"


@functools.cache
def order_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("order_id", pa.int64(), nullable=False),
            pa.field("perm_id", pa.int64(), nullable=False),
            pa.field("client_id", pa.int64(), nullable=False),
            pa.field("time", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("trade_date", pa.date32(), nullable=False),
            pa.field("submitted", pa.timestamp("us", tz="UTC")),
            pa.field("account", pa.string()),
            pa.field("symbol", pa.string(), nullable=False),
            pa.field("con_id", pa.int64()),
            pa.field("side", pa.string(), nullable=False),
            pa.field("order_type", pa.string(), nullable=False),
            pa.field("quantity", pa.float64(), nullable=False),
            pa.field("limit_price", pa.float64()),
            pa.field("aux_price", pa.float64()),
            pa.field("status", pa.string(), nullable=False),
            pa.field("filled", pa.float64(), nullable=False),
            pa.field("average_price", pa.float64()),
            pa.field("executions", pa.int64(), nullable=False),
            pa.field("commission", pa.float64()),
            pa.field("order_ref", pa.string()),
            pa.field("rule", pa.string()),
            pa.field("leg", pa.string()),
            pa.field("rule_generation", pa.string()),
            pa.field("intent_reason", pa.string()),
            pa.field("config_generation", pa.string()),
            pa.field("journal_seq", pa.int64(), nullable=False),
        ]
    )


PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"


def fills_table(fills: Sequence[FillRecord], zone: ZoneInfo = DEFAULT_TRADE_ZONE) -> pa.Table:
    rows: list[dict[str, Any]] = [
        {
            "exec_id": fill.exec_id,
            "time": fill.time,
            "trade_date": trade_date(fill.time, zone),
            "account": fill.account,
            "symbol": fill.symbol,
            "con_id": fill.con_id,
            "side": fill.side,
            "quantity": float(fill.quantity),
            "price": float(fill.price),
            "commission": None if fill.commission is None else float(fill.commission),
            "commission_currency": fill.commission_currency,
            "order_id": fill.order_id,
            "perm_id": fill.perm_id,
            "order_ref": fill.order_ref,
            "rule": fill.rule,
            "leg": fill.leg,
            "rule_generation": fill.rule_generation,
            "intent_reason": fill.intent_reason,
            "config_generation": fill.config_generation,
            "journal_seq": fill.seq,
        }
        for fill in fills
    ]
    import pyarrow as pa

    return pa.Table.from_pylist(rows, schema=fill_schema())


def orders_table(orders: Sequence[OrderRecord], zone: ZoneInfo = DEFAULT_TRADE_ZONE) -> pa.Table:
    rows: list[dict[str, Any]] = [
        {
            "order_id": order.order_id,
            "perm_id": order.perm_id,
            "client_id": order.client_id,
            "time": order.time,
            "trade_date": trade_date(order.time, zone),
            "submitted": order.submitted,
            "account": order.account,
            "symbol": order.symbol,
            "con_id": order.con_id,
            "side": order.side,
            "order_type": order.order_type,
            "quantity": float(order.quantity),
            "limit_price": order.limit_price,
            "aux_price": order.aux_price,
            "status": order.status,
            "filled": float(order.filled),
            "average_price": order.average_price,
            "executions": order.executions,
            "commission": order.commission,
            "order_ref": order.order_ref,
            "rule": order.rule,
            "leg": order.leg,
            "rule_generation": order.rule_generation,
            "intent_reason": order.intent_reason,
            "config_generation": order.config_generation,
            "journal_seq": order.seq,
        }
        for order in orders
    ]
    import pyarrow as pa

    return pa.Table.from_pylist(rows, schema=order_schema())


def parquet_bytes(table: pa.Table) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return bytes(sink.getvalue().to_pybytes())


def csv_bytes(table: pa.Table) -> bytes:
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    sink = pa.BufferOutputStream()
    pa_csv.write_csv(table, sink)
    return bytes(sink.getvalue().to_pybytes())


@dataclass(frozen=True)
class Checksums:
    """Checksums in the encoding GCS reports them (base64 of the big-endian digest)."""

    md5: str
    crc32c: str
    size: int

    @classmethod
    def of(cls, data: bytes) -> Checksums:
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode("ascii")
        digest: bytes = google_crc32c.Checksum(data).digest()  # type: ignore[no-untyped-call]
        crc = base64.b64encode(digest).decode("ascii")
        return cls(md5=md5, crc32c=crc, size=len(data))


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader or a crash sees the old file or the whole new
    one, never a part: temp file in the same directory, fsync, rename, fsync the directory.

    The temp name starts with a dot and does not end in ``.parquet``, so pyarrow, pandas and
    DuckDB dataset readers skip it if a crash leaves it behind.
    """
    modes = records_modes()
    make_dirs(path.parent, modes)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with os.fdopen(open_private(temp, os.O_WRONLY | os.O_TRUNC, modes), "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
