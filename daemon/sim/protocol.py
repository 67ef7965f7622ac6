"""TWS API socket protocol: framing, field encoding and request decoding.

After the ``API\\0`` prefix and a version handshake, every message in either
direction is a 4-byte big-endian length followed by NUL-terminated fields.
The layouts here follow what ib_insync 0.9.86 and ib_async 2.x read and write
at :data:`SERVER_VERSION`; the simulator never imports either library.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

# 176 is the newest version both ib_insync 0.9.86 (max 176) and ib_async 2.x
# (157..178) speak; ib_async only changes the order layouts from 177 on.
SERVER_VERSION = 176
MIN_CLIENT_VERSION = 157
API_PREFIX = b"API\0"
UNSET_DOUBLE = 1.7976931348623157e308
UNSET_INTEGER = 2**31 - 1
MAX_MESSAGE_BYTES = 16 * 1024 * 1024

Field = str | int | float | bool | None

# Incoming (client to server) message ids.
REQUEST_NAMES: dict[int, str] = {
    1: "reqMktData",
    2: "cancelMktData",
    3: "placeOrder",
    4: "cancelOrder",
    5: "reqOpenOrders",
    6: "reqAccountUpdates",
    7: "reqExecutions",
    8: "reqIds",
    9: "reqContractDetails",
    10: "reqMktDepth",
    11: "cancelMktDepth",
    12: "reqNewsBulletins",
    13: "cancelNewsBulletins",
    14: "setServerLogLevel",
    15: "reqAutoOpenOrders",
    16: "reqAllOpenOrders",
    17: "reqManagedAccts",
    20: "reqHistoricalData",
    22: "reqScannerSubscription",
    25: "cancelHistoricalData",
    49: "reqCurrentTime",
    50: "reqRealTimeBars",
    52: "reqFundamentalData",
    58: "reqGlobalCancel",
    59: "reqMarketDataType",
    61: "reqPositions",
    62: "reqAccountSummary",
    63: "cancelAccountSummary",
    64: "cancelPositions",
    71: "startApi",
    74: "reqPositionsMulti",
    75: "cancelPositionsMulti",
    76: "reqAccountUpdatesMulti",
    77: "cancelAccountUpdatesMulti",
    78: "reqSecDefOptParams",
    81: "reqMatchingSymbols",
    87: "reqHeadTimeStamp",
    90: "cancelHeadTimeStamp",
    91: "reqMarketRule",
    92: "reqPnL",
    93: "cancelPnL",
    94: "reqPnLSingle",
    95: "cancelPnLSingle",
    96: "reqHistoricalTicks",
    97: "reqTickByTickData",
    99: "reqCompletedOrders",
}

# Requests the simulator does not model, with the position of their reqId after
# the message id, so that they can be answered with an error instead of hanging.
UNSUPPORTED_REQ_ID_INDEX: dict[int, int] = {
    10: 1,
    22: 0,
    50: 1,
    52: 1,
    74: 1,
    78: 0,
    81: 0,
    96: 0,
    97: 0,
}


class Out:
    """Outgoing (server to client) message ids."""

    TICK_PRICE = 1
    TICK_SIZE = 2
    ORDER_STATUS = 3
    ERROR = 4
    OPEN_ORDER = 5
    ACCT_VALUE = 6
    PORTFOLIO_VALUE = 7
    ACCT_UPDATE_TIME = 8
    NEXT_VALID_ID = 9
    CONTRACT_DATA = 10
    EXECUTION_DATA = 11
    MANAGED_ACCTS = 15
    TICK_GENERIC = 45
    TICK_STRING = 46
    CURRENT_TIME = 49
    CONTRACT_DATA_END = 52
    OPEN_ORDER_END = 53
    ACCT_DOWNLOAD_END = 54
    EXECUTION_DATA_END = 55
    TICK_SNAPSHOT_END = 57
    MARKET_DATA_TYPE = 58
    COMMISSION_REPORT = 59
    POSITION_DATA = 61
    POSITION_END = 62
    ACCOUNT_SUMMARY = 63
    ACCOUNT_SUMMARY_END = 64
    POSITION_MULTI = 71
    POSITION_MULTI_END = 72
    ACCOUNT_UPDATE_MULTI = 73
    ACCOUNT_UPDATE_MULTI_END = 74
    HISTORICAL_DATA = 17
    HEAD_TIMESTAMP = 88
    PNL = 94
    PNL_SINGLE = 95
    TICK_REQ_PARAMS = 81
    MARKET_RULE = 93
    COMPLETED_ORDER = 101
    COMPLETED_ORDERS_END = 102


def encode_field(value: Field) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if value == math.inf:
            return "Infinite"
        # The clients parse with float(), so the shortest repr round-trips.
        return repr(value)
    return str(value)


def encode_message(fields: Iterable[Field]) -> bytes:
    body = "".join(encode_field(f) + "\0" for f in fields).encode()
    return struct.pack(">I", len(body)) + body


def frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


class FrameReader:
    """Split a byte stream into length-prefixed frames."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> Iterator[bytes]:
        self._buf += data
        while len(self._buf) >= 4:
            (size,) = struct.unpack(">I", self._buf[:4])
            if size > MAX_MESSAGE_BYTES:
                raise ValueError(f"frame of {size} bytes exceeds the protocol limit")
            if len(self._buf) < 4 + size:
                return
            payload, self._buf = self._buf[4 : 4 + size], self._buf[4 + size :]
            yield payload


