"""The poller: one cycle = fetch everything -> diff -> one atomic snapshot + outbox write.

A cycle runs only while this process holds the API key's lease; the lease is renewed while the cycle runs
and checked again inside the write, so two pollers never both write a scope. Any failed or partial fetch
aborts the cycle before anything is written: no snapshot moves, no event is invented. 401/402/403 back off
(doubling from one interval up to ten minutes) and are recorded for /readyz; other API errors are retried
next interval (the client already retried 5xx and timeouts); a lost Redis never ends the loop.

Must not import: apprise, litestar, the dispatcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from notifier.config import Settings
from notifier.diff import IndexEntry, diff_accounts, diff_packs, diff_posts, index_entry, select_changed
from notifier.errors import AUTH_ERRORS, FencedOut, NotFound, PartnerApiError, StoreError
from notifier.genviral.client import PartnerClient
from notifier.metrics import Metrics
from notifier.models import OPEN_STATUSES, DeliverySnap, DeliveryState, Event, Pack, Post, parse_ts, ts_ms
from notifier.store.health import write_health
from notifier.store.keys import Keys
from notifier.store.lease import Lease, LeaseHold
from notifier.store.snapshots import CycleWrite, SnapshotStore
from notifier.sweep import Sweeper

log = logging.getLogger("notifier.poller")

#: Longest wait between cycles while the key is refused (401/402/403).
AUTH_BACKOFF_MAX = 600.0
#: Longest wait between two checks for a late published_url.
URL_CHECK_MAX = 900.0
#: A post first seen that was created this long before the newest one seen earlier still counts as new.
NEW_POST_MARGIN_MS = 10 * 60 * 1000
#: GET /posts/{id} requests in flight at once.
FETCH_CONCURRENCY = 8
#: Statuses whose posts may still get a published_url.
URL_STATUSES = frozenset({"posted", "partial"})


@dataclass(frozen=True)
class CycleReport:
    result: str  # ok | standby | auth_error | api_error | fenced | conflict | redis_error
    events: int = 0
    error_code: str = ""


class Poller:
    def __init__(
        self,
        client: PartnerClient,
        redis: aioredis.Redis,
        keys: Keys,
        settings: Settings,
        metrics: Metrics,
        *,
        owner: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._redis = redis
        self._keys = keys
        self._settings = settings
        self._metrics = metrics
        self._owner = owner
        self._clock = clock
        self._interval = settings.poll_interval
        self._lease_ttl = max(3 * self._interval, 1.0)
        self._lease = Lease(redis, keys.poller(client.key_id), owner=owner, ttl=self._lease_ttl)
        self._store = SnapshotStore(redis, keys, events_maxlen=settings.events_maxlen)
        self._fetch_limit = asyncio.Semaphore(FETCH_CONCURRENCY)
        self._hold: LeaseHold | None = None
        self._auth_failures = 0

    @property
    def holds_lease(self) -> bool:
        return self._hold is not None

    async def run(self, stop: asyncio.Event) -> None:
        """Cycle every poll interval until ``stop`` is set; then release the lease for a quick takeover."""
        try:
            while not stop.is_set():
                started = self._clock()
                report = await self.cycle()
                delay = self._delay_after(report) - (self._clock() - started)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=max(delay, 0.0))
        finally:
            hold, self._hold = self._hold, None
            if hold is not None:
                with contextlib.suppress(RedisError, OSError):
                    await asyncio.shield(self._lease.release(hold))

    def _auth_backoff(self) -> float:
        """Seconds before the next try after the key was refused ``_auth_failures`` times in a row."""
        return float(min(self._interval * 2**self._auth_failures, AUTH_BACKOFF_MAX))

    def _delay_after(self, report: CycleReport) -> float:
        if report.result == "auth_error":
            return self._auth_backoff()
        if report.result == "redis_error":
            return min(self._interval, 1.0)
        return self._interval

    async def cycle(self) -> CycleReport:
        """One poll cycle if this process holds (or can take) the lease."""
        started = time.perf_counter()
        try:
            hold = await self._lease.acquire()
        except (RedisError, OSError) as exc:
            log.warning("redis unavailable, poll cycle skipped: %s", type(exc).__name__)
            self._metrics.poll_cycles.labels("redis_error").inc()
            return CycleReport("redis_error", error_code="redis_unavailable")
        if hold is None:
            self._hold = None
            return CycleReport("standby")
        if self._hold is None or self._hold.value != hold.value:
            self._metrics.lease_acquisitions.inc()
            log.info("became the poller of key %s (token %d)", self._client.key_id, hold.token)
        self._hold = hold
        done = asyncio.Event()
        renewer = asyncio.create_task(self._keep_lease(hold, done))
        try:
            report = await self._cycle(hold)
        finally:
            # Told to stop, not cancelled: redis-py can swallow a cancellation that lands inside a command, and a
            # renewer that missed it would renew for ever while this cycle waits for it.
            done.set()
            await renewer
        self._metrics.poll_cycles.labels(report.result).inc()
        self._metrics.poll_duration.observe(time.perf_counter() - started)
        return report

    async def _keep_lease(self, hold: LeaseHold, done: asyncio.Event) -> None:
        """Renew the lease every third of its TTL until ``done`` is set."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), self._lease_ttl / 3)
            if done.is_set():
                return
            with contextlib.suppress(RedisError, OSError):
                await self._lease.renew(hold)

    async def _cycle(self, hold: LeaseHold) -> CycleReport:
        now = self._clock()
        health = {"last_attempt": repr(now), "owner": self._owner, "interval": repr(self._interval)}
        try:
            scope, meta_rev, write = await self._collect(now)
            await self._store.commit(scope, hold, meta_rev, write)
        except AUTH_ERRORS as exc:
            self._auth_failures += 1
            backoff = self._auth_backoff()
            log.error("Partner API refused the key (%s); next try in %.0f s", exc.code, backoff)
            return await self._record(
                health, CycleReport("auth_error", error_code=exc.code), exc.message, backoff_until=now + backoff
            )
        except PartnerApiError as exc:
            log.warning("poll cycle aborted, nothing written: %s", exc)
            return await self._record(health, CycleReport("api_error", error_code=exc.code), exc.message)
        except FencedOut:
            self._hold = None
            log.warning("lost the poller lease during the cycle; nothing written")
            return CycleReport("fenced")
        except StoreError as exc:
            log.warning("%s", exc)
            return CycleReport("conflict")
        except (RedisError, OSError) as exc:
            log.warning("redis unavailable during the cycle, nothing written: %s", type(exc).__name__)
            return CycleReport("redis_error", error_code="redis_unavailable")
        self._auth_failures = 0
        for event in write.events:
            self._metrics.transitions.labels(event.type).inc()
        # notifier_tracked_posts and the last-success gauge are read from Redis when /metrics is scraped.
        now_done = self._clock()
        if write.events:
            log.info("cycle found %d transition(s) in scope %s", len(write.events), scope)
        health.update(last_success=repr(now_done), scope=scope)
        report = CycleReport("ok", events=len(write.events))
        return await self._record(health, report, "")

    async def _record(
        self, health: dict[str, str], report: CycleReport, message: str, backoff_until: float | None = None
    ) -> CycleReport:
        health.update(
            last_error_code=report.error_code,
            last_error=message[:300],
            backoff_until=repr(backoff_until) if backoff_until else "",
        )
        with contextlib.suppress(RedisError, OSError):
            await write_health(self._redis, self._keys, self._client.key_id, health)
        return report

    # ------------------------------------------------------------------------------------------ fetch + diff

    async def _collect(self, now: float) -> tuple[str, int, CycleWrite]:
        """Fetch everything the cycle needs and compute its write; raises on any failed fetch."""
        accounts_page = await self._client.list_accounts()
        scope = accounts_page.scope_id
        store = self._store
        meta, index, prev_accounts, prev_packs = await asyncio.gather(
            store.load_meta(scope), store.load_index(scope), store.load_accounts(scope), store.load_packs(scope)
        )
        packs = await self._list_packs()
        baseline = not meta.baseline_done
        notify_existing = baseline and self._settings.notify_existing
        statuses = set(OPEN_STATUSES) | ({"failed", "partial", "posted"} if notify_existing else set())
        known: dict[str, list[int]] = {s: [] for s in statuses}
        open_ids: list[str] = []
        for raw_id, raw_entry in index.items():
            raw_status, created = IndexEntry.status_and_created(raw_entry)
            status = raw_status.decode()
            if status in known:
                known[status].append(created)
            if status in OPEN_STATUSES:
                open_ids.append(raw_id.decode())
        sweep = await Sweeper(self._client, sorted(statuses)).sweep(known, meta.watermark_ms)
        fresh = sweep.posts
        due = await store.due_url_checks(scope, now)
        wanted = [pid for pid in (*open_ids, *due) if pid not in fresh]
        fetched, gone = await self._fetch_each(dict.fromkeys(wanted))
        fresh.update(fetched)

        when = datetime.fromtimestamp(now, tz=UTC)
        acc = diff_accounts(scope, prev_accounts, accounts_page.accounts, now=when, baseline=baseline)
        pk = diff_packs(scope, prev_packs, packs, now=when, baseline=baseline)
        platforms = {**prev_accounts, **acc.snaps}
        now_ms = int(now * 1000)
        overdue_ms = int(self._settings.overdue_after * 1000)
        changed = select_changed(fresh.values(), index, now_ms, overdue_ms)
        previous = await store.load_posts(scope, [p.id for p, e in changed if e is not None])
        watermark = meta.watermark_ms
        # A post first seen is notified (if already settled) only when it is new since the last cycle (with a
        # margin for posts committed out of created_at order): an old post that merely became visible again
        # (expired from the snapshot, say) is recorded silently.
        loud: list[Post] = []
        quiet: list[Post] = []
        for p, e in changed:
            is_new = not baseline and (watermark is None or ts_ms(p.created_at) >= watermark - NEW_POST_MARGIN_MS)
            (loud if e is not None or notify_existing or is_new else quiet).append(p)
        overdue_after = self._settings.overdue_after
        posts_loud = diff_posts(
            scope, previous, loud, now=when, overdue_after=overdue_after, accounts=platforms, notify_new=True
        )
        posts_quiet = diff_posts(
            scope, previous, quiet, now=when, overdue_after=overdue_after, accounts=platforms, notify_new=False
        )

        write = CycleWrite(batch=f"{scope}:{meta.rev + 1}", expire_before=now - self._settings.retention)
        write.accounts, write.packs = acc.snaps, pk.snaps
        write.deleted_posts = gone
        events: list[Event] = [*acc.events, *pk.events, *posts_loud.events, *posts_quiet.events]
        write.events = events
        entries = {p.id: e for p, e in changed}
        for pid, (snap, fp) in {**posts_loud.snaps, **posts_quiet.snaps}.items():
            write.posts[pid] = (snap, index_entry(snap, fp))
            was = entries.get(pid)
            if snap.status not in OPEN_STATUSES:
                write.settled[pid] = now
            elif was is not None and was.status not in OPEN_STATUSES:
                write.reopened.append(pid)
            self._plan_url_check(write, pid, snap.status, snap.deliveries, now)
        for pid in due:
            if pid in fresh and pid not in write.posts:
                post = fresh[pid]
                self._plan_url_check(write, pid, post.status, post.accounts.states, now)
        # Posts fetched by id were seen in earlier cycles: the newest post is the sweep's.
        newest = sweep.newest_ms
        write.watermark_ms = (
            max(newest, watermark)
            if newest is not None and watermark is not None
            else (newest if newest is not None else watermark)
        )
        return scope, meta.rev, write

    def _plan_url_check(
        self,
        write: CycleWrite,
        pid: str,
        status: str,
        deliveries: Sequence[DeliverySnap] | Sequence[DeliveryState],
        now: float,
    ) -> None:
        """Keep looking for a late published_url, less often as the post ages; stop after the window."""
        waiting = [d for d in deliveries if d.status == "posted" and not d.published_url]
        if status not in URL_STATUSES or not waiting:
            write.url_done.append(pid)
            return
        posted_at = max((parse_ts(d.published_at).timestamp() for d in waiting if d.published_at), default=now)
        age = max(now - posted_at, 0.0)
        if age > self._settings.published_url_window:
            write.url_done.append(pid)
            return
        write.url_checks[pid] = now + min(max(self._interval, age / 10), URL_CHECK_MAX)

    async def _list_packs(self) -> list[Pack]:
        packs: list[Pack] = []
        offset = 0
        while True:
            page = await self._client.list_packs(limit=100, offset=offset, include_public=False)
            packs.extend(page.packs)
            offset += len(page.packs)
            if not page.packs or offset >= page.total:
                return packs

    async def _fetch_each(self, ids: Iterable[str]) -> tuple[dict[str, Post], list[str]]:
        """GET /posts/{id} for each id (bounded concurrency); 404s are returned as gone."""
        found: dict[str, Post] = {}
        gone: list[str] = []

        async def one(pid: str) -> None:
            async with self._fetch_limit:
                try:
                    found[pid] = await self._client.get_post(pid)
                except NotFound:
                    gone.append(pid)

        try:
            async with asyncio.TaskGroup() as group:
                for pid in ids:
                    group.create_task(one(pid))
        except ExceptionGroup as failed:
            raise failed.exceptions[0] from None  # the cycle aborts on the first failed fetch
        return found, gone
