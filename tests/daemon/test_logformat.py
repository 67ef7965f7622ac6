"""One line per event, as text or JSON, with the order's rule, leg, orderId and orderRef."""

from __future__ import annotations

import io
import json
import logging

from daemon.service.logformat import configure_logging


def _emit(log_format: str) -> str:
    stream = io.StringIO()
    configure_logging(log_format, stream=stream)  # type: ignore[arg-type]
    log = logging.getLogger("tradectl.test")
    log.info(
        "placed order",
        extra={
            "rule": "core",
            "leg": "AAPL",
            "order_id": 12,
            "order_ref": "tctl:core:abc:AAPL",
            "reasons": ["fill", "timer"],
        },
    )
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        log.exception("pass failed")
    configure_logging("text")
    return stream.getvalue()


def test_json_lines_carry_the_order_fields() -> None:
    lines = _emit("json").splitlines()
    assert len(lines) == 2
    placed, failed = (json.loads(line) for line in lines)
    assert placed["message"] == "placed order"
    assert placed["level"] == "info"
    assert placed["rule"] == "core"
    assert placed["leg"] == "AAPL"
    assert placed["order_id"] == 12
    assert placed["order_ref"] == "tctl:core:abc:AAPL"
    assert placed["reasons"] == ["fill", "timer"]
    assert failed["error"] == "ValueError: bad\nthing"
    assert "Traceback" in failed["traceback"]


def test_text_is_one_readable_line_per_event() -> None:
    lines = _emit("text").splitlines()
    assert len(lines) == 2
    assert "INFO" in lines[0]
    assert (
        "placed order rule=core leg=AAPL order_id=12 order_ref=tctl:core:abc:AAPL "
        "reasons=fill,timer" in lines[0]
    )
    assert lines[1].endswith('pass failed error="ValueError: bad\\nthing"')
