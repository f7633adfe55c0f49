"""Retries: backoff with full jitter on 5xx and transport errors, Retry-After on 429/503, give-up after attempts."""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import formatdate

import httpx
import pytest

from notifier.errors import RateLimited, ServerError, TransportError
from notifier.genviral import PartnerClient, RetryPolicy

from .conftest import ScriptedApi, example, fail


async def test_server_error_is_retried_until_success(
    api: ScriptedApi, client: PartnerClient, sleeps: list[float]
) -> None:
    """Two 500s then a 200: the call succeeds after two sleeps."""
    api.reply(fail(500, "list_failed"), fail(500, "list_failed"), httpx.Response(200, json=example("list_posts")))
    page = await client.list_posts()
    assert page.summary.total == 193
    assert len(api.requests) == 3
    assert len(sleeps) == 2


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (httpx.ReadTimeout("read timed out"), "timeout"),
        (httpx.ConnectTimeout("connect timed out"), "timeout"),
        (httpx.ConnectError("connection refused"), "connection_error"),
        (httpx.RemoteProtocolError("server disconnected"), "connection_error"),
    ],
)
async def test_transport_errors_are_retried_then_raised(
    api: ScriptedApi, client: PartnerClient, sleeps: list[float], failure: Exception, code: str
) -> None:
    """Timeouts and connection errors are retried; after all attempts a TransportError carries the code."""
    api.reply(failure)
    with pytest.raises(TransportError) as info:
        await client.list_accounts()
    assert (info.value.code, info.value.status, info.value.endpoint) == (code, None, "list_accounts")
    assert len(api.requests) == 4
    assert len(sleeps) == 3


async def test_transport_error_then_success(api: ScriptedApi, client: PartnerClient, sleeps: list[float]) -> None:
    """A timeout followed by a good answer returns the answer."""
    api.reply(httpx.ReadTimeout("slow"), httpx.Response(200, json=example("list_accounts")))
    page = await client.list_accounts()
    assert len(page.accounts) == 2
    assert len(sleeps) == 1


async def test_gives_up_after_attempts(
    api: ScriptedApi, make_client: Callable[..., PartnerClient], sleeps: list[float]
) -> None:
    """With attempts=3 a persistent 500 is tried three times, slept twice, then raised."""
    api.reply(fail(500, "get_failed"))
    client = make_client(retry=RetryPolicy(attempts=3))
    with pytest.raises(ServerError) as info:
        await client.get_post("p1")
    assert info.value.code == "get_failed"
    assert len(api.requests) == 3
    assert len(sleeps) == 2


async def test_backoff_grows_exponentially_up_to_max_delay(
    api: ScriptedApi, make_client: Callable[..., PartnerClient], sleeps: list[float]
) -> None:
    """Without jitter the delays double from base_delay and stop at max_delay."""
    api.reply(fail(503))
    client = make_client(retry=RetryPolicy(attempts=7, base_delay=0.5, max_delay=8.0, jitter=False))
    with pytest.raises(ServerError):
        await client.list_posts()
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]


@pytest.mark.parametrize(("factor", "expected"), [(0.0, [0.0, 0.0, 0.0]), (0.5, [0.25, 0.5, 1.0])])
async def test_full_jitter_scales_the_exponential_cap(
    api: ScriptedApi,
    make_client: Callable[..., PartnerClient],
    sleeps: list[float],
    factor: float,
    expected: list[float],
) -> None:
    """Full jitter multiplies each capped delay by a uniform factor in [0, 1)."""
    api.reply(fail(500))
    client = make_client(retry=RetryPolicy(rng=lambda: factor))
    with pytest.raises(ServerError):
        await client.list_packs()
    assert sleeps == expected


async def test_jittered_delays_stay_within_bounds(
    api: ScriptedApi, make_client: Callable[..., PartnerClient], sleeps: list[float]
) -> None:
    """With the real random source every delay lies in [0, cap] and they are not all equal to the cap."""
    api.reply(httpx.ConnectError("refused"))
    client = make_client(retry=RetryPolicy(attempts=9, base_delay=0.5, max_delay=8.0))
    for _ in range(5):
        with pytest.raises(TransportError):
            await client.list_posts()
    caps = [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0] * 5
    assert len(sleeps) == len(caps)
    assert all(0.0 <= d <= cap for d, cap in zip(sleeps, caps, strict=True))
    assert sleeps != caps
    assert len(set(sleeps)) > 1


