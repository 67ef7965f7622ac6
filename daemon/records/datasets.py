"""The datasets the exporter writes: fills and final orders, each a name, a way to read its rows
from the journal by sequence number, and its Arrow table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar
from zoneinfo import ZoneInfo

from tradectl.records.model import FillRecord, FillSource, OrderRecord, OrderSource
from tradectl.records.parquet import FILLS_DATASET, ORDERS_DATASET, fills_table, orders_table

if TYPE_CHECKING:
    import pyarrow as pa


class ExportRow(Protocol):
    @property
    def seq(self) -> int: ...

    @property
    def time(self) -> datetime: ...

    @property
    def complete(self) -> bool: ...


Row = TypeVar("Row", bound=ExportRow)


@dataclass(frozen=True)
class Dataset(Generic[Row]):
    name: str
    rows_after: Callable[[int, int], Sequence[Row]]
    rows_in_range: Callable[[int, int], Sequence[Row]]
    table: Callable[[Sequence[Row], ZoneInfo], pa.Table]


def fills_dataset(source: FillSource) -> Dataset[FillRecord]:
    return Dataset(FILLS_DATASET, source.fills_after, source.fills_in_range, fills_table)


def orders_dataset(source: OrderSource) -> Dataset[OrderRecord]:
    return Dataset(ORDERS_DATASET, source.orders_after, source.orders_in_range, orders_table)
