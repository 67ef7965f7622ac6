"""Targets files a strategy writes (``targets_from``, docs/rules.md "Targets from a file").

Reading is the runtime's job; the planner only sees the result (``TargetsSource``). A file is
validated whole: any error leaves it unused, and the last good version of it is kept (like
rule files on hot reload). Every error names ``file:row:column``:

* CSV: the line and the column number as an editor shows them (the header is line 1);
* Parquet: the 1-based record number and the 1-based column number;
* JSON (a list of objects): the 1-based record number and the key.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tradectl.planner.domain import FileTargets, TargetsMode, TargetsSource
from tradectl.schemas.models import RuleSet, TargetsFrom, check_instrument_key
from tradectl.schemas.strict_modes import untrusted_input_problems

SYMBOL_COLUMN = "symbol"
AS_OF_COLUMN = "as_of"
MODE_COLUMNS: tuple[TargetsMode, ...] = ("weight", "shares")
KNOWN_COLUMNS = (SYMBOL_COLUMN, *MODE_COLUMNS, AS_OF_COLUMN)
MAX_ROWS = 10_000
_EPSILON = 1e-9


class TargetsFileError(ValueError):
    """One problem in a targets file, located as ``file:row:column``."""

    def __init__(self, file: str, row: int, column: int | str, message: str) -> None:
        super().__init__(f"{file}:{row}:{column}: {message}")


@dataclass(frozen=True)
class _Cell:
    row: int
    column: int | str
    value: object


@dataclass(frozen=True)
class _Record:
    row: int
    cells: Mapping[str, _Cell]


def resolve_targets_path(rules: RuleSet, targets_from: TargetsFrom) -> Path:
    """A relative path resolves against the rules directory (the working directory for a rule
    set built in code)."""
    path = Path(targets_from.file)
    if path.is_absolute() or rules.source_dir is None:
        return path
    return rules.source_dir / path


def read_targets_file(path: Path, rules: RuleSet, rule: str) -> FileTargets:
    """Load and validate one targets file against the rules; raise ``TargetsFileError``."""
    name = str(path)
    try:
        stat = path.stat()
        content = path.read_bytes()
    except OSError as exc:
        raise TargetsFileError(name, 0, 0, f"cannot read the targets file: {exc.strerror}") from exc
    # A strategy's file moves money like a rule file: the same StrictModes (docs/security.md).
    untrusted = untrusted_input_problems(path)
    if untrusted:
        raise TargetsFileError(name, 0, 0, "; ".join(problem.message for problem in untrusted))
    suffix = path.suffix.lower()
    if suffix == ".csv":
        header, records = _csv_records(name, content)
    elif suffix == ".json":
        header, records = _json_records(name, content)
    else:
        header, records = _parquet_records(name, path)
    targets, mode, as_of = _validate(name, header, records, rules, rule)
    modified = datetime.fromtimestamp(stat.st_mtime, UTC)
    return FileTargets(
        path=name,
        mode=mode,
        targets=targets,
        as_of=as_of if as_of is not None else modified,
        as_of_source="as_of column" if as_of is not None else "modification time",
        content_hash=_content_hash(mode, targets),
    )


def _content_hash(mode: str, targets: Mapping[str, float]) -> str:
    # The targets, not the bytes: rewriting the same targets (in another order, or the same
    # signal with a newer as_of) is not a new file to accept.
    canonical = json.dumps([mode, sorted(targets.items())], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _csv_records(name: str, content: bytes) -> tuple[list[tuple[str, int | str]], list[_Record]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TargetsFileError(name, 1, 1, "not UTF-8 text") from exc
    rows = list(csv.reader(text.splitlines()))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise TargetsFileError(name, 1, 1, "empty: the first line is the header (symbol,weight)")
    header = [(cell.strip(), index + 1) for index, cell in enumerate(rows[0])]
    records: list[_Record] = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise TargetsFileError(
                name,
                line,
                min(len(row), len(header)) + 1,
                f"{len(row)} fields, the header has {len(header)}",
            )
        cells = {
            column: _Cell(line, number, value.strip())
            for (column, number), value in zip(header, row, strict=True)
        }
        records.append(_Record(line, cells))
    return [(column, number) for column, number in header], records


def _json_records(name: str, content: bytes) -> tuple[list[tuple[str, int | str]], list[_Record]]:
    try:
        data = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        line = getattr(exc, "lineno", 1)
        column = getattr(exc, "colno", 1)
        raise TargetsFileError(name, line, column, f"not JSON: {exc}") from exc
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise TargetsFileError(
            name, 1, 1, 'a JSON targets file is a list of objects: [{"symbol": "AAPL", ...}]'
        )
    columns: dict[str, int | str] = {}
    records: list[_Record] = []
    for number, item in enumerate(data, start=1):
        for key in item:
            columns.setdefault(str(key), str(key))
        cells = {str(key): _Cell(number, str(key), value) for key, value in item.items()}
        records.append(_Record(number, cells))
    return list(columns.items()), records


def _parquet_records(name: str, path: Path) -> tuple[list[tuple[str, int | str]], list[_Record]]:
    import pyarrow.parquet as pq  # the daemon loads pyarrow only when a Parquet file is used

    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise TargetsFileError(name, 0, 0, f"not a readable Parquet file: {exc}") from exc
    header: list[tuple[str, int | str]] = [
        (column, index + 1) for index, column in enumerate(table.column_names)
    ]
    columns = {column: table.column(column).to_pylist() for column, _ in header}
    records = [
        _Record(
            row + 1,
            {column: _Cell(row + 1, number, columns[column][row]) for column, number in header},
        )
        for row in range(table.num_rows)
    ]
    return header, records


def _validate(
    name: str,
    header: list[tuple[str, int | str]],
    records: list[_Record],
    rules: RuleSet,
    rule: str,
) -> tuple[dict[str, float], TargetsMode, datetime | None]:
    columns = {column: number for column, number in header}
    for column, number in header:
        if column not in KNOWN_COLUMNS:
            raise TargetsFileError(
                name,
                1,
                number,
                f"unknown column {column!r}: the columns are symbol, weight or shares, and "
                "optionally as_of",
            )
    if SYMBOL_COLUMN not in columns:
        raise TargetsFileError(name, 1, 1, "no symbol column")
    modes = [mode for mode in MODE_COLUMNS if mode in columns]
    if len(modes) != 1:
        raise TargetsFileError(
            name,
            1,
            1,
            "needs exactly one of the columns weight and shares "
            f"(found: {', '.join(modes) or 'none'})",
        )
    mode = modes[0]
    if not records:
        raise TargetsFileError(
            name,
            2,
            1,
            "no rows: a strategy that wants nothing held writes its symbols with "
            f"{mode} 0 (an empty file is more often a half-written one)",
        )
    if len(records) > MAX_ROWS:
        raise TargetsFileError(name, MAX_ROWS + 2, 1, f"more than {MAX_ROWS} rows")
    targets: dict[str, float] = {}
    first_row: dict[str, int] = {}
    as_of: datetime | None = None
    for record in records:
        symbol = _symbol(name, _cell(name, record, SYMBOL_COLUMN))
        if symbol in targets:
            cell = record.cells[SYMBOL_COLUMN]
            raise TargetsFileError(
                name,
                cell.row,
                cell.column,
                f"{symbol} appears twice (first on row {first_row[symbol]})",
            )
        first_row[symbol] = record.row
        value_cell = _cell(name, record, mode)
        targets[symbol] = (
            _weight(name, value_cell) if mode == "weight" else float(_shares(name, value_cell))
        )
        if AS_OF_COLUMN in columns:
            stamp = _as_of(name, _cell(name, record, AS_OF_COLUMN))
            if as_of is not None and stamp != as_of:
                cell = record.cells[AS_OF_COLUMN]
                raise TargetsFileError(
                    name,
                    cell.row,
                    cell.column,
                    f"as_of {stamp.isoformat()} differs from the "
                    f"first row's {as_of.isoformat()}: one file is one signal",
                )
            as_of = stamp
    for symbol, column, message in _rule_problems(targets, mode, rules, rule):
        cell = next(r.cells[column] for r in records if r.cells[SYMBOL_COLUMN].value == symbol)
        raise TargetsFileError(name, cell.row, cell.column, message)
    if mode == "weight":
        total = sum(targets.values())
        if total > 1 + _EPSILON:
            last = records[-1].cells[mode]
            raise TargetsFileError(
                name,
                last.row,
                last.column,
                f"weights sum to {total:.10g}; they must sum to "
                "at most 1 (what is left stays in cash)",
            )
    return targets, mode, as_of


def _rule_problems(
    targets: Mapping[str, float], mode: str, rules: RuleSet, rule: str
) -> Iterator[tuple[str, str, str]]:
    """The checks inline targets get in schemas.checks: allow-list, position limit, and one
    owner per symbol. Each problem: (symbol, the column at fault, message)."""
    allowed = rules.risk.allowed_symbols
    limit = rules.risk.max_position_fraction
    others = _symbols_of_other_rules(rules, rule)
    for symbol, value in targets.items():
        if allowed is not None and symbol not in allowed:
            yield symbol, SYMBOL_COLUMN, f"{symbol} is not an allowed symbol (risk.allowed_symbols)"
        if mode == "weight" and value > limit + _EPSILON:
            message = (
                f"{symbol}: weight {value:g} must be <= {limit:g} (risk.max_position_fraction)"
            )
            yield symbol, mode, message
        if symbol in others:
            message = (
                f"{symbol} is also traded by {others[symbol]}: two rules would fight over the "
                "same shares, keep it in one"
            )
            yield symbol, SYMBOL_COLUMN, message


def _symbols_of_other_rules(rules: RuleSet, rule: str) -> dict[str, str]:
    owners: dict[str, str] = {}
    for name, allocation in rules.allocations.items():
        if name != rule:
            owners.update(dict.fromkeys(allocation.inline_targets, f"allocations.{name}"))
    for kind, standing in (("brackets", rules.brackets), ("scales", rules.scales)):
        for name, standing_rule in standing.items():
            owners[standing_rule.symbol] = f"{kind}.{name}"
    return owners


def _cell(name: str, record: _Record, column: str) -> _Cell:
    cell = record.cells.get(column)
    if cell is None or cell.value is None or cell.value == "":
        raise TargetsFileError(
            name, record.row, column if cell is None else cell.column, f"no {column}"
        )
    return cell


def _symbol(name: str, cell: _Cell) -> str:
    """An instrument key, as in the rules: AAPL, BRK B, SHOP@SMART/TSE:CAD, conid:N."""
    if not isinstance(cell.value, str):
        raise TargetsFileError(
            name, cell.row, cell.column, f"{cell.value!r} is not an upper-case ticker such as AAPL"
        )
    try:
        return check_instrument_key(cell.value)
    except ValueError as exc:
        raise TargetsFileError(name, cell.row, cell.column, str(exc)) from None


def _number(name: str, cell: _Cell, what: str) -> float:
    value = cell.value
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            value = None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TargetsFileError(name, cell.row, cell.column, f"{cell.value!r} is not {what}")
    return float(value)


def _weight(name: str, cell: _Cell) -> float:
    weight = _number(name, cell, "a weight (a number from 0 to 1)")
    if not 0 <= weight <= 1:
        raise TargetsFileError(name, cell.row, cell.column, f"weight {weight:g} is not within 0..1")
    return weight


def _shares(name: str, cell: _Cell) -> int:
    shares = _number(name, cell, "a whole number of shares")
    if not shares.is_integer() or not 0 <= shares <= 10_000_000:
        raise TargetsFileError(
            name,
            cell.row,
            cell.column,
            f"{cell.value!r} is not a whole number of shares "
            "from 0 to 10,000,000 (short targets are not supported)",
        )
    return int(shares)


def _as_of(name: str, cell: _Cell) -> datetime:
    value = cell.value
    stamp: datetime | None = None
    if isinstance(value, datetime):
        stamp = value
    elif isinstance(value, str):
        try:
            stamp = datetime.fromisoformat(value)
        except ValueError:
            stamp = None
    if stamp is None:
        raise TargetsFileError(
            name,
            cell.row,
            cell.column,
            f"{value!r} is not an ISO 8601 time such as 2026-11-30T15:30:00+00:00",
        )
    if stamp.tzinfo is None:
        raise TargetsFileError(
            name,
            cell.row,
            cell.column,
            f"as_of {value!s} has no time zone: write it with one, e.g. 2026-11-30T15:30:00+00:00",
        )
    return stamp.astimezone(UTC)


class TargetsFiles:
    """The targets files of a rule set, each with its last good version.

    A file is read again only when its modification time or size changed (or the rules did,
    since the allow-list and limits are part of its validation). An invalid new version keeps
    the last good one in use and reports why.
    """

    def __init__(self) -> None:
        self._seen: dict[str, tuple[tuple[int, int], str]] = {}
        self._good: dict[str, FileTargets] = {}
        self._problem: dict[str, str] = {}

    def sources(self, rules: RuleSet) -> dict[str, TargetsSource]:
        found: dict[str, TargetsSource] = {}
        for rule, allocation in rules.allocations.items():
            if allocation.targets_from is None:
                continue
            path = resolve_targets_path(rules, allocation.targets_from)
            key = f"{rule}\0{path}"
            self._refresh(key, path, rules, rule)
            found[rule] = TargetsSource(
                path=str(path), targets=self._good.get(key), problem=self._problem.get(key)
            )
        return found

    def _refresh(self, key: str, path: Path, rules: RuleSet, rule: str) -> None:
        signature = (_signature(path), rules.generation())
        if self._seen.get(key) == signature:
            return
        self._seen[key] = signature
        try:
            self._good[key] = read_targets_file(path, rules, rule)
            self._problem.pop(key, None)
        except TargetsFileError as exc:
            self._problem[key] = str(exc)


def _signature(path: Path) -> tuple[int, int]:
    try:
        stat = os.stat(path)
    except OSError:
        return (-1, -1)
    return (stat.st_mtime_ns, stat.st_size)


def targets_symbols(sources: Mapping[str, TargetsSource]) -> list[str]:
    return sorted({symbol for source in sources.values() for symbol in _symbols(source)})


def allocation_symbols(rules: RuleSet, sources: Mapping[str, TargetsSource]) -> set[str]:
    """The symbols the allocations trade: their inline targets and their targets files'."""
    inline = {
        symbol for allocation in rules.allocations.values() for symbol in allocation.inline_targets
    }
    return inline | set(targets_symbols(sources))


def _symbols(source: TargetsSource) -> Iterable[str]:
    return () if source.targets is None else source.targets.targets
