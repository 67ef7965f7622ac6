"""A request whose caller gave up is failed by ib_insync when the socket closes; that failure
must not reach the log as an ERROR ("Future exception was never retrieved")."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from tradectl.ib import ConnectionSettings, IbAdapter


def test_a_disconnect_fails_abandoned_requests_without_an_error_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    adapter = IbAdapter(ConnectionSettings("127.0.0.1", 1, 17, "DU1", live_allowed=False), None)
    wrapper = adapter.ib.wrapper
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        abandoned = wrapper.startReq(7)  # nobody awaits it any more: its caller timed out
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            wrapper.connectionClosed()
            loop.run_until_complete(asyncio.sleep(0))
            assert abandoned.done()
            del abandoned
            gc.collect()
        assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
    finally:
        loop.close()
