"""Every Redis key the service uses, in one place, all under ``NOTIFIER_KEY_PREFIX``.

Scope state (one Partner API scope, i.e. one workspace or one personal owner):

    {p}scope:{scope}:idx       hash   post id -> "fingerprint|overdue|scheduled|created|status" (cheap diff)
    {p}scope:{scope}:posts     hash   post id -> PostSnap (JSON array)
    {p}scope:{scope}:settled   zset   post id -> epoch seconds it settled (expiry after NOTIFIER_RETENTION)
    {p}scope:{scope}:urlwatch  zset   post id -> epoch seconds of its next published_url check
    {p}scope:{scope}:accounts  hash   account id -> AccountSnap (JSON array)
    {p}scope:{scope}:packs     hash   pack id -> PackSnap (JSON array)
    {p}scope:{scope}:meta      hash   baseline, watermark_ms, rev, ...

Poller coordination, per API key (``key_id`` is a one-way hash of the key, never the key):

    {p}poller:{key_id}:lease   string "owner|token", with a TTL: who polls this key now
    {p}poller:{key_id}:fence   counter, the fencing token source
    {p}poller:{key_id}:health  hash   last_success, last_error_code, scope, ... (read by /readyz)

Events and delivery:

    {p}events                  stream every transition (fields: id, type, scope, event JSON), capped
    {p}subscriptions           hash   subscription id -> Subscription (JSON)
    {p}deliveries              hash   delivery id -> Delivery (JSON)
    {p}deliveries:due          zset   delivery id -> epoch seconds of its next attempt
    {p}deliveries:dead         zset   delivery id -> epoch seconds it died
    {p}delivery:{id}:claim     string who is sending this delivery now (SET NX PX)
    {p}deliveries:payload      hash   delivery id -> what to send (URL, title, body, event JSON)
    {p}deliveries:all          zset   delivery id -> epoch seconds it was created (listing)
    {p}deliveries:sent         zset   delivery id -> epoch seconds it was sent (pruned after NOTIFIER_RETENTION)
    {p}dispatch:watermark      string highest event stream id whose deliveries exist (start of a new group)
"""

from __future__ import annotations

from dataclasses import dataclass

#: The consumer group through which dispatchers share the event stream.
DISPATCH_GROUP = "dispatchers"


@dataclass(frozen=True)
class ScopeKeys:
    idx: str
    posts: str
    settled: str
    urlwatch: str
    accounts: str
    packs: str
    meta: str


@dataclass(frozen=True)
class PollerKeys:
    lease: str
    fence: str
    health: str


@dataclass(frozen=True)
class Keys:
    prefix: str

    def scope(self, scope: str) -> ScopeKeys:
        base = f"{self.prefix}scope:{scope}:"
        return ScopeKeys(
            idx=base + "idx",
            posts=base + "posts",
            settled=base + "settled",
            urlwatch=base + "urlwatch",
            accounts=base + "accounts",
            packs=base + "packs",
            meta=base + "meta",
        )

    def poller(self, key_id: str) -> PollerKeys:
        base = f"{self.prefix}poller:{key_id}:"
        return PollerKeys(lease=base + "lease", fence=base + "fence", health=base + "health")

    @property
    def pollers_pattern(self) -> str:
        """SCAN pattern matching every poller health hash (for /readyz and metrics)."""
        return f"{self.prefix}poller:*:health"

    @property
    def events(self) -> str:
        return f"{self.prefix}events"

    @property
    def subscriptions(self) -> str:
        return f"{self.prefix}subscriptions"

    @property
    def deliveries(self) -> str:
        return f"{self.prefix}deliveries"

    @property
    def deliveries_due(self) -> str:
        return f"{self.prefix}deliveries:due"

    @property
    def deliveries_dead(self) -> str:
        return f"{self.prefix}deliveries:dead"

    def delivery_claim(self, delivery_id: str) -> str:
        return f"{self.prefix}delivery:{delivery_id}:claim"

    @property
    def deliveries_payload(self) -> str:
        return f"{self.prefix}deliveries:payload"

    @property
    def deliveries_all(self) -> str:
        return f"{self.prefix}deliveries:all"

    @property
    def deliveries_sent(self) -> str:
        return f"{self.prefix}deliveries:sent"

    @property
    def dispatch_watermark(self) -> str:
        return f"{self.prefix}dispatch:watermark"
