"""Pydantic v2 models of the tradectl rule language, version 1 (docs/rules.md).

Two layers:

* ``RuleFile`` is one YAML document as written: every section optional, unknown keys rejected.
* ``RuleSet`` is the merge of all files of a rule-set directory. Cross-field checks that need the
  whole set (weights against risk limits, allowed symbols, working-order counts) live in
  ``tradectl.schemas.checks`` so that each error can point at the exact YAML node that causes it.

Shape checks that concern a single mapping (exactly one form of ``entry``, say) are model
validators here; their errors point at that mapping.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import time, timedelta
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    StringConstraints,
    Tag,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

RULE_LANGUAGE_VERSION = 1


class StrictModel(BaseModel):
    """Base of every rule-language model: unknown keys are errors, no type coercion, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# --- scalar types -------------------------------------------------------------------------

# A ticker as IB writes it: a share class follows a space ("BRK B"), never a dot.
_TICKER = r"[A-Z][A-Z0-9]{0,9}( [A-Z0-9]{1,3})?"
_EXCHANGE = r"[A-Z][A-Z0-9.]{0,15}"
# An instrument as the planner and the plan name it (docs/rules.md, "Instruments"): the bare
# ticker is a US stock routed SMART in USD; TICKER@EXCHANGE[/PRIMARY]:CURRENCY is any other
# listing; conid:N names a contract by IB's id alone. No named groups: the pattern is also the
# JSON Schema pattern, which is ECMA-262.
INSTRUMENT_KEY_PATTERN = (
    rf"^({_TICKER}(@{_EXCHANGE}(/{_EXCHANGE})?:[A-Z]{{3}})?|conid:[1-9][0-9]{{0,11}})$"
)
_INSTRUMENT_KEY_RE = re.compile(
    rf"^(?P<symbol>{_TICKER})(@(?P<exchange>{_EXCHANGE})(/(?P<primary>{_EXCHANGE}))?"
    r":(?P<currency>[A-Z]{3}))?$"
)
_CON_ID_KEY_RE = re.compile(r"^conid:(?P<con_id>[1-9][0-9]{0,11})$")
_DOTTED_CLASS_RE = re.compile(r"^([A-Z][A-Z0-9]{0,9})[.]([A-Z]{1,2})$")
SHORTHAND_EXCHANGE = "SMART"
SHORTHAND_CURRENCY = "USD"


def interned_key(key: str) -> str:
    """The one string object of the instrument key ``key`` (``sys.intern``). Every key the
    rules, targets files and the broker adapter hand the planner comes through here, so that
    the planner's per-target look-ups in the account's dictionaries (positions, quotes,
    contracts, the rule's working orders) find their key by identity instead of comparing its
    characters in another object, which at 20,000 targets was a tenth of ``plan()``
    (benchmarks/README.md, "Round seven")."""
    return sys.intern(key)


def check_instrument_key(value: str) -> str:
    """``value`` (``interned_key``) when it is an instrument key (docs/rules.md,
    "Instruments"); ValueError that says how to write it otherwise."""
    if _CON_ID_KEY_RE.match(value):
        return interned_key(value)
    listing = _INSTRUMENT_KEY_RE.match(value)
    if listing is not None:
        if (listing["exchange"], listing["primary"], listing["currency"]) == (
            SHORTHAND_EXCHANGE,
            None,
            SHORTHAND_CURRENCY,
        ):
            # One instrument, one key: a second spelling could hide a duplicate target.
            raise ValueError(f"{value!r}: a US stock on SMART in USD is written {listing[1]!r}")
        return interned_key(value)
    dotted = _DOTTED_CLASS_RE.match(value)
    if dotted is not None:
        raise ValueError(
            f"{value!r}: IB writes a share class after a space, not a dot: write "
            f"'{dotted[1]} {dotted[2]}'"
        )
    raise ValueError(f"{value!r}: must be an upper-case ticker such as AAPL or 'BRK B'")


Symbol = Annotated[
    str,
    AfterValidator(check_instrument_key),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": INSTRUMENT_KEY_PATTERN,
            "description": "Upper-case ticker of a US stock on SMART in USD (AAPL, 'BRK B'), "
            "or an instrument key such as SHOP@TSE:CAD or conid:265598",
        }
    ),
]

SecType = Literal["STK", "ETF"]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
ExchangeCode = Annotated[str, StringConstraints(pattern=rf"^{_EXCHANGE}$")]
_TICKER_RE = re.compile(rf"^{_TICKER}$")


def _check_ticker(value: str) -> str:
    if _TICKER_RE.match(value):
        return value
    check_instrument_key(value)
    raise ValueError(f"{value!r}: the symbol alone, such as SHOP or 'BRK B'")


