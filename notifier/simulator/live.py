"""Live mode: posts of the simulator change on their own, for ``notifier demo`` and ``notifier simulate --live``.

Owns: ``LiveDriver``. Each ``tick`` publishes posts whose ``scheduled_at`` has come (within the last ten minutes —
older ones stay stuck, as overdue posts do): most become ``posted``, some ``failed`` with a realistic error, some
``partial``, a few go to ``retry`` first; a tick later each posted delivery gets its ``published_url``; then a new
post is scheduled a little more than one interval ahead, so every tick after the first has something to publish;
now and then an account's status flips or a pack gains an image. ``start`` runs ticks on a thread (the first one
at once) until ``stop``.

Must not import: httpx, redis, apprise, litestar, uvicorn, or any notifier module outside ``notifier.simulator``.
"""

from __future__ import annotations

import logging
import random
import threading
from datetime import datetime
from types import TracebackType

from notifier.simulator.records import JsonObj, fmt_ms, to_ms
from notifier.simulator.seed import CAPTIONS, error_message, published_url, seconds_ts
from notifier.simulator.state import SimState

log = logging.getLogger("notifier.simulator")

_DUE_WINDOW_MS = 10 * 60_000
_WAITING = ("scheduled", "pending", "retry")


class LiveDriver:
    """Changes ``state`` every ``interval`` seconds. ``tick(now)`` is public so tests can step it by hand."""

    def __init__(self, state: SimState, *, interval: float = 2.5, seed: int | None = None, max_open: int = 30) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.state = state
        self.interval = interval
        self.max_open = max_open
        self.rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------------------------------------- thread

    def start(self) -> LiveDriver:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="simulator-live", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LiveDriver:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:  # a bad tick must not end the demo
                log.exception("simulator: live tick failed")
            if self._stop.wait(self.interval):
                return

    # ---------------------------------------------------------------------------------------------- one step

    def tick(self, now: datetime | None = None) -> list[str]:
        """One round of changes at ``now`` (default: the state's clock). Returns what changed, for logs."""
        now_ms = to_ms(now if now is not None else self.state.clock())
        changes: list[str] = []
        with self.state.batch():
            accounts = {a["id"]: a for a in self.state.all_accounts() if a["scope_id"] == self.state.default_scope.id}
            changes += self._publish_urls(now_ms, accounts)
            changes += self._publish_due(now_ms, accounts)
            changes += self._schedule_new(now_ms, accounts)
            changes += self._wander(now_ms, accounts)
        return changes

    def _publish_due(self, now_ms: int, accounts: dict[str, JsonObj]) -> list[str]:
        changes = []
        due = [
            p
            for status in _WAITING
            for p in self.state.posts(status=status)
            if p["scheduled_at"] and now_ms - _DUE_WINDOW_MS <= to_ms(p["scheduled_at"]) <= now_ms
        ]
        for post in sorted(due, key=lambda p: p["scheduled_at"])[:3]:
            states = post["accounts"]["states"]
            roll = self.rng.random()
            if post["status"] != "retry" and roll < 0.1:
                outcome = "retry"
            elif roll < 0.72:
                outcome = "posted"
            elif roll < 0.86 or len(states) < 2:
                outcome = "failed"
            else:
                outcome = "partial"
            new_states = [self._attempt(s, outcome, i, now_ms, accounts) for i, s in enumerate(states)]
            fields: JsonObj = {"status": outcome, "accounts": new_states}
            if outcome == "retry":
                fields["scheduled_at"] = seconds_ts(now_ms + int(self.interval * 1500))
            self.state.update_post(post["id"], **fields)
            changes.append(f"post {post['id']} {post['status']} -> {outcome}")
        return changes

    def _attempt(self, state: JsonObj, outcome: str, index: int, now_ms: int, accounts: dict[str, JsonObj]) -> JsonObj:
        platform = accounts.get(state["account_id"], {}).get("platform", "tiktok")
        result = outcome if outcome != "partial" else ("posted" if index == 0 else "failed")
        new = dict(state, status=result, last_attempted_at=fmt_ms(now_ms), error_message=None)
        if result == "posted":
            new["published_at"] = fmt_ms(now_ms)
        elif result == "failed":
            new["error_message"] = error_message(platform, self.rng)
        else:
            new["error_message"] = "Rate limited by the platform; retrying shortly"
        return new

    def _publish_urls(self, now_ms: int, accounts: dict[str, JsonObj]) -> list[str]:
        changes = []
        for status in ("posted", "partial"):
            for post in self.state.posts(status=status, limit=50):
                for delivery in post["accounts"]["states"]:
                    published = delivery["published_at"]
                    if delivery["status"] != "posted" or delivery["published_url"] or not published:
                        continue
                    if to_ms(published) > now_ms - int(self.interval * 900):
                        continue  # the platform takes a moment before the URL is known
                    account = accounts.get(delivery["account_id"], {})
                    url = published_url(account.get("platform", ""), account.get("username") or "", self.rng)
                    self.state.set_delivery(post["id"], delivery["account_id"], published_url=url)
                    changes.append(f"post {post['id']} published at {url}")
        return changes

    def _schedule_new(self, now_ms: int, accounts: dict[str, JsonObj]) -> list[str]:
        active = [a["id"] for a in accounts.values() if a["active"]]
        waiting = sum(len(self.state.posts(status=s, limit=self.max_open)) for s in ("scheduled", "pending"))
        if not active or waiting >= self.max_open:
            return []
        chosen = self.rng.sample(active, k=min(len(active), self.rng.choice((1, 1, 2, 3))))
        when = now_ms + int(self.interval * 1000 * self.rng.uniform(0.2, 0.9))
        post = self.state.add_post(
            status="scheduled",
            caption=self.rng.choice(CAPTIONS),
            created_at=fmt_ms(now_ms),
            scheduled_at=seconds_ts(when),
            accounts=chosen,
        )
        return [f"post {post['id']} scheduled for {post['scheduled_at']}"]

    def _wander(self, now_ms: int, accounts: dict[str, JsonObj]) -> list[str]:
        changes = []
        if accounts and self.rng.random() < 0.08:
            account = self.rng.choice(list(accounts.values()))
            status = "active" if account["status"] != "active" else self.rng.choice(("expired", "reauth_required"))
            self.state.update_account(account["id"], status=status)
            changes.append(f"account {account['id']} {account['status']} -> {status}")
        own = [p for p in self.state.all_packs() if p["scope_id"] == self.state.default_scope.id]
        if own and self.rng.random() < 0.1:
            pack = self.rng.choice(own)
            self.state.add_pack_image(pack["id"], created_at=fmt_ms(now_ms))
            changes.append(f"pack {pack['id']} now has {pack['image_count'] + 1} images")
        return changes
