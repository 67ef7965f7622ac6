"""Shared builders for the simulator tests."""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from tradectl.sim import SimThread
from tradectl.sim.protocol import (
    API_PREFIX,
    ContractFields,
    Field,
    FrameReader,
    OrderRequest,
    encode_message,
    split_fields,
)
from tradectl.sim.state import SimState


def small_state(**overrides: Any) -> SimState:
    """Two round-priced symbols, 100k cash: easy arithmetic in assertions."""
    data: dict[str, Any] = {
        "account": {"id": "DU0000001", "cash": 100_000},
        "symbols": {
            "AAPL": {"price": 100.0, "con_id": 265598},
            "MSFT": {"price": 200.0, "con_id": 272093},
            "LOT": {"price": 10.0, "lot_size": 100},
        },
    }
    for key, value in overrides.items():
        data[key] = value
    return SimState.from_dict(data)


def world(**changes: Any) -> SimState:
    """``SimState.world()`` (the default state, listings outside the US and the currency
    pairs) with top-level sections replaced."""
    data = SimState.world().model_dump(mode="json")
    data.update(changes)
    return SimState.from_dict(data)


def order(
    order_id: int,
    action: str = "BUY",
    quantity: float = 10,
    order_type: str = "MKT",
    *,
    symbol: str = "AAPL",
    lmt: float | None = None,
    aux: float | None = None,
    trailing_percent: float | None = None,
    parent_id: int = 0,
    transmit: bool = True,
    oca_group: str = "",
    oca_type: int = 0,
    tif: str = "DAY",
    order_ref: str = "",
    contract: ContractFields | None = None,
    account: str = "",
) -> OrderRequest:
    """``contract`` names another listing than the US stock ``symbol``."""
    return OrderRequest(
        order_id=order_id,
        contract=contract
        or ContractFields(symbol=symbol, sec_type="STK", exchange="SMART", currency="USD"),
        action=action,
        total_quantity=float(quantity),
        order_type=order_type,
        lmt_price=lmt,
        aux_price=aux,
        tif=tif,
        oca_group=oca_group,
        account=account,
        order_ref=order_ref,
        transmit=transmit,
        parent_id=parent_id,
        outside_rth=False,
        oca_type=oca_type,
        trail_stop_price=None,
        trailing_percent=trailing_percent,
    )


def wait_for(
    predicate: Callable[[], bool], pump: Callable[[float], Any], timeout: float = 5.0
) -> None:
    """Pump the client's event loop until ``predicate`` holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("condition not met within timeout")
        pump(min(remaining, 0.2))


class RawClient:
    """A bare TWS API socket client, for tests that must control every byte sent."""

    def __init__(self, host: str, port: int, client_id: int | None, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.frames = FrameReader()
        self.inbox: list[list[str]] = []  # received, not yet returned by read_until
        self.received: list[list[str]] = []  # everything received
        version = b"v157..176"
        self.sock.sendall(API_PREFIX + struct.pack(">I", len(version)) + version)
        self.server_version = int(self.read_until(lambda msg: True)[0])
        if client_id is not None:
            self.send(71, 2, client_id, "")  # startApi
            self.read_until(lambda msg: msg[0] == "9")  # nextValidId ends the start-up burst

    def send(self, *fields: Field) -> None:
        self.sock.sendall(encode_message(fields))

    def send_many(self, messages: list[tuple[Field, ...]]) -> None:
        self.sock.sendall(b"".join(encode_message(m) for m in messages))

    def read_until(self, predicate: Callable[[list[str]], bool], timeout: float = 5.0) -> list[str]:
        """Read messages into ``inbox`` until one satisfies ``predicate``; return it."""
        deadline = time.monotonic() + timeout
        while True:
            for i, msg in enumerate(self.inbox):
                if predicate(msg):
                    del self.inbox[: i + 1]
                    return msg
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("expected message not received")
            self.sock.settimeout(remaining)
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("server closed the connection")
            messages = [split_fields(p) for p in self.frames.feed(data)]
            self.inbox += messages
            self.received += messages

    def close(self) -> None:
        self.sock.close()


@dataclass
class Client:
    """One connected client of either library, with its own contract classes."""

    lib: ModuleType
    ib: Any
    errors: list[tuple[int, int, str]]

    def until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        def pump(seconds: float) -> None:
            with contextlib.suppress(ConnectionError):
                self.ib.waitOnUpdate(timeout=seconds)

        wait_for(predicate, pump, timeout)

    def stock(self, symbol: str = "AAPL") -> Any:
        [contract] = self.ib.qualifyContracts(self.lib.Stock(symbol, "SMART", "USD"))
        return contract

    def codes(self) -> list[int]:
        return [code for _, code, _ in self.errors]


def connect(lib: ModuleType, sim: SimThread, client_id: int) -> Client:
    ib = lib.IB()
    ib.connect(sim.host, sim.port, clientId=client_id, timeout=10)
    errors: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append((req_id, code, msg))
    return Client(lib, ib, errors)