def split_fields(payload: bytes) -> list[str]:
    fields = payload.decode(errors="backslashreplace").split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


def parse_client_versions(payload: bytes) -> tuple[int, int]:
    """Parse the handshake's ``v157..176[ options]`` string."""
    text = payload.decode(errors="replace").split(" ", 1)[0]
    if not text.startswith("v"):
        raise ValueError(f"bad handshake {text!r}")
    low, _, high = text[1:].partition("..")
    return int(low), int(high or low)


# -- request decoding ---------------------------------------------------------


class _Cursor:
    def __init__(self, fields: list[str]) -> None:
        self._fields = fields
        self._pos = 0

    def text(self) -> str:
        if self._pos >= len(self._fields):
            raise ValueError("message too short")
        value = self._fields[self._pos]
        self._pos += 1
        return value

    def integer(self, default: int = 0) -> int:
        text = self.text()
        return int(text) if text else default

    def number(self, default: float | None = None) -> float | None:
        text = self.text()
        if not text:
            return default
        value = float(text)
        return None if value == UNSET_DOUBLE else value

    def flag(self) -> bool:
        text = self.text()
        return bool(int(text)) if text else False

    def skip(self, count: int) -> None:
        for _ in range(count):
            self.text()

    @property
    def exhausted(self) -> bool:
        return self._pos >= len(self._fields)


@dataclass
class ContractFields:
    con_id: int = 0
    symbol: str = ""
    sec_type: str = ""
    last_trade_date: str = ""
    strike: float | None = None
    right: str = ""
    multiplier: str = ""
    exchange: str = ""
    primary_exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    trading_class: str = ""

    @classmethod
    def read(cls, cur: _Cursor, *, primary_exchange: bool = True) -> ContractFields:
        c = cls(
            con_id=cur.integer(),
            symbol=cur.text(),
            sec_type=cur.text(),
            last_trade_date=cur.text(),
            strike=cur.number(),
            right=cur.text(),
            multiplier=cur.text(),
            exchange=cur.text(),
        )
        if primary_exchange:
            c.primary_exchange = cur.text()
        c.currency = cur.text()
        c.local_symbol = cur.text()
        c.trading_class = cur.text()
        return c

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"symbol": self.symbol, "secType": self.sec_type}
        if self.con_id:
            out["conId"] = self.con_id
        if self.exchange:
            out["exchange"] = self.exchange
        if self.currency:
            out["currency"] = self.currency
        return out


@dataclass
class OrderRequest:
    """The fields of a placeOrder message the simulator acts on."""

    order_id: int
    contract: ContractFields
    action: str
    total_quantity: float
    order_type: str
    lmt_price: float | None
    aux_price: float | None
    tif: str
    oca_group: str
    account: str
    order_ref: str
    transmit: bool
    parent_id: int
    outside_rth: bool
    oca_type: int
    trail_stop_price: float | None
    trailing_percent: float | None
    what_if: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def log_fields(self) -> dict[str, Any]:
        return {
            "orderId": self.order_id,
            "contract": self.contract.summary(),
            "action": self.action,
            "totalQuantity": self.total_quantity,
            "orderType": self.order_type,
            "lmtPrice": self.lmt_price,
            "auxPrice": self.aux_price,
            "trailStopPrice": self.trail_stop_price,
            "trailingPercent": self.trailing_percent,
            "tif": self.tif,
            "orderRef": self.order_ref,
            "parentId": self.parent_id,
            "transmit": self.transmit,
            "ocaGroup": self.oca_group,
            "ocaType": self.oca_type,
            "account": self.account,
            "outsideRth": self.outside_rth,
            "whatIf": self.what_if,
        }


