"""One log line per gateway request, and the JSON log format (``llm-router serve --log-format json``).

The line goes to the logger ``llm_router.requests`` at INFO (switch it off with the policy's
``telemetry.request_log: false``, or by that logger's level). Its fields: request id, key id (never the key),
endpoint, task, model, status, outcome, tokens, cost, latency, cache, saved cost, fallbacks, stream, trace id and
the error message. With ``--log-format json`` every log record is one JSON object a line and a request line's
fields are top-level keys; with ``text`` they are ``name=value`` pairs.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

__all__ = ["JSONFormatter", "RequestLog", "configure_logging"]

REQUEST_LOGGER = "llm_router.requests"
log = logging.getLogger(REQUEST_LOGGER)


class _Fields:
    """A request line's fields, formatted as ``name=value`` text only if a text handler prints them."""

    __slots__ = ("fields",)

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    def __str__(self) -> str:
        return " ".join(f"{k}={_text(v)}" for k, v in self.fields.items() if v is not None)


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    return json.dumps(text) if (" " in text or not text) else text


class RequestLog:
    """Writes the per-request line (see the module docstring)."""

    def __init__(self, enabled: bool) -> None:
        self.on = enabled

    @property
    def enabled(self) -> bool:
        return self.on and log.isEnabledFor(logging.INFO)

    def write(self, **fields: Any) -> None:
        if isinstance(fields.get("latency_ms"), float):
            fields["latency_ms"] = round(fields["latency_ms"], 3)
        log.info("request %s", _Fields(fields), extra={"request": fields})


class JSONFormatter(logging.Formatter):
    """Each record as one JSON object: ``ts``, ``level``, ``logger``, ``message`` (and a request line's fields)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
        }
        fields = getattr(record, "request", None)
        if isinstance(fields, dict):
            data["message"] = "request"
            data.update(fields)
        else:
            data["message"] = record.getMessage()
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def configure_logging(level: str, fmt: str) -> None:
    """The root logger's handler for ``llm-router serve``: ``fmt`` is ``json`` or ``text``."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