Ticker = Annotated[
    str,
    AfterValidator(_check_ticker),
    WithJsonSchema({"type": "string", "pattern": rf"^{_TICKER}$"}),
]


class InstrumentFields(BaseModel):
    """The full form of an instrument: ``{symbol, sec_type, exchange, primary_exchange,
    currency}`` or ``{con_id}`` alone (docs/rules.md, "Instruments")."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    symbol: Ticker | None = None
    sec_type: SecType = Field(
        default="STK", description="STK or ETF; IB lists both as STK, this is for the reader"
    )
    exchange: ExchangeCode = SHORTHAND_EXCHANGE
    primary_exchange: ExchangeCode | None = None
    currency: CurrencyCode = SHORTHAND_CURRENCY
    con_id: Annotated[int, Field(gt=0, lt=10**12)] | None = None

    @model_validator(mode="after")
    def _symbol_or_con_id(self) -> InstrumentFields:
        if self.con_id is not None:
            extra = [
                name
                for name in ("symbol", "exchange", "primary_exchange", "currency", "sec_type")
                if name in self.model_fields_set
            ]
            if extra:
                raise ValueError(
                    f"{{con_id}} names the contract alone; leave out {', '.join(extra)}"
                )
        elif self.symbol is None:
            raise ValueError("an instrument needs a symbol (with exchange and currency) or con_id")
        return self

    @property
    def key(self) -> str:
        """The instrument's key (``interned_key``)."""
        if self.con_id is not None:
            return interned_key(f"conid:{self.con_id}")
        assert self.symbol is not None
        if (
            self.exchange == SHORTHAND_EXCHANGE
            and self.currency == SHORTHAND_CURRENCY
            and self.primary_exchange is None
        ):
            return interned_key(self.symbol)
        primary = f"/{self.primary_exchange}" if self.primary_exchange else ""
        return interned_key(f"{self.symbol}@{self.exchange}{primary}:{self.currency}")


@dataclass(frozen=True)
class Instrument:
    """What an instrument key asks IB for: a stock by its listing, or a contract by conId."""

    key: str
    symbol: str | None
    exchange: str
    primary_exchange: str | None
    currency: str
    con_id: int | None = None

    @property
    def ticker(self) -> str:
        """The ticker part of the key (the key itself for a conid: key)."""
        return self.symbol if self.symbol is not None else self.key

    def describe(self) -> str:
        if self.con_id is not None:
            return f"conId {self.con_id}"
        primary = f" (primary {self.primary_exchange})" if self.primary_exchange else ""
        return f"{self.symbol} on {self.exchange}{primary} in {self.currency}"


# A held contract no rule names gets a key no rule can write (docs/planning.md, "Instruments
# and conId"): its symbol, this separator and its conId.
UNLISTED_SEPARATOR = "~"


def unlisted_key(symbol: str, con_id: int) -> str:
    return interned_key(f"{symbol}{UNLISTED_SEPARATOR}{con_id}")


def parse_instrument(key: str) -> Instrument:
    """The instrument a key (a rule's symbol, a target, an unlisted holding) names; ValueError
    for anything else."""
    symbol, separator, con_id_text = key.rpartition(UNLISTED_SEPARATOR)
    if separator and con_id_text.isdigit():
        return Instrument(key, symbol, SHORTHAND_EXCHANGE, None, "", int(con_id_text))
    by_con_id = _CON_ID_KEY_RE.match(key)
    if by_con_id is not None:
        con_id = int(by_con_id["con_id"])
        return Instrument(key, None, SHORTHAND_EXCHANGE, None, "", con_id)
    match = _INSTRUMENT_KEY_RE.match(key)
    if match is None:
        check_instrument_key(key)
        raise ValueError(f"{key!r} is not an instrument")
    return Instrument(
        key=key,
        symbol=match["symbol"],
        exchange=match["exchange"] or SHORTHAND_EXCHANGE,
        primary_exchange=match["primary"],
        currency=match["currency"] or SHORTHAND_CURRENCY,
    )


def instrument_allowed(key: str, allowed: Iterable[str]) -> bool:
    """Whether ``allowed_symbols`` lets ``key`` trade: listed itself, or its ticker is."""
    listed = set(allowed)
    if key in listed:
        return True
    try:
        return parse_instrument(key).ticker in listed
    except ValueError:
        return False


def _instrument_to_key(value: object) -> object:
    """The full form written as a mapping becomes its key; a string is checked as a key."""
    if isinstance(value, dict):
        try:
            return InstrumentFields.model_validate(value).key
        except ValidationError as exc:
            raise ValueError(_first_problem(exc)) from None
    return value


