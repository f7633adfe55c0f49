"""`notifier send-test` and the API's per-subscription test send."""

from __future__ import annotations

import io

from notifier.config import Settings
from notifier.senders.apprise_sender import AppriseSender
from notifier.senders.sendtest import run_send_test, send_tests
from tests.delivery.conftest import SECRET, Receiver


def test_send_test_reports_each_url_masked_and_exit_code(receiver: Receiver) -> None:
    """Each URL gets a line (ok / error, masked); the exit code is 1 if any failed, 0 if all succeeded."""
    good = receiver.url("webhook", "/ok", f"secret={SECRET}")
    dead = "json://user:hunter2pass@127.0.0.1:1/nothing"
    out = io.StringIO()
    assert run_send_test(Settings(send_timeout=2), [good, dead], out=out) == 1
    text = out.getvalue()
    assert "ok     webhook://127.0.0.1" in text and "error  json://user:****@127.0.0.1:1" in text
    assert SECRET not in text and "hunter2pass" not in text
    assert receiver.at("/ok")[0].json()["type"] == "test"
    assert run_send_test(Settings(send_timeout=2), [good], out=io.StringIO()) == 0


async def test_send_tests_with_the_service_sender_gives_per_url_results(receiver: Receiver) -> None:
    """send_tests with a given sender (as the API's test send) reports each URL in order and leaves it open."""
    sender = AppriseSender(max_workers=2)
    urls = [receiver.url("json", "/t"), "json://127.0.0.1:1/down"]
    results = await send_tests(urls, time_limit=2, label="subscription 's'", sender=sender)
    assert [x.ok for x in results] == [True, False]
    assert results[1].error and "Connection" in results[1].error
    assert "test" in receiver.at("/t")[0].json()["title"]
    assert (await send_tests(urls[:1], time_limit=2, sender=sender))[0].ok  # still usable
    await sender.aclose()
