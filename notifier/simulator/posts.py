"""The simulator's post book: posts kept in a created_at index, with per-scope status counters.

Owns: ``PostBook``, which keeps every post once, a list of ``(created_ms, id)`` kept sorted (so a page of
``GET /posts`` reads a slice backwards: newest first, ties by id descending, no sort per request) and, per scope,
a count of posts by status (so ``summary`` costs nothing per request). A post belongs to every scope that owns
one of its deliveries' accounts; ``scope_of`` (account id -> scope id) is asked when a post is linked.

Not thread-safe on its own: ``SimState`` holds its lock around every call.

Must not import: httpx, redis, apprise, litestar, uvicorn, or any notifier module outside ``notifier.simulator``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from notifier.simulator.records import DELIVERY_FIELDS, DeliveryRec, JsonObj, PostRec, check_fields, ts_text

_MAX_ID = "\U0010ffff"


class PostBook:
    def __init__(self, scope_of: Callable[[str], str | None]) -> None:
        self._scope_of = scope_of
        self.posts: dict[str, PostRec] = {}
        self._order: list[tuple[int, str]] = []
        self._counts: dict[str, Counter[str]] = {}

    def __len__(self) -> int:
        return len(self.posts)

    def clear(self) -> None:
        self.posts.clear()
        self._order.clear()
        self._counts.clear()

    # ---------------------------------------------------------------------------------------------- writes

    def insert(self, rec: PostRec) -> None:
        if rec.id in self.posts:
            raise ValueError(f"post {rec.id} already exists")
        self.posts[rec.id] = rec
        self._link(rec)
        insort(self._order, rec.key)

    def insert_many(self, recs: Iterable[PostRec]) -> None:
        """Insert many posts with one sort of the index (thousands in milliseconds)."""
        fresh = list(recs)
        ids = {r.id for r in fresh}
        if len(ids) != len(fresh) or not ids.isdisjoint(self.posts):
            raise ValueError("duplicate post ids")
        for rec in fresh:
            self.posts[rec.id] = rec
            self._link(rec)
        self._order.extend(r.key for r in fresh)
        self._order.sort()

    def remove(self, post_id: str) -> PostRec:
        rec = self.posts.pop(post_id)
        self._unlink(rec)
        del self._order[bisect_left(self._order, rec.key)]
        return rec

    @contextmanager
    def modify(self, post_id: str) -> Iterator[PostRec]:
        """Yield a post to change in place; its index entry, scopes and counters follow the change."""
        rec = self.posts[post_id]
        old_key = rec.key
        self._unlink(rec)
        try:
            yield rec
        finally:
            self._link(rec)
            if rec.key != old_key:
                del self._order[bisect_left(self._order, old_key)]
                insort(self._order, rec.key)

    def rescope(self) -> None:
        """Recompute every post's scopes and the counters (after an account appeared, moved or vanished)."""
        self._counts.clear()
        for rec in self.posts.values():
            self._link(rec)

    # ---------------------------------------------------------------------------------------------- reads

    def counts(self, scope_id: str) -> dict[str, int]:
        return dict(self._counts.get(scope_id, {}))

    def page(
        self,
        scope_id: str,
        *,
        status: str | None,
        limit: int,
        since_us: int | None,
        until_us: int | None,
    ) -> list[PostRec]:
        """Newest first (ties: id descending), created_at within [since, until], at most ``limit``."""
        order = self._order
        lo = 0 if since_us is None else bisect_left(order, (-(-since_us // 1000),))
        hi = len(order) if until_us is None else bisect_right(order, (until_us // 1000, _MAX_ID))
        out: list[PostRec] = []
        posts = self.posts
        for i in range(hi - 1, lo - 1, -1):
            rec = posts[order[i][1]]
            if scope_id in rec.scopes and (status is None or rec.status == status):
                out.append(rec)
                if len(out) >= limit:
                    break
        return out

    def newest(self) -> Iterator[PostRec]:
        """Every post, newest first (no scope filter)."""
        for _, post_id in reversed(self._order):
            yield self.posts[post_id]

    # ---------------------------------------------------------------------------------------------- internals

    def _link(self, rec: PostRec) -> None:
        scopes = {self._scope_of(d.account_id) for d in rec.deliveries}
        scopes.discard(None)
        rec.scopes = frozenset(s for s in scopes if s is not None)
        for scope_id in rec.scopes:
            self._counts.setdefault(scope_id, Counter())[rec.status] += 1

    def _unlink(self, rec: PostRec) -> None:
        for scope_id in rec.scopes:
            counter = self._counts[scope_id]
            counter[rec.status] -= 1
            if counter[rec.status] <= 0:
                del counter[rec.status]


# --------------------------------------------------------------------------------------------------
# Building post records


def build_deliveries(
    spec: Sequence[str | JsonObj] | JsonObj | None, status: str, default_targets: Callable[[], list[str]]
) -> list[DeliveryRec]:
    """Deliveries from account ids or delivery dicts (or the wire form ``{"states": [...]}``); None means
    ``default_targets()``. A delivery's status defaults to the post's."""
    if spec is None:
        return [DeliveryRec(a, status) for a in default_targets()]
    items = spec.get("states", []) if isinstance(spec, dict) else spec
    out: list[DeliveryRec] = []
    for item in items:
        if isinstance(item, str):
            out.append(DeliveryRec(item, status))
            continue
        values = dict(item)
        account_id = values.pop("account_id", None)
        if not isinstance(account_id, str):
            raise ValueError("each delivery needs an account_id")
        delivery = DeliveryRec(account_id, status)
        for name, value in delivery_values(values).items():
            setattr(delivery, name, value)
        out.append(delivery)
    if len({d.account_id for d in out}) != len(out):
        raise ValueError("a post has at most one delivery per account")
    return out


def delivery_values(fields: dict[str, Any]) -> dict[str, Any]:
    """Checked delivery fields, timestamps written in the API's form."""
    check_fields(fields, DELIVERY_FIELDS, "delivery")
    values = dict(fields)
    for name in ("published_at", "last_attempted_at"):
        if name in values:
            values[name] = ts_text(values[name])
    return values


def bulk_records(
    ids: Sequence[str],
    *,
    statuses: Sequence[str],
    targets: Sequence[str],
    accounts_per_post: int,
    first_ms: int,
    step_ms: int,
    scheduled_at: str | None,
    caption: str,
) -> list[PostRec]:
    """One post per id; statuses and accounts round robin, created_at ``first_ms + i * step_ms``."""
    width = min(accounts_per_post, len(targets))
    recs = []
    for i, post_id in enumerate(ids):
        status = statuses[i % len(statuses)]
        chosen = dict.fromkeys(targets[(i + k) % len(targets)] for k in range(width))
        recs.append(
            PostRec(
                id=post_id,
                status=status,
                created_ms=first_ms + i * step_ms,
                caption=f"{caption} #{i}",
                scheduled_at=scheduled_at,
                media={"type": "video", "url": f"https://cdn.example.com/{post_id}.mp4"},
                deliveries=[DeliveryRec(a, status) for a in chosen],
            )
        )
    return recs