def _first_problem(exc: ValidationError) -> str:
    details = exc.errors()[0]
    where = ".".join(str(part) for part in details["loc"])
    message = details["msg"].removeprefix("Value error, ")
    if message.startswith("Input should be "):
        message = "must be " + message.removeprefix("Input should be ")
    if message.startswith("String should "):
        message = "must " + message.removeprefix("String should ")
    return f"{where}: {message}" if where else message


InstrumentRef = Annotated[
    str,
    BeforeValidator(_instrument_to_key),
    AfterValidator(check_instrument_key),
    WithJsonSchema(
        {
            "description": "A ticker (a US stock on SMART in USD, e.g. AAPL or 'BRK B'), an "
            "instrument key such as SHOP@TSE:CAD, or the full form {symbol, sec_type, "
            "exchange, primary_exchange, currency} or {con_id}",
            "oneOf": [
                {"type": "string", "pattern": INSTRUMENT_KEY_PATTERN},
                InstrumentFields.model_json_schema(),
            ],
        }
    ),
]

RuleName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$"),
    Field(description="Rule name: 1-40 chars of a-z, 0-9, '-', '_' (it is part of every orderRef)"),
]

AccountId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{1,3}[0-9]{4,10}$"),
    Field(description="IB account id, e.g. DU1234567 (paper) or U1234567 (live)"),
]

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Price = Annotated[float, Field(gt=0, lt=1_000_000, allow_inf_nan=False)]
Fraction = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
Weight = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Percent = Annotated[float, Field(gt=0, lt=100, allow_inf_nan=False)]
Side = Literal["BUY", "SELL"]

# No named groups: the pattern is also the JSON Schema pattern, which is ECMA-262.
_DURATION_PATTERN = r"^([1-9][0-9]{0,6})(ms|s|m|h|d)$"
_DURATION_RE = re.compile(_DURATION_PATTERN)
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> object:
    """Turn ``"30s"``, ``"5m"``, ``"1h"``, ``"250ms"`` into a timedelta; leave other types for
    pydantic to reject."""
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a duration string such as 30s, 5m or 1h")
    match = _DURATION_RE.match(value)
    if match is None:
        raise ValueError(
            f"{value!r} is not a duration: write a whole number and a unit (ms, s, m, h, d), "
            "e.g. 30s or 5m"
        )
    return timedelta(seconds=int(match[1]) * _DURATION_UNITS[match[2]])


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _DURATION_PATTERN,
            "description": "A whole number and a unit: ms, s, m, h or d (e.g. 30s, 5m)",
        }
    ),
]


def _check_time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    # A region such as "America" is a directory of the time-zone database: OSError.
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as America/New_York"
        ) from exc
    return name


TimeZoneName = Annotated[str, AfterValidator(_check_time_zone)]


def _check_cron(expression: str) -> str:
    # Imported here so that importing the models stays cheap for the planner.
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(expression, timezone="UTC")
    except ValueError as exc:
        raise ValueError(
            f"{expression!r} is not a cron expression (minute hour day month day_of_week): {exc}"
        ) from exc
    return expression


CronExpression = Annotated[
    str,
    AfterValidator(_check_cron),
    Field(description="Five-field crontab: minute hour day-of-month month day-of-week"),
]


def _check_version(value: object) -> object:
    # Literal[1] alone would also accept true and 1.0; the version must be written as 1.
    if type(value) is int and value != RULE_LANGUAGE_VERSION:
        raise ValueError(
            f"version {value} is not supported: this tradectl reads rule language version "
            f"{RULE_LANGUAGE_VERSION}; write version: {RULE_LANGUAGE_VERSION}"
        )
    if type(value) is not int:
        raise ValueError(f"must be the number {RULE_LANGUAGE_VERSION} (write version: 1)")
    return value


Version = Annotated[
    Literal[1],
    BeforeValidator(_check_version),
    Field(description="Rule language version; always 1"),
]


def _check_true(value: object) -> object:
    if value is not True:
        raise ValueError("must be true (write market: true)")
    return value


def _exactly_one(model: BaseModel, fields: tuple[str, ...], where: str) -> None:
    given = [name for name in fields if getattr(model, name) is not None]
    if len(given) != 1:
        found = ", ".join(given) if given else "none"
        raise ValueError(f"{where} needs exactly one of {', '.join(fields)} (found: {found})")


# --- singleton sections --------------------------------------------------------------------


FxPolicy = Literal["block", "convert"]


class Account(StrictModel):
    id: AccountId
    live: bool = Field(
        default=False,
        description="Must be true to trade an account whose id does not start with DU (paper)",
    )
    fx: FxPolicy = Field(
        default="block",
        description="A buy in a currency the account lacks: block holds it with the reason; "
        "convert first buys the currency with an IDEALPRO FX order (docs/planning.md, "
        "Currencies)",
    )

    @property
    def is_paper(self) -> bool:
        return self.id.startswith("DU")