def decode_place_order(fields: list[str], server_version: int = SERVER_VERSION) -> OrderRequest:
    """Decode a placeOrder message as ib_insync/ib_async ``Client.placeOrder`` writes it."""
    cur = _Cursor(fields)
    cur.skip(1)  # message id; placeOrder carries no version field at v145+
    order_id = cur.integer()
    contract = ContractFields.read(cur)
    cur.skip(2)  # secIdType, secId
    action = cur.text()
    total_quantity = cur.number(0.0) or 0.0
    order_type = cur.text()
    lmt_price = cur.number()
    aux_price = cur.number()
    tif = cur.text()
    oca_group = cur.text()
    account = cur.text()
    cur.skip(2)  # openClose, origin
    order_ref = cur.text()
    transmit = cur.flag()
    parent_id = cur.integer()
    cur.skip(4)  # blockOrder, sweepToFill, displaySize, triggerMethod
    outside_rth = cur.flag()
    cur.skip(1)  # hidden
    if contract.sec_type == "BAG":
        raise ValueError("combo (BAG) orders are not simulated")
    # '' deprecated field, discretionaryAmt, goodAfterTime, goodTillDate, faGroup,
    # faMethod, faPercentage, faProfile (until v177), modelCode, shortSaleSlot,
    # designatedLocation, exemptCode
    cur.skip(12 if server_version < 177 else 11)
    oca_type = cur.integer()
    # rule80A .. deltaNeutralOrderType
    cur.skip(17)
    dn_order_type_and_aux = (cur.text(), cur.text())
    if dn_order_type_and_aux[0]:
        cur.skip(8)
    cur.skip(2)  # continuousUpdate, referencePriceType
    trail_stop_price = cur.number()
    trailing_percent = cur.number()
    what_if = _read_what_if(cur)
    return OrderRequest(
        order_id=order_id,
        contract=contract,
        action=action,
        total_quantity=total_quantity,
        order_type=order_type,
        lmt_price=lmt_price,
        aux_price=aux_price,
        tif=tif,
        oca_group=oca_group,
        account=account,
        order_ref=order_ref,
        transmit=transmit,
        parent_id=parent_id,
        outside_rth=outside_rth,
        oca_type=oca_type,
        trail_stop_price=trail_stop_price,
        trailing_percent=trailing_percent,
        what_if=what_if,
    )


def _read_what_if(cur: _Cursor) -> bool:
    """Walk the scale/hedge/algo section to reach the whatIf flag."""
    cur.skip(2)  # scaleInitLevelSize, scaleSubsLevelSize
    increment = cur.number()
    if increment is not None and increment > 0:
        cur.skip(7)
    cur.skip(3)  # scaleTable, activeStartTime, activeStopTime
    if cur.text():  # hedgeType
        cur.skip(1)
    cur.skip(4)  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld
    if cur.flag():  # deltaNeutralContract present
        cur.skip(3)
    if cur.text():  # algoStrategy
        cur.skip(2 * cur.integer())
    cur.skip(1)  # algoId
    return cur.flag()


def decode_request(fields: list[str]) -> tuple[str, dict[str, Any]]:
    """Decode a client message into its name and the fields worth logging/acting on.

    Raises ValueError for a malformed message of a known type.
    """
    msg_id = int(fields[0])
    name = REQUEST_NAMES.get(msg_id, f"msg{msg_id}")
    cur = _Cursor(fields)
    cur.skip(1)
    decoder = _DECODERS.get(msg_id)
    if decoder is not None:
        return name, decoder(cur)
    decoded: dict[str, Any] = {"raw": fields[1:]}
    index = UNSUPPORTED_REQ_ID_INDEX.get(msg_id)
    if index is not None and index + 1 < len(fields):
        decoded["reqId"] = int(fields[index + 1] or 0)
    return name, decoded


def _mkt_data(cur: _Cursor) -> dict[str, Any]:
    cur.skip(1)
    req_id = cur.integer()
    contract = ContractFields.read(cur)
    if contract.sec_type == "BAG":
        cur.skip(4 * cur.integer())
    if cur.flag():
        cur.skip(3)
    return {
        "reqId": req_id,
        "contract": contract,
        "genericTickList": cur.text(),
        "snapshot": cur.flag(),
        "regulatorySnapshot": cur.flag(),
    }


def _cancel_order(cur: _Cursor) -> dict[str, Any]:
    cur.skip(1)
    return {"orderId": cur.integer()}


def _versioned_req_id(cur: _Cursor) -> dict[str, Any]:
    cur.skip(1)
    return {"reqId": cur.integer()}


