"""Logging for the command line: structured lines on stderr.

Every record prints as `time level logger: message key=value …`, with the fields a maintainer
greps for at 3 a.m. (page, url, outcome, duration_ms) taken from the record's `extra`; `--log-json`
prints one JSON object per line instead.
"""

from __future__ import annotations

import json
import logging
import sys
import time

FIELDS = ("page", "url", "outcome", "status", "duration_ms", "reason", "subscriber", "channel")


class KeyValueFormatter(logging.Formatter):
    converter = staticmethod(time.gmtime)  # UTC, said with a Z

    def format(self, record: logging.LogRecord) -> str:
        base = f"{self.formatTime(record, '%Y-%m-%dT%H:%M:%SZ')} {record.levelname} {record.name}: {record.getMessage()}"
        pairs = " ".join(f"{k}={_quote(getattr(record, k))}" for k in FIELDS if hasattr(record, k))
        text = f"{base} {pairs}" if pairs else base
        return text + ("\n" + self.formatException(record.exc_info) if record.exc_info else "")


class JsonFormatter(logging.Formatter):
    converter = staticmethod(time.gmtime)

    def format(self, record: logging.LogRecord) -> str:
        data = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%SZ"), "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        data.update({k: getattr(record, k) for k in FIELDS if hasattr(record, k)})
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def _quote(value: object) -> str:
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if (" " in text or not text) else text


class ThirdParty(logging.Filter):
    """Scrapy and Twisted only speak at -v (warnings) and -vv (everything). A handler filter, because
    Scrapy resets its loggers' levels (dictConfig) whenever a crawler process starts."""

    PREFIXES = ("scrapy", "twisted", "py.warnings", "apscheduler")

    def __init__(self, level: str):
        super().__init__()
        self.minimum = {"WARNING": logging.CRITICAL, "INFO": logging.WARNING}.get(level, logging.DEBUG)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("apscheduler") and "maximum number of running instances" in record.getMessage():
            return self.minimum <= logging.DEBUG  # a tick skipped while a crawl runs is expected: debug only
        return not record.name.startswith(self.PREFIXES) or record.levelno >= self.minimum


def configure(level: str, as_json: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if as_json else KeyValueFormatter())
    handler.addFilter(ThirdParty(level))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING if level != "DEBUG" else logging.DEBUG)
