"""Records of the simulated Partner API and how they are written on the wire.

Owns: the mutable records the simulator keeps (scopes, accounts, posts with per-account deliveries, packs with
images), timestamp reading/writing in the API's own form (``2025-01-20T12:05:11.205Z``), and the functions that
turn a record into the JSON object the documented endpoints return.

Must not import: httpx, redis, apprise, litestar, uvicorn, or any notifier module outside ``notifier.simulator``.
The simulator is an independent model of the API, so it shares no code with the client it is used to test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

JsonObj = dict[str, Any]
_T = TypeVar("_T")

#: Endpoint names used by faults and request counters.
ENDPOINTS: tuple[str, ...] = ("list_posts", "get_post", "list_accounts", "list_packs", "get_pack")
#: The lifecycle buckets ``summary.by_status`` counts (other statuses only count in ``total``).
SUMMARY_BUCKETS: tuple[str, ...] = ("draft", "pending", "scheduled", "posted", "partial", "failed")
#: Statuses ``GET /posts?status=`` documents.
FILTER_STATUSES: tuple[str, ...] = ("draft", "pending", "scheduled", "posted", "failed", "partial", "retry")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --------------------------------------------------------------------------------------------------
# Time


def parse_iso(value: str) -> datetime:
    """Parse an ISO 8601 timestamp (``Z``, an offset, or naive meaning UTC). Raises ``ValueError``."""
    parsed = datetime.fromisoformat(value.strip())
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def to_us(value: datetime) -> int:
    """Microseconds since the epoch."""
    return (value - _EPOCH) // timedelta(microseconds=1)


def to_ms(value: datetime | str) -> int:
    """Milliseconds since the epoch of a datetime or an ISO string (truncated, never rounded up)."""
    return to_us(parse_iso(value) if isinstance(value, str) else _aware(value)) // 1000


def fmt_ms(ms: int) -> str:
    """``2025-01-20T12:05:11.205Z``: UTC, milliseconds, ``Z`` (created_at, published_at ...)."""
    moment = _EPOCH + timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def fmt_seconds(value: datetime) -> str:
    """``2025-02-01T15:00:00Z``: UTC, whole seconds, ``Z`` (how the pages write scheduled_at)."""
    return _aware(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ts_text(value: datetime | str | None, *, seconds: bool = False) -> str | None:
    """A timestamp field as stored: strings are kept as given (after checking they parse), datetimes formatted."""
    if value is None:
        return None
    if isinstance(value, str):
        parse_iso(value)
        return value
    return fmt_seconds(value) if seconds else fmt_ms(to_ms(value))


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# --------------------------------------------------------------------------------------------------
# Records


@dataclass
class Scope:
    """What an API key resolves to: a workspace, or a person's personal space (``workspace_id`` None)."""

    kind: str
    owner_user_id: str
    workspace_id: str | None

    @property
    def id(self) -> str:
        return self.workspace_id or self.owner_user_id


@dataclass
class AccountRec:
    id: str
    scope_id: str
    platform: str
    type: str = "byo"
    username: str | None = None
    display_name: str | None = None
    status: str = "active"
    #: Inactive accounts are still owned by the scope but ``GET /accounts`` leaves them out.
    active: bool = True


@dataclass
class DeliveryRec:
    account_id: str
    status: str
    published_at: str | None = None
    error_message: str | None = None
    last_attempted_at: str | None = None
    published_url: str | None = None


DELIVERY_FIELDS: frozenset[str] = frozenset(
    {"status", "published_at", "error_message", "last_attempted_at", "published_url"}
)


@dataclass
class PostRec:
    id: str
    status: str
    created_ms: int
    caption: str = ""
    scheduled_at: str | None = None
    media: JsonObj | None = None
    music_url: str | None = None
    tiktok: JsonObj | None = None
    pinterest: JsonObj | None = None
    deliveries: list[DeliveryRec] = field(default_factory=list)
    #: Scopes owning at least one delivery's account (kept up to date by the state).
    scopes: frozenset[str] = frozenset()

    @property
    def key(self) -> tuple[int, str]:
        """Position in the created_at index (ascending; the API reads it backwards)."""
        return (self.created_ms, self.id)


@dataclass
class PackImageRec:
    id: str
    url: str
    created_ms: int


@dataclass
class PackRec:
    id: str
    scope_id: str
    name: str
    created_ms: int
    is_public: bool = False
    preview_image_url: str | None = None
    images: list[PackImageRec] = field(default_factory=list)


def lookup(table: dict[str, _T], key: str, what: str) -> _T:
    """``table[key]``, or a ``KeyError`` saying which record is missing."""
    try:
        return table[key]
    except KeyError:
        raise KeyError(f"{what} {key} not found") from None


def check_fields(fields: dict[str, Any], allowed: frozenset[str], what: str) -> None:
    """Refuse field names a record does not have (names the allowed ones)."""
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(
            f"unknown {what} field(s): {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(allowed))}"
        )


# --------------------------------------------------------------------------------------------------
# Wire forms


def delivery_wire(rec: DeliveryRec) -> JsonObj:
    return {
        "account_id": rec.account_id,
        "status": rec.status,
        "published_at": rec.published_at,
        "error_message": rec.error_message,
        "last_attempted_at": rec.last_attempted_at,
        "published_url": rec.published_url,
    }


def post_wire(rec: PostRec, states: list[DeliveryRec]) -> JsonObj:
    """A post as ``GET /posts`` and ``GET /posts/{id}`` return it, listing only ``states``."""
    return {
        "id": rec.id,
        "caption": rec.caption,
        "status": rec.status,
        "scheduled_at": rec.scheduled_at,
        "created_at": fmt_ms(rec.created_ms),
        "media": dict(rec.media) if rec.media is not None else None,
        "music_url": rec.music_url,
        "tiktok": dict(rec.tiktok) if rec.tiktok is not None else None,
        "pinterest": dict(rec.pinterest) if rec.pinterest is not None else None,
        "accounts": {"total": len(states), "states": [delivery_wire(s) for s in states]},
    }


def account_wire(rec: AccountRec, scope: Scope) -> JsonObj:
    return {
        "id": rec.id,
        "platform": rec.platform,
        "type": rec.type,
        "username": rec.username,
        "display_name": rec.display_name,
        "status": rec.status,
        "workspace_id": scope.workspace_id,
    }


def pack_summary_wire(rec: PackRec) -> JsonObj:
    preview = rec.preview_image_url
    if preview is None and rec.images:
        preview = min(rec.images, key=lambda i: i.created_ms).url
    return {
        "id": rec.id,
        "name": rec.name,
        "image_count": len(rec.images),
        "preview_image_url": preview,
        "is_public": rec.is_public,
        "created_at": fmt_ms(rec.created_ms),
    }


def pack_detail_wire(rec: PackRec) -> JsonObj:
    images = sorted(rec.images, key=lambda i: i.created_ms)  # stable: equal times keep insertion order
    return {
        "id": rec.id,
        "name": rec.name,
        "image_count": len(images),
        "is_public": rec.is_public,
        "created_at": fmt_ms(rec.created_ms),
        "images": [{"id": i.id, "url": i.url} for i in images],
    }


def summary_wire(counts: dict[str, int]) -> JsonObj:
    """``summary`` from per-status counts of every post in scope."""
    by_status = {bucket: counts.get(bucket, 0) for bucket in SUMMARY_BUCKETS}
    return {
        "total": sum(counts.values()),
        "pending": by_status["pending"] + by_status["scheduled"],
        "published": by_status["posted"] + by_status["partial"],
        "by_status": by_status,
    }
