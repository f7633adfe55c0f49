"""The async Partner API client: five GET endpoints, decoded into the wire structs of ``notifier.models``.

Owns: request building (bearer auth, query parameters, quoted path ids), decoding of the success envelope
``{"ok": true, "code": 200, "message": ..., "data": {...}}``, translation of every failure into the
``PartnerApiError`` tree of ``notifier.errors``, retries (exponential backoff with full jitter on 5xx, timeouts
and connection errors; ``Retry-After`` on 429 and 503), and the per-attempt request metrics.

How a response becomes a result or an error::

    2xx, envelope decodes ........................ the struct (PostsPage, Post, AccountsPage, PacksPage, PackDetail)
    2xx, body does not decode .................... ServerError        code "bad_response" (not retried)
    401 / 402 / 403 / 404 ........................ Unauthorized / SubscriptionRequired / TierNotAllowed / NotFound
    400 / 422 .................................... InvalidRequest     code from the body (invalid_since, ...)
    429 .......................................... RateLimited        retried after Retry-After (or backoff)
    5xx .......................................... ServerError        retried with backoff (503: Retry-After)
    timeout / connection error ................... TransportError     code "timeout" / "connection_error", retried

The API key is sent only in the ``Authorization`` header: it never appears in a log record, a repr or an
exception text (messages from the server are scrubbed of it too). ``api_key_id`` gives a non-secret id.

Must not import: redis, apprise, litestar, or any module of this package other than ``notifier.models``,
``notifier.errors``, ``notifier.config`` and ``notifier.metrics``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from notifier.config import Settings
from notifier.errors import (
    InvalidRequest,
    NotFound,
    PartnerApiError,
    RateLimited,
    ServerError,
    SubscriptionRequired,
    TierNotAllowed,
    TransportError,
    Unauthorized,
)
from notifier.metrics import Metrics
from notifier.models import AccountsPage, PackDetail, PacksPage, Post, PostsPage

log = logging.getLogger("notifier.genviral")

T = TypeVar("T")

#: The API clamps page sizes to this range; we clamp too, so a short page really means the last one.
MIN_LIMIT, MAX_LIMIT = 1, 100
USER_AGENT = "genviral-notifier"


def api_key_id(api_key: str) -> str:
    """A non-secret id of an API key (first 16 hex chars of its SHA-256), fit for Redis keys and logs."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class RetryPolicy:
    """How many times a request is tried, and how long to wait between tries.

    The n-th retry waits ``min(max_delay, base_delay * 2 ** (n - 1))``, scaled by a uniform random factor in
    [0, 1) when ``jitter`` is on (full jitter). A ``Retry-After`` (429, 503) is waited as given, unless it exceeds
    ``max_retry_after``: then the error is raised at once, carrying ``retry_after`` for the caller to honour.
    """

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    jitter: bool = True
    #: Source of the jitter factor in [0, 1).
    rng: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def backoff(self, retry: int) -> float:
        """Seconds to wait before the ``retry``-th retry (1-based)."""
        cap = min(self.max_delay, self.base_delay * 2.0 ** max(retry - 1, 0))
        return cap * self.rng() if self.jitter else cap


class _Envelope(msgspec.Struct, Generic[T]):
    data: T
    ok: bool = True


_DECODERS: dict[type[Any], msgspec.json.Decoder[Any]] = {
    PostsPage: msgspec.json.Decoder(_Envelope[PostsPage]),
    Post: msgspec.json.Decoder(_Envelope[Post]),
    AccountsPage: msgspec.json.Decoder(_Envelope[AccountsPage]),
    PacksPage: msgspec.json.Decoder(_Envelope[PacksPage]),
    PackDetail: msgspec.json.Decoder(_Envelope[PackDetail]),
}

