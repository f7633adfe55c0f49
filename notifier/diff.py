"""The pure diff core: (previous snapshots, fresh state, now) -> transitions and new snapshots.

No I/O, no clock, no environment: ``now`` is a parameter. Owns the rules of which change is which
event, event ids, post fingerprints and the compact index entry the poller compares each cycle.

Event ids are UUIDs derived from (scope, entity, version, type, account, observed state). Every watched
change bumps the entity's version ``v``, stored with its snapshot in the same atomic write as the events, so:
the same transition detected again (after a crash, by another replica) starts from the same snapshot and
gets the same id; two occurrences that look alike (failed, retried, failed again) have different versions
and so different ids.

Must not import: httpx, redis, apprise, litestar, prometheus_client, or any adapter of this package.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import msgspec
import xxhash

from notifier.models import (
    AWAITING_STATUSES,
    Account,
    AccountRef,
    AccountSnap,
    DeliverySnap,
    Event,
    EventType,
    Pack,
    PackRef,
    PackSnap,
    Post,
    PostRef,
    PostSnap,
    format_ts,
    ts_ms,
)

#: Namespace of event ids (uuid5).
EVENT_NAMESPACE = uuid.UUID("8f0b6a53-2f43-4a8e-9a53-6b8c1d0e2f41")
#: Characters of a caption kept in snapshots and events.
CAPTION_KEEP = 280
#: Post statuses that have their own event besides ``post.status_changed``.
TERMINAL_EVENTS = {"posted": EventType.POST_POSTED, "failed": EventType.POST_FAILED, "partial": EventType.POST_PARTIAL}
DELIVERY_EVENTS = {"posted": EventType.DELIVERY_POSTED, "failed": EventType.DELIVERY_FAILED}


def event_id(scope: str, kind: str, entity: str, version: int, etype: str, account: str = "", state: str = "") -> str:
    return str(uuid.uuid5(EVENT_NAMESPACE, f"{scope}|{kind}|{entity}|{version}|{etype}|{account}|{state}"))


# --------------------------------------------------------------------------------------------------
# Fingerprints and index entries: what the poller compares every cycle without loading snapshots.

_fp_encode = msgspec.msgpack.Encoder().encode
_fp_hex = xxhash.xxh3_64_hexdigest


def fingerprint(post: Post) -> str:
    """A 64-bit hash of everything the API says about a post (any change, watched or not, changes it).

    XXH3-64 of its msgpack encoding, as 16 hex digits: nobody chooses these inputs to collide, the status is
    compared in clear besides, and it costs about a sixth of CRC-32 and Adler-32 side by side (the hot path
    hashes every fresh post every cycle).
    """
    return _fp_hex(_fp_encode(post))


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One post's line in the scope index: ``fingerprint|overdue|scheduled_ms|created_ms|status``.

    The fingerprint (16 hex digits), the overdue flag and ``scheduled_ms`` (13 digits, ``~`` when unset) have
    fixed widths and come first, so the hot path compares bytes at fixed offsets without parsing.
    """

    status: str
    created_ms: int
    scheduled_ms: int | None
    overdue: bool
    fp: str

    def encode(self) -> str:
        sched = _NO_SCHEDULE if self.scheduled_ms is None else f"{self.scheduled_ms:013d}"
        return f"{self.fp}|{int(self.overdue)}|{sched}|{self.created_ms}|{self.status}"

    @classmethod
    def decode(cls, raw: bytes | str) -> IndexEntry:
        text = raw.decode() if isinstance(raw, bytes) else raw
        fp, overdue, sched, created, status = text.split("|", 4)
        return cls(status, int(created), None if sched == _NO_SCHEDULE else int(sched), overdue == "1", fp)

    @staticmethod
    def status_and_created(raw: bytes) -> tuple[bytes, int]:
        """Status and created_ms of a raw entry, without decoding the rest (for planning the sweep)."""
        _head, created, status = raw.rsplit(b"|", 2)
        return status, int(created)


_NO_SCHEDULE = "~" * 13  # sorts after every 13-digit instant: never overdue
#: Offsets in an encoded entry: the overdue flag, the scheduled time.
_OVERDUE_AT, _SCHED = 17, slice(19, 32)


def index_entry(snap: PostSnap, fp: str) -> IndexEntry:
    sched = ts_ms(snap.scheduled_at) if snap.scheduled_at else None
    return IndexEntry(snap.status, ts_ms(snap.created_at), sched, snap.overdue, fp)