async def test_retry_after_seconds_honoured_on_429(
    api: ScriptedApi, client: PartnerClient, sleeps: list[float]
) -> None:
    """A 429 with Retry-After: 7 sleeps exactly 7 s before trying again."""
    api.reply(fail(429, "rate_limited", **{"Retry-After": "7"}), httpx.Response(200, json=example("list_packs")))
    page = await client.list_packs()
    assert page.total == 1
    assert sleeps == [7.0]


async def test_retry_after_http_date_honoured_on_503(
    api: ScriptedApi, client: PartnerClient, sleeps: list[float]
) -> None:
    """A 503 with an HTTP-date Retry-After waits the gap to the response's Date header."""
    headers = {"Date": "Wed, 21 Oct 2026 07:28:00 GMT", "Retry-After": "Wed, 21 Oct 2026 07:28:05 GMT"}
    api.reply(fail(503, **headers), httpx.Response(200, json=example("get_pack")))
    await client.get_pack("p1")
    assert sleeps == [5.0]


async def test_retry_after_http_date_without_date_header_uses_the_clock(
    api: ScriptedApi, client: PartnerClient, sleeps: list[float]
) -> None:
    """Without a Date header an HTTP-date Retry-After is measured against the local clock."""
    when = formatdate(time.time() + 30, usegmt=True)
    api.reply(fail(429, **{"Retry-After": when}), httpx.Response(200, json=example("list_accounts")))
    await client.list_accounts()
    (delay,) = sleeps
    assert 20.0 <= delay <= 31.0


async def test_retry_after_in_the_past_retries_at_once(
    api: ScriptedApi, client: PartnerClient, sleeps: list[float]
) -> None:
    """A Retry-After date already past means no wait."""
    api.reply(
        fail(503, **{"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}), httpx.Response(200, json=example("get_post"))
    )
    await client.get_post("p1")
    assert sleeps == [0.0]


@pytest.mark.parametrize(
    ("status", "exc_type", "header"),
    [
        (429, RateLimited, "120"),
        (503, ServerError, "120"),
        (429, RateLimited, "Wed, 21 Oct 2026 07:30:00 GMT"),
    ],
)
async def test_retry_after_beyond_max_is_raised_not_slept(
    api: ScriptedApi, client: PartnerClient, sleeps: list[float], status: int, exc_type: type[Exception], header: str
) -> None:
    """A Retry-After above max_retry_after raises at once with retry_after set for the caller."""
    api.reply(fail(status, **{"Retry-After": header, "Date": "Wed, 21 Oct 2026 07:28:00 GMT"}))
    with pytest.raises(exc_type) as info:
        await client.list_posts()
    assert info.value.retry_after == 120.0  # type: ignore[attr-defined]
    assert len(api.requests) == 1
    assert sleeps == []


async def test_rate_limited_without_retry_after_backs_off_then_raises(
    api: ScriptedApi, make_client: Callable[..., PartnerClient], sleeps: list[float]
) -> None:
    """A 429 without Retry-After is retried with backoff; exhausted, RateLimited is raised."""
    api.reply(fail(429))
    client = make_client(retry=RetryPolicy(jitter=False))
    with pytest.raises(RateLimited) as info:
        await client.list_posts()
    assert info.value.retry_after is None
    assert sleeps == [0.5, 1.0, 2.0]


async def test_exhausted_429_carries_its_retry_after(
    api: ScriptedApi, client: PartnerClient, sleeps: list[float]
) -> None:
    """When 429s outlast the attempts, the raised error carries the last Retry-After."""
    api.reply(fail(429, **{"Retry-After": "3"}))
    with pytest.raises(RateLimited) as info:
        await client.list_posts()
    assert info.value.retry_after == 3.0
    assert sleeps == [3.0, 3.0, 3.0]


async def test_retry_after_ignored_on_500(
    api: ScriptedApi, make_client: Callable[..., PartnerClient], sleeps: list[float]
) -> None:
    """Only 429 and 503 honour Retry-After; a 500 keeps the backoff schedule."""
    api.reply(fail(500, **{"Retry-After": "30"}), httpx.Response(200, json=example("list_accounts")))
    client = make_client(retry=RetryPolicy(jitter=False))
    await client.list_accounts()
    assert sleeps == [0.5]
