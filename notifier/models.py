"""Values every part of the service passes around: wire states, snapshots, events, subscriptions.

Owns: the typed shape of what the Partner API returns (``Post``, ``Account``, ``Pack`` ...), the compact
snapshots kept in Redis (``PostSnap`` ...), the ``Event`` a transition becomes, and the ``Subscription`` /
``Delivery`` records of the delivery side.

Must not import: httpx, redis, apprise, litestar, prometheus_client, or any other module of this package
except ``notifier.errors``. Nothing here reads the clock or the environment.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import msgspec


class Platform(StrEnum):
    TIKTOK = "tiktok"
    INSTAGRAM = "instagram"
    YOUTUBE = "youtube"
    PINTEREST = "pinterest"
    LINKEDIN = "linkedin"
    FACEBOOK = "facebook"


class EventType(StrEnum):
    POST_STATUS_CHANGED = "post.status_changed"
    POST_POSTED = "post.posted"
    POST_FAILED = "post.failed"
    POST_PARTIAL = "post.partial"
    POST_OVERDUE = "post.overdue"
    DELIVERY_POSTED = "delivery.posted"
    DELIVERY_FAILED = "delivery.failed"
    DELIVERY_PUBLISHED = "delivery.published"
    ACCOUNT_ADDED = "account.added"
    ACCOUNT_REMOVED = "account.removed"
    ACCOUNT_CHANGED = "account.changed"
    PACK_ADDED = "pack.added"
    PACK_CHANGED = "pack.changed"


EVENT_TYPES: tuple[str, ...] = tuple(t.value for t in EventType)

#: Statuses the list endpoint can filter on.
POST_STATUSES: tuple[str, ...] = ("draft", "pending", "scheduled", "posted", "failed", "partial", "retry")
#: Posts in these statuses may still change on their own: the poller sweeps them every cycle.
OPEN_STATUSES: frozenset[str] = frozenset({"draft", "pending", "scheduled", "retry"})
#: The buckets ``summary.by_status`` counts (``retry`` is filterable but not counted).
COUNTED_STATUSES: frozenset[str] = frozenset({"draft", "pending", "scheduled", "posted", "partial", "failed"})
#: A post still in one of these past ``scheduled_at`` + overdue window raises ``post.overdue``.
AWAITING_STATUSES: frozenset[str] = frozenset({"scheduled", "pending"})


# --------------------------------------------------------------------------------------------------
# Wire format: what the Partner API returns (unknown extra fields are ignored by msgspec).


class Media(msgspec.Struct, frozen=True):
    type: str | None = None
    url: str | None = None
    urls: list[str] | None = None


class DeliveryState(msgspec.Struct, frozen=True):
    """One account's delivery of a post (``accounts.states[]``)."""

    account_id: str
    status: str
    published_at: str | None = None
    error_message: str | None = None
    last_attempted_at: str | None = None
    published_url: str | None = None


class PostAccounts(msgspec.Struct, frozen=True):
    total: int = 0
    states: list[DeliveryState] = []


class Post(msgspec.Struct, frozen=True):
    id: str
    status: str
    created_at: str
    caption: str = ""
    scheduled_at: str | None = None
    media: Media | None = None
    music_url: str | None = None
    tiktok: dict[str, Any] | None = None
    pinterest: dict[str, Any] | None = None
    accounts: PostAccounts = PostAccounts()


class PostsSummary(msgspec.Struct, frozen=True):
    total: int = 0
    pending: int = 0
    published: int = 0
    by_status: dict[str, int] = {}


class PostsPage(msgspec.Struct, frozen=True):
    summary: PostsSummary
    posts: list[Post]


class Account(msgspec.Struct, frozen=True):
    id: str
    platform: str
    type: str | None = None
    username: str | None = None
    display_name: str | None = None
    status: str | None = None
    workspace_id: str | None = None


class AccountsPage(msgspec.Struct, frozen=True):
    scope: str
    owner_user_id: str
    accounts: list[Account]
    workspace_id: str | None = None

    @property
    def scope_id(self) -> str:
        """The scope events carry: the workspace id, or the owner user id for personal keys."""
        return self.workspace_id or self.owner_user_id


class Pack(msgspec.Struct, frozen=True):
    id: str
    name: str
    image_count: int = 0
    is_public: bool = False
    created_at: str | None = None
    preview_image_url: str | None = None


class PackImage(msgspec.Struct, frozen=True):
    id: str
    url: str


class PackDetail(msgspec.Struct, frozen=True):
    id: str
    name: str
    image_count: int = 0
    is_public: bool = False
    created_at: str | None = None
    images: list[PackImage] = []


class PacksPage(msgspec.Struct, frozen=True):
    packs: list[Pack]
    total: int = 0
    limit: int = 20
    offset: int = 0


# --------------------------------------------------------------------------------------------------
# Snapshots: the compact state kept in Redis between cycles. ``array_like`` keeps them small.


class DeliverySnap(msgspec.Struct, frozen=True, array_like=True):
    account_id: str
    status: str
    error_message: str | None = None
    published_url: str | None = None
    published_at: str | None = None
    last_attempted_at: str | None = None


class PostSnap(msgspec.Struct, frozen=True, array_like=True):
    """What we remember of a post. ``v`` grows by one on every watched change (it makes event ids unique)."""

    v: int
    status: str
    created_at: str
    scheduled_at: str | None
    caption: str
    media_type: str | None
    deliveries: tuple[DeliverySnap, ...]
    #: ``post.overdue`` was raised for the current ``scheduled_at``.
    overdue: bool = False