class Gateway(StrictModel):
    host: str = Field(default="127.0.0.1", min_length=1, max_length=253)
    port: int = Field(default=4002, ge=1, le=65535)
    client_id: int = Field(default=17, ge=0, le=2_147_483_647)
    connect_timeout: Duration = Field(default=timedelta(seconds=10))
    market_data_lines: int = Field(
        default=90,
        ge=1,
        le=10_000,
        description="Most market-data lines tradectl holds at once: streaming quotes for the "
        "watched symbols up to this, snapshots beyond. IB gives an account 100 lines by default "
        "(more with its market-data boosters); 90 leaves some for TWS and other clients",
    )
    full_refresh_every: Duration = Field(
        default=timedelta(seconds=60),
        description="The daemon keeps orders, executions and positions from IB's streams and "
        "reads them afresh in full this often (and after every reconnect, on a new trading day "
        "and whenever something is in doubt), correcting any difference it finds",
    )

    @model_validator(mode="after")
    def _check_full_refresh(self) -> Gateway:
        if not timedelta(seconds=5) <= self.full_refresh_every <= timedelta(hours=1):
            raise ValueError("full_refresh_every must be between 5s and 1h")
        return self


class Risk(StrictModel):
    max_order_value: PositiveFloat = Field(description="Per order, in account currency")
    max_position_fraction: Fraction = Field(description="Per symbol, of net liquidation")
    max_risk_per_trade_fraction: Fraction = Field(
        description="Brackets: |entry - stop| * quantity / net liquidation"
    )
    max_daily_loss_fraction: Fraction = Field(
        description="Circuit breaker: opening orders stop when today's loss (IB's daily P&L, "
        "deposits and withdrawals excluded) exceeds this fraction of the previous close's equity"
    )
    max_orders_per_minute: int = Field(default=120, ge=1, le=3000)
    allowed_symbols: list[Symbol] | None = Field(
        default=None, min_length=1, description="Optional allow-list of tradable symbols"
    )


class Rebalance(StrictModel):
    cron: CronExpression
    timezone: TimeZoneName
    window_end: Duration | None = Field(
        default=None,
        description="How long after the cron time allocation orders may still go while the "
        "allocation has not converged; default: until the close of the regular session",
    )


_CLOCK_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"

ClockTime = Annotated[
    str,
    StringConstraints(pattern=_CLOCK_PATTERN),
    Field(description="A time of day, HH:MM (24-hour)"),
]


class Blackout(StrictModel):
    """A daily window in which nothing is sent (IB's nightly server reset, docs/daemon.md)."""

    start: ClockTime
    end: ClockTime = Field(description="May be after midnight: 23:45 to 00:45 spans it")
    timezone: TimeZoneName = "America/New_York"

    @property
    def start_time(self) -> time:
        return time.fromisoformat(self.start)

    @property
    def end_time(self) -> time:
        return time.fromisoformat(self.end)


# IB's North American reset as the older published schedule gives it; the newer page says
# 00:15-01:45 (docs/daemon.md lists both).
DEFAULT_BLACKOUTS = (Blackout(start="23:45", end="00:45"),)


class TradingWindow(StrictModel):
    """When allocations trade: inside each regular session, away from the auctions."""

    after_open: Duration = Field(default=timedelta(minutes=5))
    before_close: Duration = Field(default=timedelta(minutes=10))


class ReportSchedule(StrictModel):
    """The daemon writes the day's report (`tradectl report`) at these times."""

    cron: CronExpression
    timezone: TimeZoneName = "America/New_York"
    dir: str = Field(
        default="var/reports",
        min_length=1,
        description="Where the reports go (report-YYYY-MM-DD.html); relative to the daemon's "
        "working directory, like records.dir",
    )
    format: Literal["html", "json", "text"] = "html"


class Schedule(StrictModel):
    reconcile_every: Duration = Field(default=timedelta(seconds=30))
    rebalance: Rebalance | None = None
    report: ReportSchedule | None = None
    trading_window: TradingWindow = TradingWindow()
    blackouts: list[Blackout] = Field(
        default_factory=lambda: list(DEFAULT_BLACKOUTS),
        description="Daily windows with no sends; [] turns them off",
    )

    @model_validator(mode="after")
    def _reconcile_interval_in_range(self) -> Schedule:
        if not timedelta(seconds=1) <= self.reconcile_every <= timedelta(hours=1):
            raise ValueError("reconcile_every must be between 1s and 1h")
        return self


GCS_URL = r"^gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](/[^\s]*)?$"


