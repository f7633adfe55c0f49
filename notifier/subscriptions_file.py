"""Subscriptions managed as code: the YAML file named by ``NOTIFIER_SUBSCRIPTIONS_FILE``.

The file holds a list of subscriptions (or a mapping with a ``subscriptions:`` list), each with the fields of
the API body plus an optional ``id``; without one, the id is derived from the name, so it stays the same
across reloads and replicas::

    - name: TikTok failures to Slack
      urls: ["slack://T000/B000/XXXX"]
      events: [post.failed, delivery.failed]
      filters: {platforms: [tiktok]}
    - id: ops-everything
      name: Everything to the ops webhook
      urls: ["webhooks://ops.example.com/genviral?secret=whsec_..."]
      events: ["*"]
      storm_threshold: 20

``SubscriptionsFileWatcher`` applies the file to the store (``replace_config``) at start and whenever its
content changes. A file that cannot be read, is not valid YAML, or holds an invalid subscription is rejected
as a whole: the problem is logged naming the file, and the last good set stays in force.

Must not import: httpx, apprise, litestar, prometheus_client, the poller or the dispatcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import yaml
from redis.exceptions import RedisError

from notifier.models import Subscription, SubscriptionInput, SubscriptionSource, format_ts
from notifier.store.subscriptions import SubscriptionStore, validate_subscription

log = logging.getLogger("notifier.subscriptions_file")

#: Namespace of the ids derived from subscription names.
ID_NAMESPACE = uuid.UUID("8d5c2f0e-4b7a-5e51-9c3e-2f6a1b0d7e44")


class SubscriptionsFileError(Exception):
    """The subscriptions file cannot be used; the message names the file and the problem."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class _Item(SubscriptionInput, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One subscription of the file: what the API takes, and an optional ``id``."""

    id: str | None = None


def subscription_id_for(name: str) -> str:
    """The id of a file subscription that gives no ``id``: stable for its name."""
    return str(uuid.uuid5(ID_NAMESPACE, name.strip()))


def parse_subscriptions(text: str, path: Path, *, now: datetime) -> list[Subscription]:
    """The subscriptions in ``text`` (the content of ``path``), or ``SubscriptionsFileError``."""
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SubscriptionsFileError(path, f"not valid YAML: {exc}") from None
    if data is None:
        return []
    if isinstance(data, dict) and set(data) == {"subscriptions"}:
        data = data["subscriptions"] or []
    if not isinstance(data, list):
        raise SubscriptionsFileError(path, "must hold a list of subscriptions (or a 'subscriptions:' list)")
    stamp = format_ts(now)
    subs: list[Subscription] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(data):
        where = f"subscription #{index + 1}"
        try:
            item = msgspec.convert(raw, _Item)
        except msgspec.ValidationError as exc:
            raise SubscriptionsFileError(path, f"{where}: {exc}") from None
        where = f"subscription #{index + 1} ({item.name!r})"
        sub_id = item.id.strip() if item.id is not None else subscription_id_for(item.name)
        if not sub_id:
            raise SubscriptionsFileError(path, f"{where}: id must not be empty")
        if sub_id in seen:
            raise SubscriptionsFileError(path, f"{where}: same id as subscription #{seen[sub_id]} ({sub_id})")
        seen[sub_id] = index + 1
        sub = item.subscription(id=sub_id, source=SubscriptionSource.CONFIG.value, stamp=stamp)
        errors = validate_subscription(sub)
        if errors:
            detail = "; ".join(f"{field}: {message}" for field, message in errors)
            raise SubscriptionsFileError(path, f"{where}: {detail}")
        subs.append(sub)
    return subs


class SubscriptionsFileWatcher:
    """Keeps the store's config subscriptions equal to the file's last good content."""

    def __init__(
        self,
        path: Path,
        store: SubscriptionStore,
        *,
        interval: float = 2.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.path = path
        self._store = store
        self._interval = interval
        self._clock = clock
        #: Digest of the content last applied, or last rejected (so one bad file is reported once).
        self._seen: str | None = None
        #: Whether the last content seen was applied (False: rejected, the previous good set is in force).
        self.healthy = True

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC) if self._clock is not None else datetime.now(UTC)

    async def check(self) -> bool:
        """Apply the file if its content changed since the last look; ``True`` if a new set was applied."""
        try:
            content = await asyncio.to_thread(self.path.read_bytes)
        except OSError as exc:
            digest = f"unreadable:{exc.errno}"
            if digest != self._seen:
                self._seen, self.healthy = digest, False
                log.error(
                    "subscriptions file %s cannot be read (%s); the last good subscriptions stay in force",
                    self.path,
                    exc.strerror or type(exc).__name__,
                )
            return False
        digest = hashlib.sha256(content).hexdigest()
        if digest == self._seen:
            return False
        try:
            subs = parse_subscriptions(content.decode("utf-8", errors="replace"), self.path, now=self._now())
        except SubscriptionsFileError as exc:
            self._seen, self.healthy = digest, False
            log.error("subscriptions file rejected, the last good subscriptions stay in force: %s", exc)
            return False
        refused = await self._store.replace_config(subs)  # a Redis error propagates: retried next time
        self._seen, self.healthy = digest, True
        for sub_id in refused:
            log.error(
                "subscriptions file %s: id %s is already used by a subscription created through the API; skipped",
                self.path,
                sub_id,
            )
        log.info("subscriptions file %s applied: %d subscription(s)", self.path, len(subs) - len(refused))
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Check the file every ``interval`` seconds until ``stop`` is set; never dies on a Redis error."""
        while not stop.is_set():
            try:
                await self.check()
            except (RedisError, OSError) as exc:
                log.warning("subscriptions file %s not applied yet (%s); will retry", self.path, type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval)