def overdue_due(status: str, scheduled_ms: int | None, overdue: bool, now_ms: int, overdue_after_ms: int) -> bool:
    """Whether a post in this state should raise ``post.overdue`` now."""
    return (
        not overdue
        and status in AWAITING_STATUSES
        and scheduled_ms is not None
        and now_ms - scheduled_ms > overdue_after_ms
    )


def select_changed(
    fresh: Iterable[Post], index: Mapping[bytes, bytes], now_ms: int, overdue_after_ms: int
) -> list[tuple[Post, IndexEntry | None]]:
    """The steady-state hot path: the fresh posts that need a full diff, with their index entries.

    ``index`` is the scope index as read from Redis (id bytes -> entry bytes). An unchanged post costs one
    encoding, one hash, one look-up and a few byte comparisons at fixed offsets; entries are decoded
    only for posts that changed or just became overdue.
    """
    changed: list[tuple[Post, IndexEntry | None]] = []
    hexdigest, encode = _fp_hex, _fp_encode
    suffixes: dict[str, bytes] = {}
    # a post awaiting publication scheduled before this instant is due for post.overdue (unless raised)
    late = b"%013d" % (now_ms - overdue_after_ms)
    for post in fresh:
        raw = index.get(post.id.encode())
        if raw is not None:
            data = encode(post)
            status = suffixes.get(post.status) or suffixes.setdefault(post.status, b"|" + post.status.encode())
            if (
                raw.startswith(hexdigest(data).encode())
                and raw.endswith(status)
                and (post.status not in AWAITING_STATUSES or raw[_OVERDUE_AT] == 49 or raw[_SCHED] >= late)
            ):
                continue
        changed.append((post, IndexEntry.decode(raw) if raw is not None else None))
    return changed


# --------------------------------------------------------------------------------------------------
# Posts.


def snapshot_of(post: Post, *, v: int, overdue: bool) -> PostSnap:
    return PostSnap(
        v=v,
        status=post.status,
        created_at=post.created_at,
        scheduled_at=post.scheduled_at,
        caption=post.caption[:CAPTION_KEEP],
        media_type=post.media.type if post.media is not None else None,
        deliveries=tuple(
            DeliverySnap(
                account_id=d.account_id,
                status=d.status,
                error_message=d.error_message,
                published_url=d.published_url,
                published_at=d.published_at,
                last_attempted_at=d.last_attempted_at,
            )
            for d in post.accounts.states
        ),
        overdue=overdue,
    )


def watched(snap: PostSnap) -> tuple[Any, ...]:
    """The fields whose change is a transition (the version moves with them)."""
    return (snap.status, snap.scheduled_at, snap.overdue, snap.deliveries)


@dataclass
class PostDiff:
    events: list[Event] = field(default_factory=list)
    #: New snapshots of the posts that changed in any way (watched or not), with their fingerprints.
    snaps: dict[str, tuple[PostSnap, str]] = field(default_factory=dict)


def diff_posts(
    scope: str,
    previous: Mapping[str, PostSnap],
    fresh: Iterable[Post],
    *,
    now: datetime,
    overdue_after: float,
    accounts: Mapping[str, AccountSnap],
    notify_new: bool,
) -> PostDiff:
    """Transitions of the ``fresh`` posts against their ``previous`` snapshots (absent = first seen).

    A post first seen is recorded; when ``notify_new`` is true (after the baseline, or with
    NOTIFIER_NOTIFY_EXISTING) and it is already posted/failed/partial, its terminal events are emitted.
    """
    out = PostDiff()
    detected = format_ts(now)
    now_ms = int(now.timestamp() * 1000)
    overdue_ms = int(overdue_after * 1000)
    for post in fresh:
        old = previous.get(post.id)
        fp = fingerprint(post)
        keep_overdue = old is not None and old.overdue and old.scheduled_at == post.scheduled_at
        snap = snapshot_of(post, v=old.v if old is not None else 1, overdue=keep_overdue)
        sched_ms = ts_ms(post.scheduled_at) if post.scheduled_at else None
        raise_overdue = overdue_due(post.status, sched_ms, snap.overdue, now_ms, overdue_ms)
        if raise_overdue:
            snap = msgspec.structs.replace(snap, overdue=True)
        if old is not None and watched(old) != watched(snap):
            snap = msgspec.structs.replace(snap, v=old.v + 1)
        ctx = _PostContext(scope, snap, post.id, detected, accounts)
        if old is None:
            if notify_new:
                _first_seen_events(ctx, out.events)
        else:
            _change_events(ctx, old, out.events)
        if raise_overdue and (old is not None or notify_new):
            late = (now_ms - (sched_ms or now_ms)) // 1000
            ctx.emit(
                out.events,
                EventType.POST_OVERDUE,
                None,
                {"status": snap.status, "scheduled_at": snap.scheduled_at, "overdue_seconds": late},
                state=snap.scheduled_at or "",
            )
        out.snaps[post.id] = (snap, fp)
    return out


