"""Structured logs: one JSON object per line (``json``) or one readable line (``console``), never a secret.

``configure_logging(settings)`` installs one stderr handler on the root logger (uvicorn's loggers propagate to
it), at ``NOTIFIER_LOG_LEVEL``. Context travels through ``extra``::

    log.info("delivery sent", extra={"event_id": event.id, "delivery_id": delivery.id})

and comes out as fields of the JSON object (or ``key=value`` pairs on a console line). Only the names in
``CONTEXT_FIELDS`` are carried, so a stray ``extra`` cannot smuggle a URL into the output.

Redaction, applied to the final text of every record (tracebacks included): the configured secrets (API key,
admin token, the Redis URL's password) become ``****``, as do the password of any ``scheme://user:pass@``
URL and any ``Bearer`` token.

Must not import: redis, httpx, apprise, litestar, prometheus_client, or any module of this package but
``notifier.config``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import unquote, urlsplit

from notifier.config import Settings

#: ``extra`` names copied into the output.
CONTEXT_FIELDS = (
    "event_id",
    "event_type",
    "delivery_id",
    "subscription_id",
    "scope",
    "role",
    "attempt",
    "status_code",
)

_USERINFO_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^\s/:@]*:)(?P<secret>[^\s@/]+)(?P<at>@)")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
_MASK = "****"
_HANDLER_NAME = "notifier"


class Redactor:
    """Removes known secrets and secret-looking URL parts from a text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, _MASK)
        text = _USERINFO_PASSWORD.sub(lambda m: m.group("head") + _MASK + m.group("at"), text)
        return _BEARER.sub(lambda m: m.group(1) + _MASK, text)


def secrets_of(settings: Settings) -> list[str]:
    """The secret values in ``settings``: API key, admin token, Redis password."""
    found = [settings.genviral_api_key, settings.admin_token]
    if settings.redis_url:
        password = urlsplit(settings.redis_url).password
        if password:
            found += [password, unquote(password)]
    return [s for s in found if s]


def _context(record: logging.LogRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in CONTEXT_FIELDS if getattr(record, name, None) is not None}


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", <context>, "exc"}`` on one line."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_context(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        return self._redact(json.dumps(entry, default=str, ensure_ascii=False))


class ConsoleFormatter(logging.Formatter):
    """``HH:MM:SS LEVEL logger: message key=value ...`` for a person at a terminal."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        line = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        context = _context(record)
        if context:
            line += " " + " ".join(f"{k}={v}" for k, v in context.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return self._redact(line)


def make_formatter(fmt: str, secrets: Iterable[str] = ()) -> logging.Formatter:
    redact = Redactor(secrets)
    return ConsoleFormatter(redact) if fmt == "console" else JsonFormatter(redact)


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Route every log record through one handler of ``settings.log_format`` at ``settings.log_level``."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(make_formatter(settings.log_format, secrets_of(settings)))
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    # Libraries that log every request or retry at INFO would drown the service's own lines, and apprise and
    # urllib3 write target URLs with their tokens (a Slack or Discord webhook's path) at DEBUG.
    for noisy in ("httpx", "httpcore", "apprise", "urllib3", "requests"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # One line per HTTP request to this service: only when asked for with the debug level.
    logging.getLogger("uvicorn.access").setLevel(logging.INFO if root.level <= logging.DEBUG else logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
