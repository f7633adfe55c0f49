"""``notifier send-test URL...``: one test notification per URL, a line of result each.

Prints ``ok`` or ``error`` and the URL masked (plus the reason), and returns the exit code: 0 when every URL
accepted the notification, else 1. ``send_tests`` is also what the API's
``POST /subscriptions/{id}/test`` sends, with the service's sender.

Must not import: redis, litestar, prometheus_client, or any module of this package outside ``senders`` but
``notifier.config``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import Sequence
from typing import TextIO

from notifier.config import Settings
from notifier.senders.apprise_sender import AppriseSender, Outgoing, Sender, SendResult
from notifier.senders.urls import mask_url

TEST_TYPE = "test"


def build_test_notification(url: str, *, label: str = "this target") -> Outgoing:
    """A test notification to ``url``; ``webhook://`` targets get ``{"type": "test", ...}``."""
    message_id = "test_" + uuid.uuid4().hex
    data = {"type": TEST_TYPE, "id": message_id, "sent_at": int(time.time()), "about": label}
    return Outgoing(
        url=url,
        title="[test] genviral-notifier test notification",
        body=f"This is a test notification from genviral-notifier for {label}.\n"
        "If you can read it, notifications reach this target.\nEvent: test",
        level="info",
        message_id=message_id,
        data=json.dumps(data).encode(),
    )


async def send_tests(
    urls: Sequence[str], *, time_limit: float, label: str = "notifier send-test", sender: Sender | None = None
) -> list[SendResult]:
    """A test notification to each URL, all at once, with ``sender`` (else one made for the call)."""
    own = AppriseSender(max_workers=max(1, len(urls))) if sender is None else None
    used = own or sender
    assert used is not None
    try:
        return list(
            await asyncio.gather(
                *(used.send(build_test_notification(u, label=label), time_limit=time_limit) for u in urls)
            )
        )
    finally:
        if own is not None:
            await own.aclose()


def run_send_test(settings: Settings, urls: Sequence[str], *, out: TextIO | None = None) -> int:
    """Send a test notification to each URL and print per-URL results; 0 if all were accepted, else 1."""
    stream = out if out is not None else sys.stdout
    results = asyncio.run(send_tests(urls, time_limit=settings.send_timeout))
    for url, result in zip(urls, results, strict=True):
        if result.ok:
            print(f"ok     {mask_url(url)}", file=stream)
        else:
            print(f"error  {mask_url(url)}: {result.error}", file=stream)
    failed = sum(not r.ok for r in results)
    print(f"{len(urls) - failed} of {len(urls)} URL(s) accepted the test notification", file=stream)
    return 0 if failed == 0 else 1