@dataclass
class _PostContext:
    scope: str
    snap: PostSnap
    post_id: str
    detected: str
    accounts: Mapping[str, AccountSnap]

    def ref(self) -> PostRef:
        s = self.snap
        ids = [d.account_id for d in s.deliveries]
        platforms = sorted({a.platform for i in ids if (a := self.accounts.get(i)) is not None})
        return PostRef(
            self.post_id,
            s.caption,
            s.status,
            s.scheduled_at,
            s.created_at,
            s.media_type,
            account_ids=ids,
            platforms=platforms,
        )

    def account(self, account_id: str) -> AccountRef:
        a = self.accounts.get(account_id)
        if a is None:
            return AccountRef(id=account_id)
        return AccountRef(id=account_id, platform=a.platform, username=a.username, display_name=a.display_name)

    def emit(
        self,
        events: list[Event],
        etype: EventType,
        previous: dict[str, Any] | None,
        current: dict[str, Any] | None,
        *,
        account_id: str = "",
        state: str = "",
    ) -> None:
        events.append(
            Event(
                id=event_id(self.scope, "post", self.post_id, self.snap.v, etype.value, account_id, state),
                type=etype.value,
                detected_at=self.detected,
                scope=self.scope,
                post=self.ref(),
                account=self.account(account_id) if account_id else None,
                previous=previous,
                current=current,
            )
        )


def _post_current(snap: PostSnap) -> dict[str, Any]:
    current: dict[str, Any] = {"status": snap.status}
    errors = [d.error_message for d in snap.deliveries if d.status == "failed" and d.error_message]
    urls = [d.published_url for d in snap.deliveries if d.published_url]
    if errors:
        current["error_message"] = errors[0]
    if urls:
        current["published_url"] = urls[0]
    return current


def _delivery_fields(d: DeliverySnap | None) -> dict[str, Any]:
    if d is None:
        return {"status": None, "error_message": None, "published_url": None}
    return {
        "status": d.status,
        "error_message": d.error_message,
        "published_url": d.published_url,
        "published_at": d.published_at,
        "last_attempted_at": d.last_attempted_at,
    }


def _first_seen_events(ctx: _PostContext, events: list[Event]) -> None:
    snap = ctx.snap
    terminal = TERMINAL_EVENTS.get(snap.status)
    if terminal is not None:
        ctx.emit(events, terminal, {"status": None}, _post_current(snap), state=snap.status)
    for d in snap.deliveries:
        _delivery_events(ctx, None, d, events)


def _change_events(ctx: _PostContext, old: PostSnap, events: list[Event]) -> None:
    snap = ctx.snap
    if old.status != snap.status:
        ctx.emit(
            events, EventType.POST_STATUS_CHANGED, {"status": old.status}, {"status": snap.status}, state=snap.status
        )
        terminal = TERMINAL_EVENTS.get(snap.status)
        if terminal is not None:
            ctx.emit(events, terminal, {"status": old.status}, _post_current(snap), state=snap.status)
    before = {d.account_id: d for d in old.deliveries}
    for d in snap.deliveries:
        _delivery_events(ctx, before.get(d.account_id), d, events)


def _delivery_events(ctx: _PostContext, old: DeliverySnap | None, new: DeliverySnap, events: list[Event]) -> None:
    etype = DELIVERY_EVENTS.get(new.status)
    again = old is not None and old.status == new.status and old.last_attempted_at != new.last_attempted_at
    if etype is not None and (old is None or old.status != new.status or (again and new.status == "failed")):
        state = f"{new.status}@{new.last_attempted_at or ''}"
        ctx.emit(events, etype, _delivery_fields(old), _delivery_fields(new), account_id=new.account_id, state=state)
    if new.published_url and (old is None or old.published_url != new.published_url):
        ctx.emit(
            events,
            EventType.DELIVERY_PUBLISHED,
            _delivery_fields(old),
            _delivery_fields(new),
            account_id=new.account_id,
            state=new.published_url,
        )


