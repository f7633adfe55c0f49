"""HTTP targets sent over pooled keep-alive connections: ``json://``, ``jsons://``, ``webhook://``, ``webhooks://``.

apprise parses and validates every URL, and for these schemes its plugin object holds everything the request
needs; ``direct_target`` reads it into a ``DirectTarget`` (method, URL, query, headers, basic auth, TLS check,
redirects, timeouts), and ``DirectTarget.request`` gives the request for one notification: byte for byte the
body and headers apprise's plugin would send (tests compare the two on a real receiver). ``HttpPool`` sends it
on keep-alive connections, so consecutive notifications to one target reuse a connection, where the
plugins open a new one through ``requests`` for every notification, in a worker thread.

A plugin that is not exactly one of these two classes, or a setting this module does not reproduce (a user
without a password, a header that is not ASCII), gives ``None``: that URL goes through apprise as it is.

Must not import: redis, litestar, prometheus_client, or any module of this package outside ``senders``.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import httpx
from apprise.plugins.custom_json import NotifyJSON

from notifier.senders.plugins import NotifyBase, WebhookMessage, WebhookPlugin

_JSON_VERSION = "1.0"


@dataclass(frozen=True)
class HttpRequest:
    """One request to send. All but the method may carry secrets (a token in the path, query or a header)."""

    method: str
    url: str = field(repr=False)
    params: dict[str, str] = field(repr=False)
    headers: dict[str, str] = field(repr=False)
    content: bytes = field(repr=False)
    auth: tuple[str, str] | None = field(repr=False)


@dataclass(frozen=True)
class DirectTarget:
    """The fixed part of the requests to one URL; ``url`` and ``auth`` may carry secrets and are not shown."""

    kind: str  # "json" or "webhook"
    host: str
    method: str
    url: str = field(repr=False)
    params: dict[str, str] = field(repr=False)
    headers: dict[str, str] = field(repr=False)
    auth: tuple[str, str] | None = field(repr=False)
    verify: bool
    follow_redirects: bool
    connect_timeout: float
    read_timeout: float
    #: json://: the ``:key=value`` payload extras (rename, drop or add fields), in the URL's order.
    payload_extras: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    #: webhook://: the plugin, which signs.
    plugin: Any = field(default=None, repr=False)

    def request(self, *, title: str, body: str, level: str, message_id: str, data: bytes) -> HttpRequest:
        if self.kind == "webhook":
            url, headers, content = self.plugin.request_parts(WebhookMessage(id=message_id, body=data), time.time())
            return HttpRequest("POST", url, {}, headers, content, None)
        payload: dict[str, Any] = {
            "version": _JSON_VERSION,
            "title": title,
            "message": body,
            "attachments": [],
            "type": level,
        }
        for key, value in self.payload_extras:
            if key in payload:
                if not value:
                    del payload[key]
                else:
                    payload[value] = payload.pop(key)
            else:
                payload[key] = value
        return HttpRequest(self.method, self.url, self.params, self.headers, json.dumps(payload).encode(), self.auth)


def direct_target(plugin: Any) -> DirectTarget | None:
    """The pooled-HTTP form of an apprise plugin object, or ``None`` when it must go through apprise."""
    kind = type(plugin)
    if kind is WebhookPlugin:
        return DirectTarget(
            kind="webhook",
            host=plugin.host,
            method="POST",
            url=plugin.target,
            params={},
            headers={},
            auth=None,
            verify=bool(plugin.verify_certificate),
            follow_redirects=False,
            connect_timeout=float(plugin.socket_connect_timeout),
            read_timeout=float(plugin.socket_read_timeout),
            plugin=plugin,
        )
    if kind is not NotifyJSON:
        return None
    if plugin.user and plugin.password is None:
        return None  # requests would send the text "None" as the password; leave that to apprise
    if not all(str(k).isascii() and str(v).isascii() for k, v in plugin.headers.items()):
        return None  # requests sends such headers in Latin-1, httpx refuses them; leave them to apprise
    port = f":{plugin.port}" if isinstance(plugin.port, int) else ""
    scheme = "https" if plugin.secure else "http"
    headers = {"User-Agent": str(plugin.app_id), "Content-Type": "application/json"}
    headers.update({str(k): str(v) for k, v in plugin.headers.items()})
    return DirectTarget(
        kind="json",
        host=plugin.host,
        method=plugin.method,
        url=f"{scheme}://{plugin.host}{port}{plugin.fullpath}",
        params={str(k): str(v) for k, v in plugin.params.items()},
        headers=headers,
        auth=(str(plugin.user), str(plugin.password)) if plugin.user else None,
        verify=bool(plugin.verify_certificate),
        follow_redirects=bool(plugin.redirects),
        connect_timeout=float(plugin.socket_connect_timeout),
        read_timeout=float(plugin.socket_read_timeout),
        payload_extras=tuple((str(k), str(v)) for k, v in plugin.payload_extras.items()),
    )


@dataclass
class _Client:
    client: httpx.AsyncClient
    in_flight: int = 0


class HttpPool:
    """Keep-alive connections for the direct targets: one small ``httpx.AsyncClient`` per target URL.

    One client per target, not one for all: httpx's connection pool does work in proportion to its
    connections on every request, so a single client shared by 64 sends in flight runs at about a third of
    the rate of many clients with a few each. At most ``max_clients`` are kept; the least recently used idle
    one is closed to make room.
    """

    def __init__(self, *, max_connections: int, max_clients: int = 256, keepalive: int = 4) -> None:
        # Idle connections are dropped after 4 s, before the 5 s after which common servers close theirs: a
        # request sent on a connection the server is closing fails (and is retried later).
        self._limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=keepalive, keepalive_expiry=4.0
        )
        self._max_clients = max_clients
        self._clients: OrderedDict[tuple[str, bool], _Client] = OrderedDict()
        self._closing: set[asyncio.Task[None]] = set()
        #: One TLS context per verification mode, shared by the clients: making one loads the CA bundle (~40 ms).
        self._tls: dict[bool, ssl.SSLContext] = {}

    def _tls_context(self, verify: bool) -> ssl.SSLContext:
        context = self._tls.get(verify)
        if context is None:
            context = self._tls[verify] = httpx.create_ssl_context(verify=verify)
        return context

    def _acquire(self, target: DirectTarget) -> _Client:
        key = (target.url, target.verify)
        entry = self._clients.get(key)
        if entry is None:
            entry = self._clients[key] = _Client(
                httpx.AsyncClient(limits=self._limits, verify=self._tls_context(target.verify))
            )
            self._evict()
        else:
            self._clients.move_to_end(key)
        entry.in_flight += 1
        return entry

    def _evict(self) -> None:
        excess = len(self._clients) - self._max_clients
        for key in [k for k, e in self._clients.items() if e.in_flight == 0][: max(0, excess)]:
            task = asyncio.create_task(self._clients.pop(key).client.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def send(self, target: DirectTarget, request: HttpRequest, *, time_limit: float) -> str | None:
        """Send one request; ``None`` when the target answered 2xx, else why not (no secret of the URL)."""
        timeout = httpx.Timeout(
            connect=target.connect_timeout, read=target.read_timeout, write=target.read_timeout, pool=time_limit
        )
        entry = self._acquire(target)
        try:
            response = await entry.client.request(
                request.method,
                request.url,
                params=request.params or None,
                headers=request.headers,
                content=request.content,
                auth=request.auth,
                timeout=timeout,
                follow_redirects=target.follow_redirects,
            )
        except httpx.TimeoutException as exc:
            return f"No answer from {target.host} in time ({type(exc).__name__})"
        except httpx.HTTPError as exc:
            return f"Connection error sending to {target.host} ({type(exc).__name__})"
        except Exception as exc:  # a request httpx cannot even build must not take the dispatcher down
            return f"Could not send to {target.host} ({type(exc).__name__})"
        finally:
            entry.in_flight -= 1
        if 200 <= response.status_code < 300:
            return None
        reason = NotifyBase.http_response_code_lookup(response.status_code)
        what = "Webhook" if target.kind == "webhook" else f"JSON {request.method}"
        return f"{what} answered HTTP {response.status_code}" + (f" {reason}" if reason else "")

    async def aclose(self) -> None:
        clients = [e.client for e in self._clients.values()]
        self._clients.clear()
        for client in clients:
            await client.aclose()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