class Records(StrictModel):
    dir: str = Field(
        default="records",
        min_length=1,
        description="where fills are exported; a relative path is under the state directory",
    )
    gcs: Annotated[str, StringConstraints(pattern=GCS_URL)] | None = Field(
        default=None, description="gs://bucket/prefix; credentials come from the environment"
    )


ENVIRONMENT_VARIABLE = r"^[A-Za-z_][A-Za-z0-9_]*$"


class Alerts(StrictModel):
    """Push alerts (docs/observability.md). Alert target URLs carry tokens and passwords, so a
    rule file names only where they are: an environment variable or a file readable by the
    service user."""

    urls_from_env: Annotated[str, StringConstraints(pattern=ENVIRONMENT_VARIABLE)] | None = Field(
        default="TRADECTL_ALERT_URLS",
        description="environment variable holding the Apprise URLs, separated by spaces or commas",
    )
    urls_from_file: str | None = Field(
        default=None,
        min_length=1,
        description="file holding the Apprise URLs, one per line (# starts a comment)",
    )
    fills: bool = Field(default=False, description="also alert on every fill")
    disconnect_after: Duration = Field(
        default=timedelta(minutes=10),
        description="alert when the gateway stays unreachable this long (then once reconnected)",
    )
    repeat_after: Duration = Field(
        default=timedelta(hours=1),
        description="the same one-off alert (an IB rejection code for one rule) at most this often",
    )
    max_per_hour: int = Field(default=60, ge=1, le=3600)
    retries: int = Field(default=3, ge=0, le=10, description="delivery attempts after the first")

    @field_validator("urls_from_file")
    @classmethod
    def _a_path_not_a_url(cls, value: str | None) -> str | None:
        if value is not None and "://" in value:
            raise ValueError(
                "give the path of a file that holds the alert URLs, never a URL: they carry "
                "secrets and rule files are not secret"
            )
        return value

    @model_validator(mode="after")
    def _somewhere_to_look(self) -> Alerts:
        if self.urls_from_env is None and self.urls_from_file is None:
            raise ValueError("set urls_from_env or urls_from_file (or both)")
        if not timedelta(seconds=1) <= self.disconnect_after <= timedelta(days=1):
            raise ValueError("disconnect_after must be between 1s and 1d")
        if not timedelta(seconds=1) <= self.repeat_after <= timedelta(days=1):
            raise ValueError("repeat_after must be between 1s and 1d")
        return self


# --- allocations ---------------------------------------------------------------------------


class Capital(StrictModel):
    """An amount of money, either a fraction of net liquidation or a fixed amount."""

    fraction_of_nav: Fraction | None = None
    amount: PositiveFloat | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Capital:
        _exactly_one(self, ("fraction_of_nav", "amount"), "capital")
        return self


class CashBuffer(StrictModel):
    fraction_of_nav: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)] | None = None
    amount: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> CashBuffer:
        _exactly_one(self, ("fraction_of_nav", "amount"), "cash_buffer")
        return self


class Drift(StrictModel):
    absolute: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)] = Field(
        default=0.01, description="Act on a symbol when |weight - target| exceeds this"
    )


class AllocationOrder(StrictModel):
    type: Literal["limit", "market"] = "limit"
    offset_bps: Annotated[float, Field(ge=0, le=500, allow_inf_nan=False)] | None = Field(
        default=None,
        description="Limit orders: basis points through the last price (default 10)",
    )
    tif: Literal["DAY", "GTC"] = "DAY"
    outside_rth: bool = Field(
        default=False,
        description="Trade in the extended session too (sets IB's outsideRth); needs type: limit",
    )

    @model_validator(mode="after")
    def _offset_only_for_limit(self) -> AllocationOrder:
        if self.type == "market" and self.offset_bps is not None:
            raise ValueError("offset_bps applies only to type: limit")
        if self.type == "market" and self.outside_rth:
            raise ValueError("outside_rth needs type: limit (no market orders outside RTH)")
        return self

    @property
    def limit_offset_bps(self) -> float:
        return 10.0 if self.offset_bps is None else self.offset_bps


TARGETS_FILE_SUFFIXES = (".csv", ".parquet", ".json")


def _check_targets_file(path: str) -> str:
    if not path.lower().endswith(TARGETS_FILE_SUFFIXES):
        raise ValueError(
            f"{path!r}: a targets file is CSV, Parquet or JSON (name ending in .csv, .parquet "
            "or .json)"
        )
    return path


class TargetsFrom(StrictModel):
    """Targets a strategy writes to a file (docs/rules.md, "Targets from a file")."""

    file: Annotated[str, Field(min_length=1), AfterValidator(_check_targets_file)] = Field(
        description="CSV, Parquet or JSON with a symbol column and a weight or shares column; "
        "a relative path resolves against the rules directory"
    )
    max_age: Duration = Field(
        description="Older than this (by its as_of column, else the file's modification time) "
        "the file holds the allocation"
    )
    max_turnover: Fraction = Field(
        default=0.5,
        description="A new file that would turn over more than this share of the allocation "
        "is held until `tradectl accept RULE`; 1 never holds",
    )