# --------------------------------------------------------------------------------------------------
# Accounts and packs: the fresh list is complete (the caller passes it only when the fetch succeeded).


S = TypeVar("S", AccountSnap, PackSnap)


@dataclass
class EntityDiff(Generic[S]):
    events: list[Event] = field(default_factory=list)
    #: Snapshots to write (added, changed, or tombstoned with ``removed=True``).
    snaps: dict[str, S] = field(default_factory=dict)


def account_snap(a: Account, v: int) -> AccountSnap:
    return AccountSnap(v=v, platform=a.platform, username=a.username, display_name=a.display_name, status=a.status)


_ACCOUNT_FIELDS = ("status", "username", "display_name", "platform")


def diff_accounts(
    scope: str, previous: Mapping[str, AccountSnap], fresh: Iterable[Account], *, now: datetime, baseline: bool
) -> EntityDiff[AccountSnap]:
    out: EntityDiff[AccountSnap] = EntityDiff()
    detected = format_ts(now)
    seen: set[str] = set()

    def emit(
        etype: EventType, aid: str, snap: AccountSnap, prev: dict[str, Any] | None, cur: dict[str, Any] | None
    ) -> None:
        if baseline:
            return
        ref = AccountRef(id=aid, platform=snap.platform, username=snap.username, display_name=snap.display_name)
        out.events.append(
            Event(
                id=event_id(scope, "account", aid, snap.v, etype.value),
                type=etype.value,
                detected_at=detected,
                scope=scope,
                account=ref,
                previous=prev,
                current=cur,
            )
        )

    for account in fresh:
        seen.add(account.id)
        old = previous.get(account.id)
        if old is None or old.removed:
            snap = account_snap(account, (old.v + 1) if old is not None else 1)
            out.snaps[account.id] = snap
            emit(EventType.ACCOUNT_ADDED, account.id, snap, None, _account_fields(snap))
            continue
        snap = account_snap(account, old.v)
        if snap == old:
            continue
        changed = [f for f in _ACCOUNT_FIELDS if getattr(old, f) != getattr(snap, f)]
        snap = msgspec.structs.replace(snap, v=old.v + 1)
        out.snaps[account.id] = snap
        emit(
            EventType.ACCOUNT_CHANGED,
            account.id,
            snap,
            {f: getattr(old, f) for f in changed},
            {f: getattr(snap, f) for f in changed},
        )
    for aid, old in previous.items():
        if aid not in seen and not old.removed:
            snap = msgspec.structs.replace(old, v=old.v + 1, removed=True)
            out.snaps[aid] = snap
            emit(EventType.ACCOUNT_REMOVED, aid, snap, _account_fields(old), None)
    return out


def _account_fields(s: AccountSnap) -> dict[str, Any]:
    return {f: getattr(s, f) for f in _ACCOUNT_FIELDS}


def diff_packs(
    scope: str, previous: Mapping[str, PackSnap], fresh: Iterable[Pack], *, now: datetime, baseline: bool
) -> EntityDiff[PackSnap]:
    out: EntityDiff[PackSnap] = EntityDiff()
    detected = format_ts(now)
    seen: set[str] = set()
    for pack in fresh:
        seen.add(pack.id)
        old = previous.get(pack.id)
        if old is None or old.removed:
            snap = PackSnap(v=(old.v + 1) if old is not None else 1, name=pack.name, image_count=pack.image_count)
            etype, prev, cur = EventType.PACK_ADDED, None, {"name": snap.name, "image_count": snap.image_count}
        else:
            snap = PackSnap(v=old.v, name=pack.name, image_count=pack.image_count)
            if snap == old:
                continue
            snap = msgspec.structs.replace(snap, v=old.v + 1)
            changed = [f for f in ("name", "image_count") if getattr(old, f) != getattr(snap, f)]
            etype, prev, cur = (
                EventType.PACK_CHANGED,
                {f: getattr(old, f) for f in changed},
                {f: getattr(snap, f) for f in changed},
            )
        out.snaps[pack.id] = snap
        if not baseline:
            out.events.append(
                Event(
                    id=event_id(scope, "pack", pack.id, snap.v, etype.value),
                    type=etype.value,
                    detected_at=detected,
                    scope=scope,
                    pack=PackRef(id=pack.id, name=snap.name, image_count=snap.image_count),
                    previous=prev,
                    current=cur,
                )
            )
    for pid, old in previous.items():
        if pid not in seen and not old.removed:
            out.snaps[pid] = msgspec.structs.replace(old, v=old.v + 1, removed=True)
    return out