def _account_updates(cur: _Cursor) -> dict[str, Any]:
    cur.skip(1)
    return {"subscribe": cur.flag(), "acctCode": cur.text()}


def _executions(cur: _Cursor) -> dict[str, Any]:
    cur.skip(1)
    return {
        "reqId": cur.integer(),
        "clientId": cur.integer(),
        "acctCode": cur.text(),
        "time": cur.text(),
        "symbol": cur.text(),
        "secType": cur.text(),
        "exchange": cur.text(),
        "side": cur.text(),
    }


def _req_ids(cur: _Cursor) -> dict[str, Any]:
    cur.skip(1)
    return {"numIds": cur.integer()}


def _contract_details(cur: _Cursor) -> dict[str, Any]:
    cur.skip(1)
    req_id = cur.integer()
    return {"reqId": req_id, "contract": ContractFields.read(cur)}


def _auto_open_orders(cur: _Cursor) -> dict[str, Any]:
    cur.skip(1)
    return {"autoBind": cur.flag()}


def _market_data_type(cur: _Cursor) -> dict[str, Any]:
    cur.skip(1)
    return {"marketDataType": cur.integer()}


def _market_rule(cur: _Cursor) -> dict[str, Any]:
    return {"marketRuleId": cur.integer()}


def _account_summary(cur: _Cursor) -> dict[str, Any]:
    cur.skip(1)
    return {"reqId": cur.integer(), "group": cur.text(), "tags": cur.text()}


def _start_api(cur: _Cursor) -> dict[str, Any]:
    cur.skip(1)
    return {"clientId": cur.integer(), "optionalCapabilities": cur.text()}


def _account_updates_multi(cur: _Cursor) -> dict[str, Any]:
    cur.skip(1)
    return {"reqId": cur.integer(), "account": cur.text(), "modelCode": cur.text()}


def _completed_orders(cur: _Cursor) -> dict[str, Any]:
    return {"apiOnly": cur.flag()}


def _no_fields(cur: _Cursor) -> dict[str, Any]:
    return {}


def _req_pnl(cur: _Cursor) -> dict[str, Any]:
    return {"reqId": cur.integer(), "account": cur.text(), "modelCode": cur.text()}


def _req_id_only(cur: _Cursor) -> dict[str, Any]:
    return {"reqId": cur.integer()}


def _req_pnl_single(cur: _Cursor) -> dict[str, Any]:
    return {
        "reqId": cur.integer(),
        "account": cur.text(),
        "modelCode": cur.text(),
        "conId": cur.integer(),
    }


def _historical_data(cur: _Cursor) -> dict[str, Any]:
    req_id = cur.integer()
    contract = ContractFields.read(cur)
    cur.skip(1)  # includeExpired
    decoded: dict[str, Any] = {
        "reqId": req_id,
        "contract": contract,
        "endDateTime": cur.text(),
        "barSizeSetting": cur.text(),
        "durationStr": cur.text(),
        "useRTH": cur.flag(),
        "whatToShow": cur.text(),
        "formatDate": cur.integer(1),
    }
    if contract.sec_type == "BAG":
        cur.skip(4 * cur.integer())
    decoded["keepUpToDate"] = cur.flag()
    return decoded


def _head_timestamp(cur: _Cursor) -> dict[str, Any]:
    req_id = cur.integer()
    contract = ContractFields.read(cur)
    cur.skip(1)  # includeExpired
    return {
        "reqId": req_id,
        "contract": contract,
        "useRTH": cur.flag(),
        "whatToShow": cur.text(),
        "formatDate": cur.integer(1),
    }


_DECODERS: dict[int, Any] = {
    1: _mkt_data,
    2: _versioned_req_id,
    3: lambda cur: {},  # decoded separately by decode_place_order
    4: _cancel_order,
    5: _no_fields,
    6: _account_updates,
    7: _executions,
    8: _req_ids,
    9: _contract_details,
    15: _auto_open_orders,
    16: _no_fields,
    17: _no_fields,
    20: _historical_data,
    25: _versioned_req_id,
    49: _no_fields,
    58: _no_fields,
    59: _market_data_type,
    61: _no_fields,
    62: _account_summary,
    63: _versioned_req_id,
    64: _no_fields,
    71: _start_api,
    76: _account_updates_multi,
    77: _versioned_req_id,
    92: _req_pnl,
    87: _head_timestamp,
    90: _req_id_only,
    91: _market_rule,
    93: _req_id_only,
    94: _req_pnl_single,
    95: _req_id_only,
    99: _completed_orders,
}
