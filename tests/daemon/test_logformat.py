"""One line per event, as text or JSON, with the order's rule, leg, orderId and orderRef."""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path

import pytest

from tradectl.service.logformat import configure_logging


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


def _emit_to_file(path: Path, monkeypatch: pytest.MonkeyPatch, journal: bool) -> list[str]:
    with path.open("w") as stream:
        info = os.fstat(stream.fileno())
        if journal:
            monkeypatch.setenv("JOURNAL_STREAM", f"{info.st_dev}:{info.st_ino}")
        else:
            monkeypatch.setenv("JOURNAL_STREAM", "1:2")  # another stream: output was redirected
        configure_logging("text", stream=stream)
        try:
            log = logging.getLogger("tradectl.test")
            log.debug("hidden")
            log.info("pass complete")
            log.warning("disconnected")
            log.error("circuit breaker tripped")
            logging.getLogger("ib_insync.client").error(
                "API connection failed: ConnectionRefusedError(111)"
            )
            logging.getLogger("ib_insync.client").error("Make sure API port on TWS/IBG is open")
            logging.getLogger("ib_insync.client").error("Peer closed connection.")
            logging.getLogger("ib_insync.client").error("[Errno 104] Connection reset by peer")
            logging.getLogger("ib_insync.wrapper").error(
                "Error 10148, reqId 8: OrderId 8 that needs to be cancelled cannot be cancelled, "
                "state: Cancelled."
            )
            logging.getLogger("ib_insync.wrapper").error("Error 201, reqId 9: Order rejected")
        finally:
            configure_logging("text")
    return path.read_text().splitlines()


def test_under_journald_every_line_starts_with_its_syslog_priority(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = _emit_to_file(tmp_path / "log", monkeypatch, journal=True)
    assert [line[:3] for line in lines] == ["<6>", "<4>", "<3>", "<3>"]
    assert "Error 201" in lines[-1]


def test_expected_client_noise_is_not_an_error_and_redirected_output_has_no_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = _emit_to_file(tmp_path / "log", monkeypatch, journal=False)
    assert not [line for line in lines if line.startswith("<")]
    text = "\n".join(lines)
    assert "API connection failed" not in text and "Make sure API port" not in text
    assert "Peer closed connection" not in text and "Connection reset by peer" not in text
    assert "10148" not in text
    assert "ERROR   Error 201" in text
