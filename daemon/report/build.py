"""Gather a report from the journal: per rule and per day, as plain data (rendered by
``tradectl.report.render``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from tradectl.journal import AccountSample, Journal, JournaledIntent
from tradectl.planner.breaker import nav_floor
from tradectl.planner.legs import parse_order_ref
from tradectl.report.pnl import Fill, Realization, realize
from tradectl.timezones import TRADING_TIME_ZONE, trading_day

MANUAL = "(manual)"


@dataclass(frozen=True)
class RuleLine:
    rule: str
    fills: int
    bought: float
    sold: float
    realized: float
    commissions: float
    unmatched_shares: float
    submitted: int
    modified: int
    cancelled: int
    executions: int

    @property
    def order_efficiency(self) -> float:
        return (self.submitted + self.modified + self.cancelled) / (self.executions + 1)


@dataclass(frozen=True)
class DayAccount:
    day: str
    nav_open: float
    nav_close: float
    daily_pnl: float
    max_daily_loss_fraction: float
    breaker_floor: float
    breaker_headroom: float

    @property
    def headroom_fraction(self) -> float:
        return self.breaker_headroom / self.nav_open if self.nav_open else 0.0


@dataclass(frozen=True)
class WeightLine:
    rule: str
    symbol: str
    weight: float
    target: float
    drift: float
    status: str

    @property
    def outside_band(self) -> bool:
        return abs(self.weight - self.target) > self.drift + 1e-12


@dataclass(frozen=True)
class OrderLine:
    sent_at: str
    rule: str
    action: str
    symbol: str
    side: str
    quantity: float
    order_type: str
    limit: float | None
    state: str
    order_id: int | None
    filled: float


@dataclass(frozen=True)
class FillLine:
    time: str
    rule: str
    symbol: str
    side: str
    shares: float
    price: float
    commission: float | None
    realized: float | None


@dataclass
class Report:
    start: str
    end: str
    generated_at: str
    rules: list[RuleLine] = field(default_factory=list)
    days: list[DayAccount] = field(default_factory=list)
    weights: list[WeightLine] = field(default_factory=list)
    orders: list[OrderLine] = field(default_factory=list)
    fills: list[FillLine] = field(default_factory=list)
    nav_series: list[tuple[str, float]] = field(default_factory=list)
    price_series: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rules"] = [
            {**asdict(line), "order_efficiency": line.order_efficiency} for line in self.rules
        ]
        data["days"] = [
            {**asdict(day), "headroom_fraction": day.headroom_fraction} for day in self.days
        ]
        data["weights"] = [
            {**asdict(line), "outside_band": line.outside_band} for line in self.weights
        ]
        return data


def day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """Trading days run midnight to midnight New York time."""
    start = datetime.combine(first, datetime.min.time(), tzinfo=TRADING_TIME_ZONE)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=TRADING_TIME_ZONE)
    return start, end


def build_report(journal: Journal, first: date, last: date, now: datetime) -> Report:
    start, end = day_bounds(first, last)
    report = Report(first.isoformat(), last.isoformat(), now.isoformat(timespec="seconds"))
    every_fill = [
        Fill(
            exec_id=execution.exec_id,
            time=execution.time,
            symbol=execution.symbol,
            side=execution.side,
            shares=execution.shares,
            price=execution.price,
            commission=journal.commission(execution.exec_id),
            rule=_rule_of(execution.order_ref),
        )
        for execution in journal.executions()
        if execution.time < end
    ]
    realizations = [r for r in realize(every_fill) if r.fill.time >= start]
    intents = journal.intents_sent_between(start, end)
    report.rules = _rule_lines(realizations, intents)
    report.fills = [
        FillLine(
            time=r.fill.time.isoformat(timespec="seconds"),
            rule=r.fill.rule,
            symbol=r.fill.symbol,
            side=r.fill.side,
            shares=r.fill.shares,
            price=r.fill.price,
            commission=r.fill.commission,
            realized=r.realized,
        )
        for r in realizations
    ]
    report.orders = [_order_line(intent) for intent in intents]
    samples = journal.account_samples(start, end)
    report.days = _days(samples)
    report.nav_series = [(s.at.isoformat(timespec="seconds"), s.net_liquidation) for s in samples]
    report.price_series = _price_series(samples)
    if samples:
        report.weights = _weights(samples[-1])
    else:
        report.notes.append(
            "no account samples in the journal for these days (the daemon or apply records one "
            "per pass): NAV, breaker headroom and weights are not shown"
        )
    missing = sum(1 for r in realizations if r.fill.commission is None)
    if missing:
        report.notes.append(f"{missing} fill(s) have no commission report yet: counted as 0")
    unmatched = sum(r.unmatched for r in realizations)
    if unmatched:
        report.notes.append(
            f"{unmatched:g} share(s) were sold without a journaled buy: no realized P&L for them"
        )
    return report


def _rule_of(order_ref: str | None) -> str:
    parsed = parse_order_ref(order_ref)
    return MANUAL if parsed is None else parsed.rule


def _rule_lines(realizations: list[Realization], intents: list[JournaledIntent]) -> list[RuleLine]:
    rules = sorted({r.fill.rule for r in realizations} | {i.rule for i in intents})
    lines = []
    for rule in rules:
        own = [r for r in realizations if r.fill.rule == rule]
        sent = [i for i in intents if i.rule == rule]
        lines.append(
            RuleLine(
                rule=rule,
                fills=len(own),
                bought=sum(r.fill.value for r in own if r.fill.side == "BUY"),
                sold=sum(r.fill.value for r in own if r.fill.side != "BUY"),
                realized=sum(r.realized or 0.0 for r in own),
                commissions=sum(r.fill.commission or 0.0 for r in own),
                unmatched_shares=sum(r.unmatched for r in own),
                submitted=sum(1 for i in sent if i.action == "place"),
                modified=sum(1 for i in sent if i.action == "modify"),
                cancelled=sum(1 for i in sent if i.action == "cancel"),
                executions=0 if rule == MANUAL else len(own),
            )
        )
    return lines


def _order_line(intent: JournaledIntent) -> OrderLine:
    fields = intent.fields
    sent = intent.sent_at or intent.created_at
    return OrderLine(
        sent_at=sent.isoformat(timespec="seconds"),
        rule=intent.rule,
        action=intent.action,
        symbol=intent.symbol,
        side=str(fields.get("action", "")),
        quantity=float(fields.get("quantity", intent.quantity) or 0.0),
        order_type=str(fields.get("order_type", "")),
        limit=fields.get("limit_price"),
        state=intent.state,
        order_id=intent.order_id,
        filled=intent.filled,
    )


def _days(samples: list[AccountSample]) -> list[DayAccount]:
    by_day: dict[str, list[AccountSample]] = {}
    for sample in samples:
        by_day.setdefault(trading_day(sample.at).isoformat(), []).append(sample)
    days = []
    for day, own in sorted(by_day.items()):
        first, last = own[0], own[-1]
        nav_open = first.day_start_nav
        limit = float(last.detail.get("max_daily_loss_fraction", 0.0))
        floor = nav_floor(nav_open, limit)
        days.append(
            DayAccount(
                day=day,
                nav_open=nav_open,
                nav_close=last.net_liquidation,
                daily_pnl=last.net_liquidation - nav_open,
                max_daily_loss_fraction=limit,
                breaker_floor=floor,
                breaker_headroom=last.net_liquidation - floor,
            )
        )
    return days


def _price_series(samples: list[AccountSample]) -> dict[str, list[tuple[str, float]]]:
    series: dict[str, list[tuple[str, float]]] = {}
    for sample in samples:
        for symbol, price in sample.detail.get("prices", {}).items():
            series.setdefault(symbol, []).append((sample.at.isoformat(timespec="seconds"), price))
    return series


def _weights(sample: AccountSample) -> list[WeightLine]:
    positions: dict[str, float] = sample.detail.get("positions", {})
    prices: dict[str, float] = sample.detail.get("prices", {})
    lines = []
    for rule, allocation in sorted(sample.detail.get("allocations", {}).items()):
        capital = float(allocation["capital"]) or 1.0
        for symbol, target in sorted(allocation["targets"].items()):
            price = prices.get(symbol, 0.0)
            target_weight = target if allocation["mode"] == "weight" else target * price / capital
            lines.append(
                WeightLine(
                    rule=rule,
                    symbol=symbol,
                    weight=positions.get(symbol, 0.0) * price / capital,
                    target=target_weight,
                    drift=float(allocation["drift"]),
                    status=str(allocation["status"]),
                )
            )
    return lines
