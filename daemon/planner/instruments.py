"""Resolution of a rule's instrument against the contracts IB returned (docs/rules.md,
"Instruments"): exactly one contract, or an error naming the candidates. Never the first match.

Pure: the IB adapter turns IB's contract details into ``ContractCandidate`` and calls
``resolve``; ``validate --online``, ``plan`` and ``doctor`` show its errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tradectl.schemas.models import SHORTHAND_EXCHANGE, Instrument

# ETFs are stocks to IB (secType STK); nothing else is an instrument of the rule language.
STOCK_SEC_TYPE = "STK"


@dataclass(frozen=True)
class ContractCandidate:
    """One contract of IB's answer to a contract-details request."""

    con_id: int
    symbol: str
    sec_type: str
    exchange: str
    primary_exchange: str
    currency: str
    description: str = ""
    min_tick: float = 0.01
    lot_size: int = 1
    valid_exchanges: tuple[str, ...] = ()
    market_rule_ids: tuple[int, ...] = ()

    def describe(self) -> str:
        listing = self.primary_exchange or self.exchange
        name = f" {self.description}" if self.description else ""
        return f"conId {self.con_id} {self.symbol} on {listing} in {self.currency}{name}"

    def market_rule_for(self, exchange: str) -> int | None:
        """IB's market rule (price increments) on ``exchange``: marketRuleIds lists one rule per
        entry of validExchanges, in the same order."""
        if len(self.market_rule_ids) != len(self.valid_exchanges):
            return None
        for listed, rule in zip(self.valid_exchanges, self.market_rule_ids, strict=True):
            if listed == exchange:
                return rule
        return None


@dataclass(frozen=True)
class ResolvedInstrument:
    """The one contract an instrument key names, and where its orders go."""

    key: str
    con_id: int
    symbol: str
    exchange: str
    primary_exchange: str
    currency: str
    min_tick: float
    lot_size: int
    market_rule_id: int | None = None

    def describe(self) -> str:
        return (
            f"{self.key}: conId {self.con_id} {self.symbol} via {self.exchange} "
            f"(primary {self.primary_exchange or 'not reported'}) in {self.currency}"
        )


@dataclass(frozen=True)
class UnresolvedInstrument:
    """An instrument that names no contract, or several: nothing is traded for it."""

    key: str
    problem: str
    candidates: tuple[ContractCandidate, ...]

    def describe(self) -> str:
        listed = "; ".join(candidate.describe() for candidate in self.candidates)
        return f"{self.key}: {self.problem}" + (f": {listed}" if listed else "")


Resolution = ResolvedInstrument | UnresolvedInstrument


def resolve(instrument: Instrument, answers: Sequence[ContractCandidate]) -> Resolution:
    """The contract ``instrument`` names among ``answers``. ``answers`` may be wider than the
    instrument (every listing of its symbol): what does not match is left out, and named as a
    candidate when nothing matches."""
    matching = _distinct(answer for answer in answers if _matches(instrument, answer))
    if len(matching) == 1:
        return _resolved(instrument, matching[0])
    if matching:
        return UnresolvedInstrument(
            instrument.key,
            f"ambiguous: {len(matching)} contracts match {instrument.describe()}; name one "
            "by primary_exchange, currency or con_id",
            tuple(matching),
        )
    others = _distinct(answer for answer in answers if answer.sec_type == STOCK_SEC_TYPE)
    problem = f"IB has no stock {instrument.describe()}"
    if others:
        problem += "; IB lists instead (write the one you mean in the full form)"
    return UnresolvedInstrument(instrument.key, problem, tuple(others))


def _matches(instrument: Instrument, answer: ContractCandidate) -> bool:
    if answer.sec_type != STOCK_SEC_TYPE:
        return False
    if instrument.con_id is not None:
        return answer.con_id == instrument.con_id
    if answer.symbol != instrument.symbol or answer.currency != instrument.currency:
        return False
    if instrument.primary_exchange is not None and instrument.primary_exchange not in (
        answer.primary_exchange,
        answer.exchange,
    ):
        return False
    return instrument.exchange in (answer.exchange, answer.primary_exchange) or (
        instrument.exchange in answer.valid_exchanges
    )


def _distinct(answers: Iterable[ContractCandidate]) -> list[ContractCandidate]:
    by_con_id: dict[int, ContractCandidate] = {}
    for answer in answers:
        by_con_id.setdefault(answer.con_id, answer)
    return sorted(by_con_id.values(), key=lambda answer: answer.con_id)


def _resolved(instrument: Instrument, contract: ContractCandidate) -> ResolvedInstrument:
    if instrument.con_id is not None:
        # Named by conId alone: routed SMART where IB allows it, else to its own exchange.
        smart = SHORTHAND_EXCHANGE in contract.valid_exchanges or (
            contract.exchange == SHORTHAND_EXCHANGE
        )
        exchange = SHORTHAND_EXCHANGE if smart else contract.exchange
    else:
        exchange = instrument.exchange
    return ResolvedInstrument(
        key=instrument.key,
        con_id=contract.con_id,
        symbol=contract.symbol,
        exchange=exchange,
        primary_exchange=contract.primary_exchange or contract.exchange,
        currency=contract.currency,
        min_tick=contract.min_tick,
        lot_size=contract.lot_size,
        market_rule_id=contract.market_rule_for(exchange),
    )
