"""Structured logs: one JSON object per line on stderr, for attnseg, kserve and uvicorn alike.

Fields: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, anything passed through
``extra=`` (``model``, ``images``...), and for uvicorn's access log ``client``, ``method``,
``path`` and ``status``. ``json_logs=False`` keeps the same routing with plain text lines.
"""

from __future__ import annotations

import json
import logging
import logging.config
import time

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
        }
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, _version, status = record.args
            entry.update(message="request", client=client, method=method, path=path, status=status)
        else:
            entry["message"] = record.getMessage()
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO", json_logs: bool = True) -> None:
    """Route attnseg, kserve and uvicorn loggers to one stderr handler (before kserve configures its own)."""
    formatter = {"()": JsonFormatter} if json_logs else {
        "format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    names = ["attnseg", "kserve", "kserve.trace", "uvicorn", "uvicorn.error", "uvicorn.access", "py.warnings"]
    logging.captureWarnings(True)  # library deprecation warnings become JSON lines too
    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"main": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "main", "stream": "ext://sys.stderr"}},
        "loggers": {name: {"handlers": ["stderr"], "level": _level(name, level), "propagate": False}
                    for name in names},
    })


def _level(name: str, level: str) -> str:
    """kserve.trace logs two timing lines per request: only shown at DEBUG."""
    level = level.upper()
    return "WARNING" if name == "kserve.trace" and level != "DEBUG" else level
