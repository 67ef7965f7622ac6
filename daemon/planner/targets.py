"""Targets from a file (``targets_from``): may this pass trade on the file, or is it held?

Pure: the runtime reads the file and the journaled baseline and passes them in; "now" comes
from the caller. The safety rules (docs/rules.md, "Targets from a file"):

* no valid version of the file → held (``invalid``);
* older than ``max_age`` by its ``as_of`` column, else its modification time → held (``stale``);
  an ``as_of`` in the future beyond ``FUTURE_TOLERANCE`` is held as well (a clock or strategy
  bug, not a fresh signal);
* a file whose targets differ from the last accepted ones and would turn over more than
  ``max_turnover`` of the allocation → held (``held``) until `tradectl accept RULE`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from tradectl.planner.domain import (
    AcceptedTargets,
    FileTargets,
    Quote,
    TargetsDecision,
    TargetsMode,
    TargetsSource,
)
from tradectl.schemas.models import TargetsFrom

FUTURE_TOLERANCE = timedelta(minutes=5)


def decide_targets(
    rule: str,
    targets_from: TargetsFrom,
    source: TargetsSource | None,
    accepted: AcceptedTargets | None,
    quotes: Mapping[str, Quote],
    now: datetime,
) -> TargetsDecision:
    if source is None or source.targets is None:
        why = "not read" if source is None else (source.problem or "not read")
        return TargetsDecision(rule, "invalid", f"no valid targets file: {why}")
    targets = source.targets
    suffix = (
        "" if source.problem is None else f" (the file as it is now is not used: {source.problem})"
    )
    age = _utc(now) - _utc(targets.as_of)
    stamp = f"{targets.as_of_source} {targets.as_of.astimezone(UTC).isoformat(timespec='seconds')}"
    if age > targets_from.max_age:
        return TargetsDecision(
            rule,
            "stale",
            f"targets file {targets.path} is stale: {stamp} is {_duration(age)} old, more than "
            f"max_age {_duration(targets_from.max_age)}; holding (nothing bought or sold) until "
            f"the strategy writes a fresh file{suffix}",
            targets,
        )
    if -age > FUTURE_TOLERANCE:
        return TargetsDecision(
            rule,
            "stale",
            f"targets file {targets.path}: {stamp} is {_duration(-age)} in the future; holding "
            f"until the file's time is plausible{suffix}",
            targets,
        )
    if accepted is not None and accepted.content_hash == targets.content_hash:
        return TargetsDecision(
            rule, "trading", f"trading on {targets.path} ({stamp}){suffix}", targets
        )
    measured = turnover(accepted, targets, quotes)
    if isinstance(measured, str):
        return TargetsDecision(
            rule,
            "held",
            f"new targets file {targets.path}: cannot measure its turnover ({measured}); held "
            f"until `tradectl accept {rule}`{suffix}",
            targets,
        )
    baseline = "the last accepted targets" if accepted is not None else "nothing (first file)"
    if measured > targets_from.max_turnover + 1e-9:
        return TargetsDecision(
            rule,
            "held",
            f"new targets file {targets.path} would turn over {measured:.0%} of the allocation "
            f"(from {baseline}), more than max_turnover {targets_from.max_turnover:.0%}: held "
            f"until `tradectl accept {rule}` or a higher max_turnover{suffix}",
            targets,
            measured,
        )
    return TargetsDecision(
        rule,
        "trading",
        f"trading on {targets.path} ({stamp}); turnover {measured:.0%} from {baseline} is "
        f"within max_turnover {targets_from.max_turnover:.0%}{suffix}",
        targets,
        measured,
    )


def turnover(
    accepted: AcceptedTargets | None, new: FileTargets, quotes: Mapping[str, Quote]
) -> float | str:
    """The share of the allocation a switch from ``accepted`` to ``new`` trades: the larger of
    what is bought and what is sold, over the larger of the two books (0 = nothing changes,
    1 = the whole book, whether bought from nothing, sold off or rotated). A symbol missing
    from one side counts as 0 there. Shares are valued at the last price; without one for a
    symbol the turnover cannot be measured and the text says why."""
    if accepted is not None and accepted.mode != new.mode:
        return 1.0
    old = {} if accepted is None else dict(accepted.targets)
    values_old = _values(old, new.mode, quotes)
    values_new = _values(dict(new.targets), new.mode, quotes)
    if isinstance(values_old, str):
        return values_old
    if isinstance(values_new, str):
        return values_new
    gross = max(sum(values_old.values()), sum(values_new.values()))
    if gross <= 0:
        return 0.0
    symbols = set(values_old) | set(values_new)
    bought = sum(max(0.0, values_new.get(s, 0.0) - values_old.get(s, 0.0)) for s in symbols)
    sold = sum(max(0.0, values_old.get(s, 0.0) - values_new.get(s, 0.0)) for s in symbols)
    return max(bought, sold) / gross


def _values(
    targets: dict[str, float], mode: TargetsMode, quotes: Mapping[str, Quote]
) -> dict[str, float] | str:
    if mode == "weight":
        return targets
    values: dict[str, float] = {}
    for symbol, quantity in targets.items():
        if quantity == 0:
            values[symbol] = 0.0
            continue
        quote = quotes.get(symbol)
        if quote is None or not quote.last > 0:
            return f"no price for {symbol}"
        values[symbol] = quantity * quote.last
    return values


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds >= 3600:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"
