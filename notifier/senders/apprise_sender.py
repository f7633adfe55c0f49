"""The sender port and its apprise adapter: one notification to one URL, with a timeout, never raising.

``Sender.send(message, time_limit=...)`` returns a ``SendResult``; a refusal, an unreachable target or a timeout
is ``ok=False`` with a short reason that never contains a secret of the URL.

``AppriseSender`` sends ``json://`` and ``webhook://`` URLs (and their TLS forms) itself on pooled keep-alive
connections, building the request apprise's plugin would send (``direct``). Every other URL goes through
apprise's ``notify`` for the one URL in a worker pool of its own, awaited without
blocking the event loop. The pool is sized for the dispatcher's in-flight limit: apprise's built-in async
path shares one process-wide pool of (CPU count + 4) threads between every target, so a few dead targets
would stall all the others. Each URL's plugin gets the time limit as its connect and read timeout (unless the URL
sets ``cto`` / ``rto``), so a worker stuck on a dead target is freed after about ``time_limit`` seconds.

Must not import: redis, litestar, prometheus_client, or any module of this package outside ``senders``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Protocol

import apprise

from notifier.senders.direct import DirectTarget, HttpPool, direct_target
from notifier.senders.plugins import OUTGOING, WebhookMessage, register_plugins
from notifier.senders.urls import scrub, url_problem

_ERROR_LEVELS = {"WARNING", "ERROR", "CRITICAL"}
_REASON_MAX = 300
_LEVELS = {"info": "info", "success": "success", "warning": "warning", "failure": "failure"}


@dataclass(frozen=True)
class Outgoing:
    """One notification to one URL. ``url`` carries secrets: it is never shown."""

    url: str = field(repr=False)
    title: str
    body: str
    #: apprise notify type: info, success, warning or failure.
    level: str
    #: Stable message id (the delivery id): the ``webhook-id`` header of ``webhook://`` targets.
    message_id: str
    #: The JSON body ``webhook://`` targets receive.
    data: bytes


@dataclass(frozen=True)
class SendResult:
    ok: bool
    #: Why it failed, in a few words, with nothing secret of the URL in it.
    error: str | None = None


class Sender(Protocol):
    async def send(self, message: Outgoing, *, time_limit: float) -> SendResult: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class _Resolved:
    #: An ``apprise.Apprise`` holding the URL's one plugin, timeouts set.
    apprise: Any
    #: Set for the URLs sent over pooled connections (``direct``).
    direct: DirectTarget | None


class AppriseSender:
    """Sends through apprise; ``max_workers`` bounds the notifications in flight in this process.

    With ``pooled_http`` (the default), ``json://`` and ``webhook://`` URLs (and their TLS forms) are sent on
    keep-alive connections from the event loop (``notifier.senders.direct``); every other URL goes through its
    apprise plugin in the worker pool.
    """

    def __init__(self, *, max_workers: int = 64, cache_size: int = 1024, pooled_http: bool = True) -> None:
        register_plugins()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="notify")
        self._http = HttpPool(max_connections=max_workers) if pooled_http else None
        # Sequential, no apprise deadline: the call runs in our worker thread, timed by the plugin timeouts.
        self._asset = apprise.AppriseAsset(async_mode=False, service_timeout=0)
        self._cache: OrderedDict[tuple[str, float], _Resolved] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    async def send(self, message: Outgoing, *, time_limit: float) -> SendResult:
        try:
            resolved = self._resolve(message.url, time_limit)
        except Exception as exc:  # a plugin's constructor may raise anything
            return SendResult(False, scrub(f"cannot load the URL: {type(exc).__name__}", message.url))
        if resolved is None:
            return SendResult(False, url_problem(message.url) or "cannot be parsed as an apprise URL")
        if resolved.direct is not None and self._http is not None:
            request = resolved.direct.request(
                title=message.title,
                body=message.body,
                level=_LEVELS.get(message.level, "info"),
                message_id=message.message_id,
                data=message.data,
            )
            try:
                async with asyncio.timeout(time_limit + 1.0):
                    error = await self._http.send(resolved.direct, request, time_limit=time_limit)
            except TimeoutError:
                return SendResult(False, f"no answer within {time_limit:g} s")
            return SendResult(True) if error is None else SendResult(False, scrub(error, message.url))
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, self._send_blocking, message, resolved.apprise)
        try:
            return await asyncio.wait_for(future, time_limit + 1.0)
        except TimeoutError:
            return SendResult(False, f"no answer within {time_limit:g} s")

    async def aclose(self) -> None:
        """Stop taking work; sends already running end on their own within their time limit."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._http is not None:
            await self._http.aclose()

    def _resolve(self, url: str, timeout: float) -> _Resolved | None:
        key = (url, timeout)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        plugin = apprise.Apprise.instantiate(url, asset=self._asset)
        if plugin is None:
            return None
        lowered = url.lower()
        if "rto=" not in lowered:
            plugin.socket_read_timeout = timeout
        if "cto=" not in lowered:
            plugin.socket_connect_timeout = timeout
        obj = apprise.Apprise(asset=self._asset)
        obj.add(plugin)
        resolved = _Resolved(obj, direct_target(plugin))
        with self._lock:
            self._cache[key] = resolved
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return resolved

    def _send_blocking(self, message: Outgoing, obj: Any) -> SendResult:
        token = OUTGOING.set(WebhookMessage(id=message.message_id, body=message.data))
        try:
            result = obj.notify(
                body=message.body,
                title=message.title,
                notify_type=apprise.NotifyType(_LEVELS.get(message.level, "info")),
                body_format=apprise.NotifyFormat.TEXT,
            )
        except Exception as exc:  # a plugin bug must not take the dispatcher down
            logging.getLogger("notifier.senders").warning("apprise raised %s", type(exc).__name__)
            return SendResult(False, f"the apprise plugin raised {type(exc).__name__}")
        finally:
            OUTGOING.reset(token)
        if result:
            return SendResult(True)
        return SendResult(False, _reason(result, message.url))


def _reason(result: Any, url: str) -> str:
    messages: list[str] = []
    try:
        for entry in result.logs():
            if entry.level in _ERROR_LEVELS and entry.message not in messages:
                messages.append(str(entry.message))
    except Exception:  # logs are a convenience; the failure itself is what counts
        messages = []
    status = getattr(getattr(result, "status", None), "name", "FAILURE").lower()
    text = "; ".join(messages[-2:]) if messages else f"apprise reported {status}"
    text = scrub(text, url)
    return text if len(text) <= _REASON_MAX else text[: _REASON_MAX - 1] + "…"