class TargetItem(InstrumentFields):
    """One target of the list form: an instrument in its full form, and its weight."""

    weight: Weight


def _targets_form(value: object) -> str | None:
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return None


TargetWeights = Annotated[
    Annotated[
        Annotated[dict[Symbol, Weight], Field(min_length=1)],
        Tag("mapping"),
    ]
    | Annotated[Annotated[list[TargetItem], Field(min_length=1)], Tag("list")],
    Discriminator(
        _targets_form,
        custom_error_type="targets_form",
        custom_error_message="must be a mapping {SYMBOL: weight} or a list of "
        "{symbol, ..., weight}",
    ),
]


class Allocation(StrictModel):
    capital: Capital
    drift: Drift = Drift()
    min_trade_value: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 100.0
    cash_buffer: CashBuffer = CashBuffer(amount=0.0)
    order: AllocationOrder = AllocationOrder()
    targets: TargetWeights | None = Field(
        default=None,
        description="Instrument to weight, as a mapping {AAPL: 0.3} or a list of instruments "
        "with a weight [{symbol: SHOP, exchange: TSE, currency: CAD, weight: 0.1}]",
    )
    targets_from: TargetsFrom | None = None

    @model_validator(mode="after")
    def _one_source_of_targets(self) -> Allocation:
        _exactly_one(self, ("targets", "targets_from"), "an allocation")
        if isinstance(self.targets, list):
            seen: dict[str, int] = {}
            for index, item in enumerate(self.targets):
                if item.key in seen:
                    raise ValueError(
                        f"targets[{index}] names {item.key} again (also targets[{seen[item.key]}])"
                    )
                seen[item.key] = index
        return self

    @property
    def inline_targets(self) -> dict[str, float]:
        """The targets written in the rule, by instrument key; empty for a rule whose targets
        come from a file."""
        if self.targets is None:
            return {}
        if isinstance(self.targets, list):
            return {item.key: item.weight for item in self.targets}
        return dict(self.targets)

    def target_locations(self) -> dict[str, str | int]:
        """Where each inline target is written under ``targets``: its key in the mapping form,
        its index in the list form (error messages point there)."""
        if isinstance(self.targets, list):
            return {item.key: index for index, item in enumerate(self.targets)}
        return {key: key for key in self.inline_targets}


# --- brackets ------------------------------------------------------------------------------


class RiskSizedQuantity(StrictModel):
    risk_fraction: Fraction = Field(
        description="Shares = risk_fraction * NAV / |entry - stop|, rounded down to the lot"
    )


class Entry(StrictModel):
    limit: Price | None = None
    market: Annotated[Literal[True], BeforeValidator(_check_true)] | None = None
    stop: Price | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Entry:
        if self.market is not None and (self.limit is not None or self.stop is not None):
            raise ValueError("market: true takes no limit or stop")
        if self.market is None and self.limit is None:
            raise ValueError("entry needs one of {limit: P}, {market: true} or {stop: S, limit: P}")
        return self

    @property
    def kind(self) -> Literal["market", "limit", "stop_limit"]:
        if self.market:
            return "market"
        return "stop_limit" if self.stop is not None else "limit"

    @property
    def reference_price(self) -> float | None:
        """The price the entry is expected to fill at, when the rule states one."""
        if self.stop is not None:
            return self.stop
        return self.limit


class StopLoss(StrictModel):
    percent: Percent | None = None
    price: Price | None = None
    trailing_percent: Percent | None = None

    @model_validator(mode="after")
    def _one_form(self) -> StopLoss:
        _exactly_one(self, ("percent", "price", "trailing_percent"), "stop_loss")
        return self


class TakeProfit(StrictModel):
    percent: Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)] | None = None
    price: Price | None = None

    @model_validator(mode="after")
    def _one_form(self) -> TakeProfit:
        _exactly_one(self, ("percent", "price"), "take_profit")
        return self


