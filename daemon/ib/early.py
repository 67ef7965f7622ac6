"""Connect to the gateway while the rest of the program loads (``tradectl apply``, issue #17).

IB's handshake is about 0.12 s of paced messages and round trips; importing the command and
validating its rules about 0.15 s. ``connect_while`` runs the handshake on this thread's event
loop and the loading on a helper thread, so both finish at about the same time instead of one
after the other. The connection is only a guess until the rules are valid: ``claim`` hands it to
the adapter only when it was made with exactly the settings the validated rules give; in every
other case it is closed before anything but the handshake's requests went out, and the adapter
connects as usual. What the handshake sends is read-only (positions, open and completed orders,
account updates, executions), paced by the bucket the adapter goes on using; client id 0 never
connects early, since for it ib_insync also binds the TWS's manual orders to the API
(``reqAutoOpenOrders``), a change at the broker. docs/apply.md, "Start and exit".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tradectl.ib.link import ClientLink

if TYPE_CHECKING:
    from tradectl.ib.adapter import ConnectionSettings

log = logging.getLogger(__name__)

# ib_insync sends reqAutoOpenOrders(True) in the handshake of client id 0.
MASTER_CLIENT_ID = 0


@dataclass(frozen=True)
class EarlyAddress:
    """Everything the handshake depends on: where, as whom, for which account, how long to
    wait, and the pacer's bucket."""

    host: str
    port: int
    client_id: int
    account: str
    timeout: float
    readonly: bool
    pacing_rate: float
    pacing_burst: float
    request_timeout: float


def address_of(settings: ConnectionSettings) -> EarlyAddress:
    return EarlyAddress(
        host=settings.host,
        port=settings.port,
        client_id=settings.client_id,
        account=settings.account,
        timeout=settings.timeout,
        readonly=settings.readonly,
        pacing_rate=settings.pacing_rate,
        pacing_burst=settings.pacing_burst,
        request_timeout=settings.request_timeout,
    )


@dataclass
class _Early:
    address: EarlyAddress
    link: ClientLink


# The connection made early and not yet claimed or discarded (one per process: the command's).
_pending: _Early | None = None


def connect_while(address: EarlyAddress, load: Callable[[], object]) -> None:
    """Run ``load`` on a helper thread while this thread connects to ``address``; return when
    both are done. A connection that fails is closed and forgotten (the adapter then connects
    as usual, and reports what fails). ``load`` must not touch the connection; what it raises
    is dropped here, for the caller to meet again when it does the same work itself."""
    global _pending
    if address.client_id == MASTER_CLIENT_ID:
        raise ValueError("client id 0 never connects early")
    loader = threading.Thread(target=_quietly, args=(load,), name="early-load", daemon=True)
    link = ClientLink(
        pacing_rate=address.pacing_rate,
        pacing_burst=address.pacing_burst,
        request_timeout=address.request_timeout,
    )
    loader.start()
    try:
        link.open(
            address.host,
            address.port,
            address.client_id,
            address.account,
            address.timeout,
            address.readonly,
        )
    except Exception as exc:
        log.info("early connection to %s:%d failed (%s)", address.host, address.port, exc)
        link.ib.disconnect()
    else:
        _pending = _Early(address, link)
    finally:
        loader.join()


def claim(settings: ConnectionSettings) -> ClientLink | None:
    """The early connection, when it is up and was made with exactly ``settings``; otherwise
    None, and an early connection made with anything else is closed first."""
    global _pending
    early, _pending = _pending, None
    if early is None:
        return None
    wanted = address_of(settings)
    if early.address == wanted and early.link.ib.isConnected():
        return early.link
    log.info("early connection closed: made for %s, the rules ask for %s", early.address, wanted)
    early.link.ib.disconnect()
    return None


def discard() -> None:
    """Close an early connection nobody claimed (the rules were invalid, the command stopped
    before it connected)."""
    global _pending
    early, _pending = _pending, None
    if early is not None:
        early.link.ib.disconnect()


def _quietly(load: Callable[[], object]) -> None:
    try:
        load()
    except BaseException:
        log.debug("loading ahead failed", exc_info=True)
