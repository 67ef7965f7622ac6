"""Quotes from streaming market data, within the account's market-data line limit.

IB gives an account a number of simultaneous market-data lines (100 by default) and refuses a
subscription beyond them with error 101, "Max number of tickers has been reached". The daemon
keeps a streaming subscription (reqMktData, not a snapshot) for each symbol it watches, so a
pass reads quotes that are already there instead of asking for them, and falls back to snapshots
for the symbols that do not fit:

* symbols are ranked: those the rules name first, then those only held, each group by name;
* when they all fit in ``lines``, every one streams; otherwise the first ``lines - reserve``
  stream and the rest are snapshotted in batches of at most ``reserve`` lines, so that the
  streams and a batch of snapshots together never ask for more than ``lines`` (a snapshot holds
  a line while it is open);
* a subscription for a symbol that is no longer watched, or that no longer ranks within the
  streaming capacity, is cancelled;
* a new subscription is read once its first price and its halt status (tick 49) have arrived,
  an error ends it, or ``first_quote_wait`` passes; a refused one (101 when another client
  holds lines, 354 without a market-data subscription) is dropped and that symbol snapshotted;
* IB's 1101 ("connectivity restored, data lost") ends every subscription on IB's side, and a
  disconnect ends them all: both are renewed on the next read.

Only the daemon streams (it reads quotes on every pass). A one-shot command (``apply``,
``plan``) reads once, so it takes snapshots in batches of ``lines`` and leaves the lines of a
daemon running beside it alone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from ib_insync import IB, Contract, Ticker

from tradectl.ib_codes import LINK_RESTORED_DATA_LOST, is_informational

# How long the first quote of a new subscription may take; IB ends a snapshot within 11 s.
FIRST_QUOTE_WAIT_SECONDS = 11.0


def snapshot_reserve(lines: int) -> int:
    """Lines kept for snapshots when not every watched symbol can stream: a tenth, at least 1."""
    return max(1, lines // 10)


@dataclass
class _Stream:
    req_id: int
    contract: Contract
    ticker: Ticker


class QuoteLines:
    """The streaming subscriptions of one adapter. ``lines`` is the most it (streams and open
    snapshots together) asks IB for at any moment."""

    def __init__(
        self,
        ib: IB,
        lines: int,
        *,
        stream: bool,
        first_quote_wait: float = FIRST_QUOTE_WAIT_SECONDS,
    ) -> None:
        self.ib = ib
        self.lines = max(1, lines)
        self.stream = stream
        self.first_quote_wait = first_quote_wait
        self._streams: dict[str, _Stream] = {}
        self._refused: set[int] = set()
        ib.errorEvent += self._on_error

    @property
    def streaming(self) -> frozenset[str]:
        return frozenset(self._streams)

    def _on_error(self, req_id: int, code: int, text: str, contract: Contract | None) -> None:
        if code == LINK_RESTORED_DATA_LOST:
            self._refused.update(stream.req_id for stream in self._streams.values())
        elif not is_informational(code) and any(
            stream.req_id == req_id for stream in self._streams.values()
        ):
            self._refused.add(req_id)

    def read(
        self, contracts: Mapping[str, Contract], preferred: Collection[str]
    ) -> dict[str, Ticker]:
        """A ticker for each symbol of ``contracts`` that got one: streamed where the lines
        allow, snapshotted beyond."""
        ranked = sorted(contracts, key=lambda symbol: (symbol not in preferred, symbol))
        self._forget_ended()
        if not self.stream:
            capacity = 0
        elif len(ranked) <= self.lines:
            capacity = len(ranked)
        else:
            capacity = self.lines - snapshot_reserve(self.lines)
        streamed = ranked[:capacity]
        keep = set(streamed)
        for symbol in [symbol for symbol in self._streams if symbol not in keep]:
            self._cancel(symbol)
        fresh = [symbol for symbol in streamed if symbol not in self._streams]
        for symbol in fresh:
            contract = contracts[symbol]
            ticker = self.ib.reqMktData(contract, "", False, False)
            req_id = self.ib.wrapper.ticker2ReqId["mktData"].get(ticker, 0)
            self._streams[symbol] = _Stream(req_id, contract, ticker)
        self._await_first_quotes(fresh)
        tickers: dict[str, Ticker] = {}
        for symbol in streamed:
            stream = self._streams.get(symbol)
            if stream is not None and stream.req_id not in self._refused:
                tickers[symbol] = stream.ticker
        self._forget_ended()
        rest = [symbol for symbol in ranked if symbol not in tickers]
        batch_size = max(1, self.lines - len(self._streams))
        for start in range(0, len(rest), batch_size):
            batch = rest[start : start + batch_size]
            answered: list[Ticker] = self.ib.reqTickers(*(contracts[symbol] for symbol in batch))
            tickers.update(zip(batch, answered, strict=True))
        return tickers

    def close(self) -> None:
        """Cancel every subscription (a connected adapter that stops watching)."""
        for symbol in list(self._streams):
            self._cancel(symbol)

    def _await_first_quotes(self, symbols: Sequence[str]) -> None:
        waiting = [self._streams[symbol] for symbol in symbols]
        deadline = time.monotonic() + self.first_quote_wait
        while waiting:
            waiting = [stream for stream in waiting if not self._answered(stream)]
            remaining = deadline - time.monotonic()
            if not waiting or remaining <= 0:
                return
            self.ib.waitOnUpdate(timeout=min(remaining, 0.25))

    def _answered(self, stream: _Stream) -> bool:
        if stream.req_id in self._refused:
            return True
        ticker = stream.ticker
        priced = _known(ticker.last) or (_known(ticker.bid) and _known(ticker.ask))
        return priced and not math.isnan(ticker.halted)

    def _forget_ended(self) -> None:
        """Drop subscriptions IB no longer serves: refused ones, those lost with a 1101, and all
        of them after a disconnect (ib_insync forgets its tickers then)."""
        live = self.ib.wrapper.ticker2ReqId["mktData"]
        for symbol, stream in list(self._streams.items()):
            subscribed = live.get(stream.ticker) == stream.req_id
            if subscribed and stream.req_id not in self._refused:
                continue
            del self._streams[symbol]
            self._refused.discard(stream.req_id)
            if subscribed:
                # No cancel: IB holds no such subscription; only ib_insync's record ends.
                self.ib.wrapper.endTicker(stream.ticker, "mktData")

    def _cancel(self, symbol: str) -> None:
        stream = self._streams.pop(symbol)
        self.ib.cancelMktData(stream.contract)


def _known(value: float) -> bool:
    return not math.isnan(value) and value > 0