_ERRORS_BY_STATUS: dict[int, type[PartnerApiError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    402: SubscriptionRequired,
    403: TierNotAllowed,
    404: NotFound,
    422: InvalidRequest,
    429: RateLimited,
}
#: Statuses whose ``Retry-After`` header is honoured.
_RETRY_AFTER_STATUSES = frozenset({429, 503})


class PartnerClient:
    """Calls the Partner API with one key. Takes a ready ``httpx.AsyncClient``; ``from_settings`` owns its own."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: str,
        metrics: Metrics | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        timeout: float | None = None,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._key_id = api_key_id(api_key)
        self._metrics = metrics
        self._retry = retry if retry is not None else RetryPolicy()
        self._sleep = sleep
        self._timeout = timeout
        self._owns_http = False

    @classmethod
    def from_settings(cls, settings: Settings, metrics: Metrics | None = None) -> PartnerClient:
        """A client with its own ``httpx.AsyncClient`` (closed by ``aclose``), timeouts from the settings."""
        http = httpx.AsyncClient(timeout=settings.request_timeout)
        client = cls(
            http,
            base_url=settings.genviral_base_url,
            api_key=settings.genviral_api_key,
            metrics=metrics,
            timeout=settings.request_timeout,
        )
        client._owns_http = True
        return client

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it; a client passed in is left to its owner."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> PartnerClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"PartnerClient(base_url={self._base_url!r}, key_id={self._key_id!r})"

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def base_url(self) -> str:
        return self._base_url

    # ----------------------------------------------------------------------------------------------
    # Endpoints.

    async def list_posts(
        self, *, status: str | None = None, limit: int = 100, since: str | None = None, until: str | None = None
    ) -> PostsPage:
        """``GET /posts``: newest posts first (by ``created_at``), at most ``limit`` (clamped to 1..100)."""
        params: dict[str, str] = {"limit": str(_clamp(limit))}
        for name, value in (("status", status), ("since", since), ("until", until)):
            if value is not None:
                params[name] = value
        return await self._get("list_posts", "/posts", params, PostsPage)

    async def get_post(self, post_id: str) -> Post:
        """``GET /posts/{id}``: one post with every account's delivery state."""
        if not post_id:
            raise InvalidRequest("post id is empty", code="missing_post_id", endpoint="get_post")
        return await self._get("get_post", f"/posts/{quote(post_id, safe='')}", {}, Post)

    async def list_accounts(self) -> AccountsPage:
        """``GET /accounts``: the key's scope and its active accounts."""
        return await self._get("list_accounts", "/accounts", {}, AccountsPage)

    async def list_packs(
        self, *, search: str | None = None, limit: int = 100, offset: int = 0, include_public: bool = False
    ) -> PacksPage:
        """``GET /packs``: pack summaries; ``include_public`` is always sent (the API defaults it to true)."""
        params = {
            "limit": str(_clamp(limit)),
            "offset": str(offset),
            "include_public": "true" if include_public else "false",
        }
        if search is not None:
            params["search"] = search
        return await self._get("list_packs", "/packs", params, PacksPage)

    async def get_pack(self, pack_id: str) -> PackDetail:
        """``GET /packs/{packId}``: one pack with its images."""
        if not pack_id:
            raise InvalidRequest("pack id is empty", code="missing_pack_id", endpoint="get_pack")
        return await self._get("get_pack", f"/packs/{quote(pack_id, safe='')}", {}, PackDetail)

    # ----------------------------------------------------------------------------------------------
    # Machinery.

    async def _get(self, endpoint: str, path: str, params: Mapping[str, str], model: type[T]) -> T:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._send(endpoint, path, params)
                return self._decode(endpoint, response, model)
            except PartnerApiError as exc:
                delay = self._delay_before_retry(exc, attempt)
                if delay is None:
                    raise
                log.warning(
                    "partner api %s failed (%s), retry %d of %d in %.2fs",
                    endpoint,
                    exc.code if exc.status is None else f"{exc.status} {exc.code}",
                    attempt,
                    self._retry.attempts - 1,
                    delay,
                )
                await self._sleep(delay)

    def _delay_before_retry(self, exc: PartnerApiError, attempt: int) -> float | None:
        """Seconds to wait before trying again, or None to give up now."""
        if not exc.retryable or attempt >= self._retry.attempts:
            return None
        if exc.retry_after is not None:
            return None if exc.retry_after > self._retry.max_retry_after else exc.retry_after
        return self._retry.backoff(attempt)

    async def _send(self, endpoint: str, path: str, params: Mapping[str, str]) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        timeout: Any = self._timeout if self._timeout is not None else httpx.USE_CLIENT_DEFAULT
        started = time.perf_counter()
        try:
            response = await self._http.get(self._base_url + path, params=params, headers=headers, timeout=timeout)
        except httpx.RequestError as exc:  # transport failures, plus undecodable content encodings
            code = "timeout" if isinstance(exc, httpx.TimeoutException) else "connection_error"
            self._observe(endpoint, code, started)
            detail = self._scrub(str(exc)) or type(exc).__name__
            log.debug("partner api %s: %s (%s)", endpoint, code, detail)
            raise TransportError(detail, code=code, endpoint=endpoint) from exc
        self._observe(endpoint, str(response.status_code), started)
        log.debug("partner api %s: %d in %.3fs", endpoint, response.status_code, time.perf_counter() - started)
        return response

    def _observe(self, endpoint: str, code: str, started: float) -> None:
        if self._metrics is not None:
            self._metrics.partner_api_requests.labels(endpoint, code).inc()
            self._metrics.partner_api_request_duration.labels(endpoint).observe(time.perf_counter() - started)

    def _decode(self, endpoint: str, response: httpx.Response, model: type[T]) -> T:
        status = response.status_code
        if not 200 <= status < 300:
            raise self._error(endpoint, response)
        try:
            envelope: _Envelope[T] = _DECODERS[model].decode(response.content)
        except msgspec.DecodeError as exc:
            body = _json_object(response.content)
            if body is not None and body.get("ok") is False:
                raise self._error(endpoint, response, body) from None
            error = ServerError(
                f"response does not match the documented shape: {self._scrub(str(exc))}",
                status=status,
                code="bad_response",
                endpoint=endpoint,
            )
            error.retryable = False
            raise error from None
        if not envelope.ok:
            raise self._error(endpoint, response)
        return envelope.data

    def _error(self, endpoint: str, response: httpx.Response, body: dict[str, Any] | None = None) -> PartnerApiError:
        """The exception for an error response (or a 2xx whose envelope says ``ok: false``)."""
        body = body if body is not None else _json_object(response.content)
        status = response.status_code
        if 200 <= status < 300:  # an "ok": false envelope: its numeric code is the real status
            envelope_status = body.get("code") if body is not None else None
            status = envelope_status if isinstance(envelope_status, int) and envelope_status >= 400 else 500
        message = _text(body, "message") or response.reason_phrase or f"HTTP {status}"
        code = _text(body, "error_code") or _text(body, "error") or _text(body, "code")
        cls = _ERRORS_BY_STATUS.get(status) or (ServerError if status >= 500 else PartnerApiError)
        retry_after = None
        if status in _RETRY_AFTER_STATUSES:
            retry_after = _retry_after(response.headers)
        if cls is PartnerApiError and not code:
            code = f"http_{status}"
        return cls(self._scrub(message)[:300], status=status, code=code, endpoint=endpoint, retry_after=retry_after)

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text


def _clamp(limit: int) -> int:
    return max(MIN_LIMIT, min(MAX_LIMIT, int(limit)))


def _json_object(content: bytes) -> dict[str, Any] | None:
    try:
        value = msgspec.json.decode(content)
    except msgspec.DecodeError:
        return None
    return value if isinstance(value, dict) else None


def _text(body: dict[str, Any] | None, name: str) -> str | None:
    value = body.get(name) if body is not None else None
    return value if isinstance(value, str) and value else None


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds from ``Retry-After`` (delta-seconds or an HTTP date, relative to ``Date`` when sent), or None."""
    raw = headers.get("retry-after", "").strip()
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    when = _http_date(raw)
    if when is None:
        return None
    now = _http_date(headers.get("date", ""))
    return max(when - (now if now is not None else time.time()), 0.0)


def _http_date(value: str) -> float | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:  # "-0000" or no zone: HTTP dates are always GMT
        return parsed.replace(tzinfo=UTC).timestamp()
    return parsed.timestamp()