class AccountSnap(msgspec.Struct, frozen=True, array_like=True):
    v: int
    platform: str
    username: str | None
    display_name: str | None
    status: str | None
    #: Tombstone: the account vanished (kept so a return gets a fresh version, hence fresh event ids).
    removed: bool = False


class PackSnap(msgspec.Struct, frozen=True, array_like=True):
    v: int
    name: str
    image_count: int
    removed: bool = False


# --------------------------------------------------------------------------------------------------
# Events: one transition, as stored in the stream, shown by the API and posted to webhooks.


class PostRef(msgspec.Struct, frozen=True):
    id: str
    caption: str
    status: str
    scheduled_at: str | None
    created_at: str
    media_type: str | None
    #: The accounts the post goes to, and their platforms (for subscription filters).
    account_ids: list[str] = []
    platforms: list[str] = []


class AccountRef(msgspec.Struct, frozen=True):
    id: str
    platform: str | None = None
    username: str | None = None
    display_name: str | None = None


class PackRef(msgspec.Struct, frozen=True):
    id: str
    name: str
    image_count: int


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """A transition. ``id`` is stable (the same transition found twice has the same id) and unique."""

    id: str
    type: str
    detected_at: str
    scope: str
    post: PostRef | None = None
    account: AccountRef | None = None
    pack: PackRef | None = None
    previous: dict[str, Any] | None = None
    current: dict[str, Any] | None = None

    @property
    def subject_id(self) -> str:
        """The id a person looks for: the post id, else the account or pack id."""
        if self.post is not None:
            return self.post.id
        if self.account is not None:
            return self.account.id
        return self.pack.id if self.pack is not None else ""

    @property
    def platforms(self) -> list[str]:
        """Platforms the event concerns: its account's, else those of the post's accounts."""
        if self.account is not None and self.account.platform:
            return [self.account.platform]
        return list(self.post.platforms) if self.post is not None else []

    @property
    def account_ids(self) -> list[str]:
        """Accounts the event concerns: its account, else the post's accounts."""
        if self.account is not None:
            return [self.account.id]
        return list(self.post.account_ids) if self.post is not None else []


# --------------------------------------------------------------------------------------------------
# Delivery side.


class SubscriptionSource(StrEnum):
    API = "api"
    CONFIG = "config"


class SubscriptionFilters(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    platforms: list[str] = []
    account_ids: list[str] = []


class Templates(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Optional per-subscription overrides of the notification text (sandboxed Jinja2)."""

    title: str | None = None
    body: str | None = None


class Subscription(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    urls: list[str]
    events: list[str]
    filters: SubscriptionFilters = SubscriptionFilters()
    enabled: bool = True
    source: str = SubscriptionSource.API.value
    templates: Templates | None = None
    #: More than this many events for this subscription in one batch become one summary notification.
    storm_threshold: int = 10
    created_at: str = ""
    updated_at: str = ""


class SubscriptionInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a client sends to create a subscription (``id``, ``source`` and timestamps are the server's)."""

    name: str
    urls: list[str]
    events: list[str]
    filters: SubscriptionFilters = SubscriptionFilters()
    enabled: bool = True
    templates: Templates | None = None
    storm_threshold: int = 10

    def subscription(self, *, id: str, source: str, stamp: str) -> Subscription:
        """The subscription this input describes, name and URLs trimmed, created and updated at ``stamp``."""
        return Subscription(
            id=id,
            name=self.name.strip(),
            urls=[u.strip() for u in self.urls],
            events=list(self.events),
            filters=self.filters,
            enabled=self.enabled,
            source=source,
            templates=self.templates,
            storm_threshold=self.storm_threshold,
            created_at=stamp,
            updated_at=stamp,
        )


class SubscriptionPatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A partial update: fields left ``UNSET`` keep their stored value."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    urls: list[str] | msgspec.UnsetType = msgspec.UNSET
    events: list[str] | msgspec.UnsetType = msgspec.UNSET
    filters: SubscriptionFilters | msgspec.UnsetType = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET
    templates: Templates | msgspec.UnsetType | None = msgspec.UNSET
    storm_threshold: int | msgspec.UnsetType = msgspec.UNSET


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # failed at least once, a retry is scheduled
    DEAD = "dead"  # retries exhausted; replayable


class Delivery(msgspec.Struct, kw_only=True):
    """One notification of one event (or one storm summary) to one URL of one subscription."""

    id: str
    event_ids: list[str]
    event_type: str
    subscription_id: str
    url_index: int
    status: str = DeliveryStatus.PENDING.value
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: float | None = None
    created_at: str = ""
    updated_at: str = ""
    #: The target URL in apprise's privacy form (never the secret).
    target: str = ""
    #: Times an operator re-queued it after it died (``attempts`` restarts from 0 each time).
    replays: int = 0


# --------------------------------------------------------------------------------------------------
# Time helpers (pure: callers pass the instant in).


def parse_ts(value: str) -> datetime:
    """Parse an ISO 8601 timestamp as the API writes it (``Z`` or an offset); naive means UTC."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def format_ts(value: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``, the API's own form."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def ts_ms(value: str) -> int:
    """Milliseconds since the epoch of an ISO timestamp."""
    return (parse_ts(value) - _EPOCH) // timedelta(milliseconds=1)


def ms_to_ts(ms: int) -> str:
    return format_ts(_EPOCH + timedelta(milliseconds=ms))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
