"""Structured logs: JSON or console lines carrying event and delivery ids, with every secret redacted."""

from __future__ import annotations

import io
import json
import logging

from notifier.config import Settings
from notifier.logging import configure_logging
from notifier.senders.apprise_sender import AppriseSender, Outgoing
from tests.api.conftest import Receiver

API_KEY = "gv_live_LoggingKey_0123456789"
ADMIN = "admin-LoggingToken-987"
REDIS_PASSWORD = "r3dis-Pa55word"


def settings(fmt: str) -> Settings:
    return Settings(
        genviral_api_key=API_KEY,
        admin_token=ADMIN,
        redis_url=f"redis://default:{REDIS_PASSWORD}@redis.internal:6379/0",
        log_format=fmt,
        log_level="info",
    )


def emit(fmt: str) -> str:
    stream = io.StringIO()
    configure_logging(settings(fmt), stream=stream)
    log = logging.getLogger("notifier.test")
    log.info("delivery sent", extra={"event_id": "evt-1", "delivery_id": "dlv_2", "url": "slack://a/b/c"})
    log.warning("calling with key %s and token %s", API_KEY, ADMIN)
    log.warning("target mailto://ops:MailPassw0rd@smtp.example.com failed; header Authorization: Bearer abc.def")
    log.debug("not shown at info")
    try:
        raise RuntimeError(f"redis://default:{REDIS_PASSWORD}@redis.internal refused")
    except RuntimeError:
        log.exception("boom")
    return stream.getvalue()


def test_json_lines_carry_ids_and_no_secret() -> None:
    """json format: one object per line with level, logger, message, event_id, delivery_id; no secret anywhere."""
    text = emit("json")
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert len(lines) == 4
    first = lines[0]
    assert first["message"] == "delivery sent"
    assert (first["event_id"], first["delivery_id"], first["level"], first["logger"]) == (
        "evt-1",
        "dlv_2",
        "info",
        "notifier.test",
    )
    assert "url" not in first
    assert "RuntimeError" in lines[3]["exc"]
    for secret in (API_KEY, ADMIN, REDIS_PASSWORD, "MailPassw0rd", "abc.def"):
        assert secret not in text
    assert "****" in lines[1]["message"]


def test_console_lines_carry_ids_and_no_secret() -> None:
    """console format: readable lines with key=value context; no secret anywhere, tracebacks included."""
    text = emit("console")
    assert "notifier.test: delivery sent event_id=evt-1 delivery_id=dlv_2" in text
    assert "Traceback" in text
    for secret in (API_KEY, ADMIN, REDIS_PASSWORD, "MailPassw0rd", "abc.def"):
        assert secret not in text


async def test_debug_level_never_logs_a_target_token(receiver: Receiver) -> None:
    """At debug level, sends through apprise's plugins and through the pooled path log no URL token."""
    token = "T0k3nInThePath9876"
    url = receiver.url("json", f"/services/{token}") + f"?-sig={token}Q"
    stream = io.StringIO()
    configure_logging(Settings(log_level="debug", log_format="json"), stream=stream)
    for pooled in (False, True):
        sender = AppriseSender(max_workers=1, pooled_http=pooled)
        result = await sender.send(
            Outgoing(url=url, title="t", body="b", level="info", message_id="m", data=b"{}"), time_limit=5
        )
        await sender.aclose()
        assert result.ok
    logging.getLogger("notifier.test").debug("debug lines are written")
    text = stream.getvalue()
    assert len(receiver.bodies) == 2 and "debug lines are written" in text
    assert token not in text


def test_access_lines_only_at_debug() -> None:
    """uvicorn's access lines are written at NOTIFIER_LOG_LEVEL=debug and left out otherwise."""
    for level, shown in (("debug", True), ("info", False)):
        stream = io.StringIO()
        configure_logging(Settings(log_level=level, log_format="console"), stream=stream)
        logging.getLogger("uvicorn.access").info('127.0.0.1:5000 - "GET /healthz HTTP/1.1" 200')
        assert ("GET /healthz" in stream.getvalue()) is shown