def _quantity_form(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return "whole-shares"
    if isinstance(value, dict | RiskSizedQuantity):
        return "risk-sized"
    return None


QUANTITY_FORM_TAGS = frozenset({"whole-shares", "risk-sized"})
TARGETS_FORM_TAGS = frozenset({"mapping", "list"})

Quantity = Annotated[
    Annotated[Annotated[int, Field(gt=0, le=10_000_000)], Tag("whole-shares")]
    | Annotated[RiskSizedQuantity, Tag("risk-sized")],
    Discriminator(
        _quantity_form,
        custom_error_type="quantity_form",
        custom_error_message="must be a whole number of shares or {risk_fraction: F}",
    ),
    Field(description="Whole shares, or {risk_fraction: F} sized from the stop distance and NAV"),
]


Reenter = Annotated[
    Literal["never", "daily"],
    Field(
        description="Whether an entry that expired unfilled (tif DAY) or filled and was closed "
        "is entered again: never (default), or daily (at most once per trading day)"
    ),
]
# Fields that decide whether orders are placed, not what they look like: left out of a rule's
# generation, so changing them never modifies working orders.
ORDER_NEUTRAL_FIELDS = frozenset({"reenter"})


class Bracket(StrictModel):
    symbol: InstrumentRef
    side: Side
    quantity: Quantity
    entry: Entry
    stop_loss: StopLoss
    take_profit: TakeProfit
    tif: Literal["DAY", "GTC"] = "GTC"
    reenter: Reenter = "never"
    outside_rth: bool = Field(
        default=False,
        description="Orders may work and trigger outside regular hours (IB's outsideRth); "
        "needs a limit entry",
    )

    @model_validator(mode="after")
    def _outside_rth_needs_limit(self) -> Bracket:
        if self.outside_rth and self.entry.market:
            raise ValueError("outside_rth needs a limit entry (no market orders outside RTH)")
        return self


# --- scales --------------------------------------------------------------------------------


class Scale(StrictModel):
    symbol: InstrumentRef
    side: Side
    total_quantity: Annotated[int, Field(gt=0, le=10_000_000)]
    levels: Annotated[int, Field(ge=1, le=20)]
    start_price: Price
    step: Annotated[float, Field(gt=0, lt=1_000_000, allow_inf_nan=False)]
    tif: Literal["DAY", "GTC"] = "GTC"
    reenter: Reenter = "never"
    outside_rth: bool = Field(
        default=False, description="Levels may fill outside regular hours (IB's outsideRth)"
    )

    @model_validator(mode="after")
    def _enough_shares_per_level(self) -> Scale:
        if self.total_quantity < self.levels:
            raise ValueError(
                f"total_quantity {self.total_quantity} cannot be split over {self.levels} levels "
                "(at least one share per level)"
            )
        return self

    def level_prices(self) -> list[float]:
        """Level prices before tick rounding: each level ``step`` further from the market."""
        direction = -1 if self.side == "BUY" else 1
        return [self.start_price + direction * self.step * i for i in range(self.levels)]

    def level_quantities(self) -> list[int]:
        """Quantities per level summing exactly to ``total_quantity``; the remainder goes to the
        first levels, nearest the market."""
        base, remainder = divmod(self.total_quantity, self.levels)
        return [base + (1 if i < remainder else 0) for i in range(self.levels)]


# --- files and rule sets -------------------------------------------------------------------

RuleKind = Literal["allocations", "brackets", "scales"]
RULE_KINDS: tuple[RuleKind, ...] = ("allocations", "brackets", "scales")
SINGLETON_SECTIONS = ("account", "gateway", "risk", "schedule", "records", "alerts")


class RuleFile(StrictModel):
    """One YAML document of a rule set, as written."""

    version: Version
    account: Account | None = None
    gateway: Gateway | None = None
    risk: Risk | None = None
    schedule: Schedule | None = None
    records: Records | None = None
    alerts: Alerts | None = None
    allocations: dict[RuleName, Allocation] = Field(default_factory=dict)
    brackets: dict[RuleName, Bracket] = Field(default_factory=dict)
    scales: dict[RuleName, Scale] = Field(default_factory=dict)

    @field_validator(*SINGLETON_SECTIONS, mode="before")
    @classmethod
    def _section_not_empty(cls, value: object) -> object:
        # `risk:` with every line commented out must not silently mean "no risk section".
        if value is None:
            raise ValueError("is empty: write the section's keys or remove the section")
        return value


class RuleSet(StrictModel):
    """The merged, validated rule set the daemon acts on."""

    version: Literal[1] = 1
    account: Account
    gateway: Gateway = Gateway()
    risk: Risk
    schedule: Schedule = Schedule()
    records: Records = Records()
    # None: no push alerts. Not part of the generation while absent, so rule sets written before
    # alerts existed keep theirs.
    alerts: Alerts | None = None
    allocations: dict[RuleName, Allocation] = Field(default_factory=dict)
    brackets: dict[RuleName, Bracket] = Field(default_factory=dict)
    scales: dict[RuleName, Scale] = Field(default_factory=dict)

    _source_dir: Path | None = PrivateAttr(default=None)

    @property
    def source_dir(self) -> Path | None:
        """The rules directory this set was loaded from: relative targets files resolve here.
        Not part of the content (nor of the generation)."""
        return self._source_dir

    def with_source_dir(self, directory: Path) -> RuleSet:
        self._source_dir = directory
        return self

    def rule_names(self) -> list[str]:
        return [*self.allocations, *self.brackets, *self.scales]

    def symbols(self) -> list[str]:
        found: set[str] = set()
        for allocation in self.allocations.values():
            found.update(allocation.inline_targets)
        found.update(bracket.symbol for bracket in self.brackets.values())
        found.update(scale.symbol for scale in self.scales.values())
        return sorted(found)

    def generation(self) -> str:
        """Content hash of the whole rule set (recorded as the config generation). Sections and
        keys added later are left out while absent or at their default, so a rule set written
        before them keeps its generation. Worked out once per rule set object."""
        return _rule_set_generations(self)


def _rule_set_content_hash(rules: RuleSet) -> str:
    exclude: dict[str, Any] = {}
    if rules.alerts is None:
        exclude["alerts"] = True
    if rules.account.fx == "block":
        exclude["account"] = {"fx"}
    return _digest(rules.model_dump(mode="json", exclude=exclude))


def content_hash(model: BaseModel, exclude: frozenset[str] = frozenset()) -> str:
    """A short, stable hash of a model's content: the same rule text gives the same value on
    every machine and in every process, so it can be part of an orderRef."""
    return _digest(model.model_dump(mode="json", exclude=set(exclude)))


def _digest(content: Any) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


# Keys added to the rule language after its first release, left out of a rule's generation while
# they hold their default: upgrading tradectl must not change every rule's orderRefs (every
# working order would be modified once for nothing). Set to anything else, they change the
# generation like any other edit.
_ADDED_WITH_DEFAULT: tuple[tuple[tuple[str, ...], object], ...] = (
    (("targets_from",), None),
    (("outside_rth",), False),
    (("order", "outside_rth"), False),
)


class _HashPerObject:
    """A content hash worked out once per model object and reused while the object lives.

    A validated rule set and its rules are immutable (frozen models; an edit is a new object,
    ``model_copy`` included), and the daemon plans the same objects on every pass until a file
    changes: hashing a rule of 20,000 targets again on each pass cost 8-10 ms of ``plan()``
    (benchmarks/README.md, round six), and the rule set's hash twice per pass as much again.
    Kept by id with a weak reference: the entry goes with its object, and an id reused by a
    later object never finds another object's hash."""

    def __init__(self, content_hash: Callable[[Any], str]) -> None:
        self._content_hash = content_hash
        self._known: dict[int, tuple[weakref.ref[Any], str]] = {}

    def __call__(self, model: BaseModel) -> str:
        key = id(model)
        known = self._known.get(key)
        if known is not None and known[0]() is model:
            return known[1]
        value = self._content_hash(model)
        self._known[key] = (weakref.ref(model, partial(self._forget, key)), value)
        return value

    def __len__(self) -> int:
        return len(self._known)

    def __contains__(self, model: object) -> bool:
        known = self._known.get(id(model))
        return known is not None and known[0]() is model

    def _forget(self, key: int, gone: weakref.ref[Any]) -> None:
        known = self._known.get(key)
        if known is not None and known[0] is gone:
            del self._known[key]


def rule_generation(rule: Allocation | Bracket | Scale) -> str:
    """The generation of one rule: part of its orderRefs, changes whenever its orders do.
    Worked out once per rule object."""
    return _rule_generations(rule)


def _rule_content_hash(rule: Allocation | Bracket | Scale) -> str:
    content = rule.model_dump(mode="json", exclude=set(ORDER_NEUTRAL_FIELDS))
    if isinstance(rule, Allocation) and isinstance(rule.targets, list):
        # The list form is another spelling of the mapping: the same targets, the same orders.
        content["targets"] = rule.inline_targets
    for path, default in _ADDED_WITH_DEFAULT:
        *parents, key = path
        holder: Any = content
        for parent in parents:
            holder = holder.get(parent) if isinstance(holder, dict) else None
        if isinstance(holder, dict) and key in holder and holder[key] == default:
            del holder[key]
    return _digest(content)


_rule_generations = _HashPerObject(_rule_content_hash)
_rule_set_generations = _HashPerObject(_rule_set_content_hash)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of one rule file (what editors validate as you type)."""
    schema = RuleFile.model_json_schema()
    _close_pattern_properties(schema)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "tradectl rule file (version 1)"
    return schema


def _close_pattern_properties(node: object) -> None:
    """Mappings keyed by tickers or rule names: a key that misses the pattern is an error in the
    models, so it must be one in the schema too (JSON Schema would let it through)."""
    if isinstance(node, dict):
        if "patternProperties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close_pattern_properties(value)
    elif isinstance(node, list):
        for value in node:
            _close_pattern_properties(value)
