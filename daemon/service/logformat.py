"""One line per event: readable text on a terminal, JSON for journald and log shippers.

Structured fields travel in the standard ``extra=`` mapping (``rule``, ``leg``, ``order_id``,
``order_ref``, ...); the text form appends them as ``key=value``, the JSON form as keys.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

LogFormat = Literal["text", "json"]

_STANDARD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in _STANDARD_ATTRIBUTES and not key.startswith("_")
    }


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error_summary(record: logging.LogRecord) -> str | None:
    if record.exc_info and record.exc_info[1] is not None:
        error = record.exc_info[1]
        return f"{type(error).__name__}: {error}"
    return None


def _text_value(value: object) -> str:
    if isinstance(value, list | tuple | set | frozenset):
        value = ",".join(str(item) for item in value)
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if text == "" or any(char.isspace() for char in text) or '"' in text:
        return json.dumps(text)
    return text


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record), f"{record.levelname:<7}", record.getMessage()]
        fields = record_fields(record)
        error = _error_summary(record)
        if error is not None:
            fields["error"] = error
        parts.extend(f"{key}={_text_value(value)}" for key, value in fields.items())
        return " ".join(part.replace("\n", " | ") for part in parts)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update(record_fields(record))
        error = _error_summary(record)
        if error is not None:
            payload["error"] = error
            payload["traceback"] = self.formatException(record.exc_info) if record.exc_info else ""
        return json.dumps(payload, default=str, ensure_ascii=False)


# syslog priorities (sd-daemon(3)): journald reads a "<N>" line prefix as the line's priority, so
# `journalctl -p err` finds tradectl's errors.
_SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


class JournaldPrefix(logging.Formatter):
    """Prefix every line of ``inner`` with its syslog priority, for journald."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self._inner = inner

    def format(self, record: logging.LogRecord) -> str:
        priority = next(
            (value for level, value in _SYSLOG_PRIORITY.items() if record.levelno >= level), 7
        )
        return f"<{priority}>{self._inner.format(record)}"


def stderr_is_journal(stream: TextIO) -> bool:
    """systemd sets $JOURNAL_STREAM to "device:inode" of the stream it connected to journald;
    it counts only while that still is our stream (not when the output was redirected)."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return False
    return expected == f"{info.st_dev}:{info.st_ino}"


class ExpectedClientNoise(logging.Filter):
    """ib_insync logs outcomes tradectl expects as errors: "API connection failed" on every
    reconnection attempt, and "Peer closed connection" or "Connection reset by peer" when the
    gateway goes away (the reset when it closes the socket with our last message still unread;
    tradectl logs one warning per outage for all of them) and error 10148 for an order
    that was already done when its cancel arrived (a bracket child cancelled with its parent).
    They are demoted to DEBUG and INFO, and shown only when those levels are enabled."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.name == "ib_insync.client" and (
            message.startswith(
                ("API connection failed", "Make sure API port", "Peer closed connection")
            )
            or message.endswith("Connection reset by peer")
        ):
            demoted = logging.DEBUG
        elif record.name == "ib_insync.wrapper" and message.startswith("Error 10148,"):
            demoted = logging.INFO
        else:
            return True
        record.levelno, record.levelname = demoted, logging.getLevelName(demoted)
        return logging.getLogger(record.name).isEnabledFor(demoted)


def configure_logging(
    log_format: LogFormat, level: int = logging.INFO, stream: TextIO | None = None
) -> None:
    output = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(output)
    formatter: logging.Formatter = JsonFormatter() if log_format == "json" else TextFormatter()
    if stderr_is_journal(output):
        formatter = JournaldPrefix(formatter)
    handler.setFormatter(formatter)
    handler.addFilter(ExpectedClientNoise())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # Third-party chatter (ib_insync logs every message at INFO) would drown the events that matter.
    for noisy in ("ib_insync", "ib_async", "apscheduler", "watchdog"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
