"""The wire log: one JSON line per client message the gateway received.

Each line is ``{"time": ISO-8601 UTC, "client_id": int | null, "msg": name,
"fields": {...}}`` plus ``"dropped": true`` when pacing (error 100) discarded
the message. ``time`` is the host's clock; ``sim_time`` (the gateway's clock,
see daemon.sim.clock) and ``market`` (the session phase then: closed,
pre_market, regular, after_hours) say when the message arrived in market time.
Lines are flushed one by one so that a reader tailing the file, or a crash of
either side, never misses a message that reached the socket.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any


def _jsonable(value: Any) -> Any:
    summary = getattr(value, "summary", None)
    if callable(summary):
        return summary()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


class WireLog:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fh: IO[str] | None = self.path.open("a", encoding="utf-8")

    def write(
        self,
        client_id: int | None,
        msg: str,
        fields: dict[str, Any],
        *,
        dropped: bool = False,
        sim_time: float | None = None,
        market: str | None = None,
    ) -> None:
        if self._fh is None:
            return
        record: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="microseconds"),
        }
        if sim_time is not None:
            record["sim_time"] = datetime.fromtimestamp(sim_time, UTC).isoformat(
                timespec="microseconds"
            )
        if market is not None:
            record["market"] = market
        record |= {
            "client_id": client_id,
            "msg": msg,
            "fields": fields,
        }
        if dropped:
            record["dropped"] = True
        self._fh.write(json.dumps(record, default=_jsonable) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def read_wire_log(path: str | Path) -> list[dict[str, Any]]:
    """Parse a wire log (for tests and tooling)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]
