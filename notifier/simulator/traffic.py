"""Injected faults and the request log of the simulated Partner API.

Owns: ``Fault`` (a status code with an error code, an optional ``Retry-After`` and an optional delay, for the
next N requests of one endpoint or until cleared), ``FaultBook`` (the queue of faults per endpoint) and
``RequestLog`` (a counter per endpoint plus the query parameters of the last requests). Both are thread-safe.

Must not import: httpx, redis, apprise, litestar, uvicorn, or any notifier module outside ``notifier.simulator``.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass
from datetime import UTC, datetime

from notifier.simulator.records import ENDPOINTS, JsonObj, fmt_ms, to_ms

#: The documented ``error_code`` of an unexpected failure, per endpoint.
SERVER_ERROR_CODES: dict[str, str] = {
    "list_posts": "list_failed",
    "get_post": "get_failed",
    "list_accounts": "accounts_failed",
    "list_packs": "packs_list_failed",
    "get_pack": "pack_get_failed",
}

_DEFAULT_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    402: "subscription_required",
    403: "tier_not_allowed",
    404: "not_found",
    422: "invalid_query",
    429: "rate_limited",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


def check_endpoint(endpoint: str) -> str:
    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {', '.join(ENDPOINTS)}")
    return endpoint


@dataclass
class Fault:
    """What the next requests of one endpoint get instead of (or before) the normal answer.

    ``status`` None means "delay only": the request waits ``delay`` seconds, then is answered normally.
    ``body`` replaces the JSON error envelope with raw text (a proxy's HTML page, say).
    ``remaining`` None means until cleared.
    """

    endpoint: str
    status: int | None = 500
    error_code: str | None = None
    message: str | None = None
    retry_after: str | None = None
    delay: float = 0.0
    remaining: int | None = None
    body: str | None = None

    def envelope(self) -> JsonObj:
        assert self.status is not None
        code = self.error_code
        if code is None:
            code = SERVER_ERROR_CODES[self.endpoint] if self.status == 500 else _DEFAULT_CODES.get(self.status)
        body: JsonObj = {"ok": False, "code": self.status, "message": self.message or f"Injected {self.status}"}
        if code is not None:
            body["error_code"] = code
        return body

    def to_json(self) -> JsonObj:
        return {
            "endpoint": self.endpoint,
            "status": self.status,
            "error_code": self.error_code,
            "message": self.message,
            "retry_after": self.retry_after,
            "delay": self.delay,
            "remaining": self.remaining,
            "body": self.body,
        }


class FaultBook:
    """Per endpoint, a queue of faults; the head one answers until its count runs out."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, list[Fault]] = {}

    def add(self, fault: Fault) -> None:
        check_endpoint(fault.endpoint)
        if fault.remaining is not None and fault.remaining < 1:
            raise ValueError("times must be at least 1 (or None for until cleared)")
        if fault.delay < 0:
            raise ValueError("delay must not be negative")
        if fault.status is not None and not 100 <= fault.status <= 599:
            raise ValueError("status must be an HTTP status code")
        with self._lock:
            self._faults.setdefault(fault.endpoint, []).append(fault)

    def take(self, endpoint: str) -> Fault | None:
        """The fault this request gets, if any (counts it down)."""
        with self._lock:
            queue = self._faults.get(endpoint)
            if not queue:
                return None
            fault = queue[0]
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining == 0:
                    queue.pop(0)
            return fault

    def clear(self, endpoint: str | None = None) -> None:
        with self._lock:
            if endpoint is None:
                self._faults.clear()
            else:
                self._faults.pop(check_endpoint(endpoint), None)

    def pending(self) -> list[JsonObj]:
        with self._lock:
            return [f.to_json() for queue in self._faults.values() for f in queue]


class RequestLog:
    """How many requests each endpoint got, and the last ``keep`` requests (never the Authorization header)."""

    def __init__(self, keep: int = 1000) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._recent: deque[JsonObj] = deque(maxlen=keep)

    def record(self, endpoint: str, path: str, params: dict[str, str]) -> JsonObj:
        """Count a request on arrival; the caller sets ``status`` on the returned entry once answered."""
        entry: JsonObj = {
            "endpoint": endpoint,
            "path": path,
            "params": params,
            "status": None,
            "at": fmt_ms(to_ms(datetime.now(UTC))),
        }
        with self._lock:
            self._counts[endpoint] += 1
            self._recent.append(entry)
        return entry

    def finish(self, entry: JsonObj, status: int) -> None:
        with self._lock:
            entry["status"] = status

    def count(self, endpoint: str | None = None) -> int:
        with self._lock:
            return self._counts[endpoint] if endpoint is not None else sum(self._counts.values())

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {name: self._counts[name] for name in ENDPOINTS}

    def recent(self, endpoint: str | None = None, last: int | None = None) -> list[JsonObj]:
        """Oldest first; ``last`` keeps only the newest ones."""
        with self._lock:
            entries = [dict(e) for e in self._recent if endpoint is None or e["endpoint"] == endpoint]
        return entries[-last:] if last else entries

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()
            self._recent.clear()


class TrafficControls:
    """The fault and request-log half of ``SimState``'s control surface."""

    def __init__(self, keep_requests: int = 1000) -> None:
        self.faults = FaultBook()
        self.log = RequestLog(keep_requests)

    def inject_fault(
        self,
        endpoint: str,
        status: int | None = 500,
        *,
        error_code: str | None = None,
        message: str | None = None,
        retry_after: float | str | None = None,
        delay: float = 0.0,
        times: int | None = None,
        body: str | None = None,
    ) -> None:
        """The next ``times`` requests of ``endpoint`` (None: until cleared) wait ``delay`` seconds, then get
        ``status`` (None: the normal answer). Faults queue up per endpoint, first in first served."""
        retry = None if retry_after is None else str(retry_after).removesuffix(".0")
        self.faults.add(Fault(endpoint, status, error_code, message, retry, float(delay), times, body))

    def clear_faults(self, endpoint: str | None = None) -> None:
        self.faults.clear(endpoint)

    def pending_faults(self) -> list[JsonObj]:
        return self.faults.pending()

    def request_count(self, endpoint: str | None = None) -> int:
        """Requests received by one endpoint (all endpoints when None), answered or not."""
        return self.log.count(endpoint)

    def request_counts(self) -> dict[str, int]:
        return self.log.counts()

    def recent_requests(self, endpoint: str | None = None, last: int | None = None) -> list[JsonObj]:
        """The latest requests, oldest first: endpoint, path, params, status, at."""
        return self.log.recent(endpoint, last)

    def reset_requests(self) -> None:
        self.log.clear()
