"""One line per event: readable text on a terminal, JSON for journald and log shippers.

Structured fields travel in the standard ``extra=`` mapping (``rule``, ``leg``, ``order_id``,
``order_ref``, ...); the text form appends them as ``key=value``, the JSON form as keys.
"""

from __future__ import annotations

import json
import logging
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


def configure_logging(
    log_format: LogFormat, level: int = logging.INFO, stream: TextIO | None = None
) -> None:
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # Third-party chatter (ib_insync logs every message at INFO) would drown the events that matter.
    for noisy in ("ib_insync", "ib_async", "apscheduler", "watchdog"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
