"""``notifier check``: is this configuration good to serve? One line per check, and an exit code.

    configuration .... the settings the role needs are set, the subscriptions file parses   (else exit 2)
    redis ............ PING answers (or: the embedded redis-server that would be started)   (else exit 1)
    partner api ...... GET /accounts with the key: scope and account count, or the error code (else exit 1)

Exit code: 0 when every check passed, 2 when the configuration is wrong (the line names the setting), else 1.
No secret is printed: the Redis URL is shown as host and port, the key only as its non-secret id.

Must not import: litestar, uvicorn, the poller, the dispatcher.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO
from urllib.parse import urlsplit

import httpx
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from notifier.config import Settings, env_name
from notifier.errors import ConfigError, EmbeddedRedisError, PartnerApiError
from notifier.genviral.client import PartnerClient, RetryPolicy, api_key_id
from notifier.logging import configure_logging
from notifier.store.embedded import find_redis_server
from notifier.subscriptions_file import SubscriptionsFileError, parse_subscriptions

#: Settings each role of ``notifier serve`` cannot run without.
REQUIRED: dict[str, tuple[str, ...]] = {
    "all": ("genviral_api_key", "admin_token"),
    "api": ("admin_token",),
    "poller": ("genviral_api_key",),
    "dispatcher": (),
}
TIMEOUT = 10.0

OK, CONFIG, FAILED, SKIPPED = "ok", "config", "failed", "skipped"
_MARK = {OK: "ok  ", CONFIG: "FAIL", FAILED: "FAIL", SKIPPED: "skip"}


@dataclass(frozen=True)
class Line:
    name: str
    outcome: str
    text: str


def where(redis_url: str) -> str:
    """``host:port/db`` (or the socket path) of a Redis URL, without its credentials."""
    parts = urlsplit(redis_url)
    if parts.scheme == "unix":
        return parts.path
    db = parts.path.strip("/") or "0"
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}/{db}"


def check_configuration(settings: Settings, role: str) -> list[Line]:
    lines: list[Line] = []
    missing = [name for name in REQUIRED[role] if not getattr(settings, name)]
    if missing:
        names = ", ".join(env_name(n) for n in missing)
        lines.append(Line("configuration", CONFIG, f"{names} required for serve --role {role} but not set"))
    else:
        lines.append(
            Line(
                "configuration",
                OK,
                f"role {role}; Partner API {settings.genviral_base_url}; poll every {settings.poll_interval:g} s; "
                f"logs {settings.log_format}/{settings.log_level}",
            )
        )
    path = settings.subscriptions_file
    if path is not None:
        try:
            subs = parse_subscriptions(path.read_text(encoding="utf-8"), path, now=datetime.now(UTC))
        except (OSError, UnicodeDecodeError) as exc:
            lines.append(Line("subscriptions", CONFIG, f"{env_name('subscriptions_file')}: cannot read {path}: {exc}"))
        except SubscriptionsFileError as exc:
            lines.append(Line("subscriptions", CONFIG, f"{env_name('subscriptions_file')}: {exc}"))
        else:
            lines.append(Line("subscriptions", OK, f"{path}: {len(subs)} subscription(s) managed as code"))
    return lines


async def check_redis(settings: Settings) -> Line:
    if not settings.redis_url:
        try:
            binary = find_redis_server()
        except EmbeddedRedisError as exc:
            return Line("redis", FAILED, f"{env_name('redis_url')} is unset and {exc}")
        return Line("redis", OK, f"unset: an embedded {binary} would be started, data in {settings.data_dir}")
    client = aioredis.Redis.from_url(settings.redis_url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
    try:
        started = time.perf_counter()
        await asyncio.wait_for(client.ping(), TIMEOUT)
        elapsed = (time.perf_counter() - started) * 1000
        info = await asyncio.wait_for(client.info("server"), TIMEOUT)
        version = info.get("redis_version", "?")
        return Line("redis", OK, f"redis {version} at {where(settings.redis_url)} answered in {elapsed:.1f} ms")
    except (RedisError, OSError, TimeoutError) as exc:
        reason = str(exc) if isinstance(exc, RedisError) else type(exc).__name__
        return Line("redis", FAILED, f"{where(settings.redis_url)}: {reason or type(exc).__name__}")
    finally:
        await client.aclose()


async def check_partner_api(settings: Settings) -> Line:
    if not settings.genviral_api_key:
        return Line("partner api", SKIPPED, f"no key ({env_name('genviral_api_key')} is unset)")
    async with httpx.AsyncClient(timeout=min(settings.request_timeout, TIMEOUT)) as http:
        client = PartnerClient(
            http,
            base_url=settings.genviral_base_url,
            api_key=settings.genviral_api_key,
            retry=RetryPolicy(attempts=2, base_delay=0.5, max_retry_after=5.0),
        )
        started = time.perf_counter()
        try:
            page = await client.list_accounts()
        except PartnerApiError as exc:
            shown = f"{exc.status} " if exc.status is not None else ""
            return Line("partner api", FAILED, f"GET /accounts: {shown}{exc.code}: {exc.message}")
    elapsed = time.perf_counter() - started
    platforms = sorted({a.platform for a in page.accounts})
    on = f" ({', '.join(platforms)})" if platforms else ""
    return Line(
        "partner api",
        OK,
        f"GET /accounts in {elapsed:.2f} s: {page.scope} scope {page.scope_id}, {len(page.accounts)} account(s){on}; "
        f"key id {api_key_id(settings.genviral_api_key)}",
    )


async def collect(settings: Settings, role: str = "all") -> list[Line]:
    lines = check_configuration(settings, role)
    redis_line, api_line = await asyncio.gather(check_redis(settings), check_partner_api(settings))
    return [*lines, redis_line, api_line]


def exit_code(lines: list[Line]) -> int:
    outcomes = {line.outcome for line in lines}
    if CONFIG in outcomes:
        return 2
    return 1 if FAILED in outcomes else 0


def run_check(settings: Settings, role: str = "all", *, out: TextIO | None = None) -> int:
    """Print one line per check; 0 all good, 1 a runtime failure, 2 bad configuration."""
    stream = out if out is not None else sys.stdout
    if role not in REQUIRED:
        raise ConfigError("--role", f"must be one of {', '.join(REQUIRED)}")
    # The report is the output; retries and warnings of the clients would only interleave with it.
    configure_logging(dataclasses.replace(settings, log_format="console", log_level="error"))
    lines = asyncio.run(collect(settings, role))
    width = max(len(line.name) for line in lines)
    for line in lines:
        print(f"{_MARK[line.outcome]}  {line.name:<{width}}  {line.text}", file=stream)
    code = exit_code(lines)
    summary = {0: "all checks passed", 1: "some checks failed", 2: "the configuration is incomplete or wrong"}
    print(summary[code], file=stream)
    return code
