"""The simulated Partner API's whole state, and the one object tests and demos steer it through.

Owns: ``SimState`` — scopes and their API keys, accounts, posts (with per-account deliveries), packs (with
images), the account condition (ok / 402 subscription_required / 403 tier_not_allowed), injected faults and the
request log — plus the read queries the HTTP endpoints answer from. Every method takes one re-entrant lock, so a
test may change the state from its own thread while the server thread serves. Methods return plain JSON-ready
dicts (copies), never the live records.

Must not import: httpx, redis, apprise, litestar, uvicorn, or any notifier module outside ``notifier.simulator``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from notifier.simulator.packs import PackControls
from notifier.simulator.posts import PostBook, build_deliveries, bulk_records, delivery_values
from notifier.simulator.records import (
    AccountRec,
    DeliveryRec,
    JsonObj,
    PackRec,
    PostRec,
    Scope,
    account_wire,
    check_fields,
    lookup,
    post_wire,
    summary_wire,
    to_ms,
    ts_text,
)
from notifier.simulator.traffic import TrafficControls

CONDITIONS: dict[str, int] = {"ok": 200, "subscription_required": 402, "tier_not_allowed": 403}
_ACCOUNT_FIELDS = frozenset({"platform", "type", "username", "display_name", "status", "active", "scope_id"})
_POST_FIELDS = frozenset(
    {"status", "caption", "created_at", "scheduled_at", "media", "music_url", "tiktok", "pinterest", "accounts"}
)


def new_id() -> str:
    return str(uuid.uuid4())


class SimState(PackControls, TrafficControls):
    """Everything the simulator serves. ``api_key`` opens the default scope (a workspace unless ``kind``)."""

    def __init__(
        self,
        api_key: str | None = "sim-key",
        *,
        kind: str = "workspace",
        owner_user_id: str | None = None,
        workspace_id: str | None = None,
        clock: Callable[[], datetime] | None = None,
        keep_requests: int = 1000,
    ) -> None:
        super().__init__(keep_requests)
        self.lock = threading.RLock()
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.scopes: dict[str, Scope] = {}
        self._keys: dict[str, str] = {}
        self._revoked: set[str] = set()
        self.accounts: dict[str, AccountRec] = {}
        self.book = PostBook(self._scope_of)
        self.packs: dict[str, PackRec] = {}
        self._condition = "ok"
        #: ``error_code`` put on 401 answers; the pages document none, so None leaves it out.
        self.unauthorized_error_code: str | None = None
        self.default_scope = self.add_scope(kind, owner_user_id=owner_user_id, workspace_id=workspace_id)
        if api_key is not None:
            self.add_key(api_key)

    def __repr__(self) -> str:  # never shows keys
        return f"SimState(scopes={len(self.scopes)}, accounts={len(self.accounts)}, posts={len(self.book)})"

    def now_ms(self) -> int:
        return to_ms(self.clock())

    # ---------------------------------------------------------------------------------------------- scopes, keys

    def add_scope(
        self,
        kind: str = "workspace",
        *,
        owner_user_id: str | None = None,
        workspace_id: str | None = None,
        api_key: str | None = None,
    ) -> Scope:
        """A new key scope; a workspace gets a workspace id, a personal scope has none."""
        if kind not in ("workspace", "personal"):
            raise ValueError("kind must be 'workspace' or 'personal'")
        if kind == "personal" and workspace_id is not None:
            raise ValueError("a personal scope has no workspace_id")
        scope = Scope(
            kind,
            owner_user_id or new_id(),
            (workspace_id or new_id()) if kind == "workspace" else None,
        )
        with self.lock:
            if scope.id in self.scopes:
                raise ValueError(f"scope {scope.id} already exists")
            self.scopes[scope.id] = scope
            if api_key is not None:
                self.add_key(api_key, scope.id)
        return scope

    def add_key(self, api_key: str, scope_id: str | None = None) -> None:
        with self.lock:
            self._keys[api_key] = self._scope(scope_id).id
            self._revoked.discard(api_key)

    def revoke_key(self, api_key: str) -> None:
        """The key stops working (401), as a revoked token does."""
        with self.lock:
            if self._keys.pop(api_key, None) is not None:
                self._revoked.add(api_key)

    def authenticate(self, api_key: str | None) -> tuple[Scope | None, str]:
        """The key's scope, or None and why not."""
        with self.lock:
            if not api_key:
                return None, "Missing API key"
            scope_id = self._keys.get(api_key)
            if scope_id is None:
                return None, "API key has been revoked" if api_key in self._revoked else "Invalid API key"
            return self.scopes[scope_id], ""

    @property
    def condition(self) -> str:
        return self._condition

    def set_condition(self, condition: str | int) -> None:
        """``ok`` (or 200), ``subscription_required`` (402) or ``tier_not_allowed`` (403), for every endpoint."""
        by_code = {code: name for name, code in CONDITIONS.items()}
        name = by_code.get(condition) if isinstance(condition, int) else condition
        if name not in CONDITIONS:
            raise ValueError(f"condition must be one of {', '.join(CONDITIONS)} (or 200, 402, 403)")
        with self.lock:
            self._condition = name

    # ---------------------------------------------------------------------------------------------- accounts

    def add_account(
        self,
        platform: str,
        *,
        id: str | None = None,
        username: str | None = None,
        display_name: str | None = None,
        type: str = "byo",
        status: str = "active",
        active: bool = True,
        scope_id: str | None = None,
    ) -> JsonObj:
        with self.lock:
            rec = AccountRec(
                id or new_id(), self._scope(scope_id).id, platform, type, username, display_name, status, active
            )
            if rec.id in self.accounts:
                raise ValueError(f"account {rec.id} already exists")
            self.accounts[rec.id] = rec
            self.book.rescope()
            return self._account_json(rec)

    def update_account(self, account_id: str, **fields: Any) -> JsonObj:
        """Change any of platform, type, username, display_name, status, active (listed or not), scope_id."""
        check_fields(fields, _ACCOUNT_FIELDS, "account")
        with self.lock:
            rec = lookup(self.accounts, account_id, "account")
            if "scope_id" in fields:
                fields["scope_id"] = self._scope(fields["scope_id"]).id
            moved = fields.get("scope_id", rec.scope_id) != rec.scope_id
            for name, value in fields.items():
                setattr(rec, name, value)
            if moved:
                self.book.rescope()
            return self._account_json(rec)

    def remove_account(self, account_id: str) -> None:
        """Forget an account: it leaves ``GET /accounts`` and its deliveries leave every post of the scope."""
        with self.lock:
            lookup(self.accounts, account_id, "account")
            del self.accounts[account_id]
            self.book.rescope()

    def account(self, account_id: str) -> JsonObj:
        with self.lock:
            return self._account_json(lookup(self.accounts, account_id, "account"))

    def all_accounts(self) -> list[JsonObj]:
        with self.lock:
            return [self._account_json(rec) for rec in self.accounts.values()]

    # ---------------------------------------------------------------------------------------------- posts

    def add_post(
        self,
        *,
        id: str | None = None,
        status: str = "scheduled",
        caption: str = "",
        created_at: datetime | str | None = None,
        scheduled_at: datetime | str | None = None,
        media: JsonObj | None = None,
        music_url: str | None = None,
        tiktok: JsonObj | None = None,
        pinterest: JsonObj | None = None,
        accounts: Sequence[str | JsonObj] | JsonObj | None = None,
    ) -> JsonObj:
        """Create a post. ``accounts``: ids or delivery dicts (default: every active account of the default scope;
        a delivery's status defaults to the post's). Returns the post with all its deliveries."""
        post_id = id or new_id()
        with self.lock:
            rec = PostRec(
                id=post_id,
                status=status,
                created_ms=self.now_ms() if created_at is None else to_ms(created_at),
                caption=caption,
                scheduled_at=ts_text(scheduled_at, seconds=True),
                media=media
                if media is not None
                else {"type": "video", "url": f"https://cdn.example.com/{post_id}.mp4"},
                music_url=music_url,
                tiktok=tiktok,
                pinterest=pinterest,
                deliveries=self._deliveries(accounts, status),
            )
            self.book.insert(rec)
            return post_wire(rec, rec.deliveries)

    def update_post(self, post_id: str, **fields: Any) -> JsonObj:
        """Change any documented field; ``accounts`` replaces every delivery (ids or delivery dicts)."""
        check_fields(fields, _POST_FIELDS, "post")
        with self.lock:
            rec = lookup(self.book.posts, post_id, "post")
            values = dict(fields)
            if "created_at" in values:
                values["created_ms"] = to_ms(values.pop("created_at"))
            if "scheduled_at" in values:
                values["scheduled_at"] = ts_text(values["scheduled_at"], seconds=True)
            if "accounts" in values:
                values["deliveries"] = self._deliveries(values.pop("accounts"), values.get("status", rec.status))
            with self.book.modify(post_id):
                for name, value in values.items():
                    setattr(rec, name, value)
            return post_wire(rec, rec.deliveries)

    def set_delivery(self, post_id: str, account_id: str, **fields: Any) -> JsonObj:
        """Change (or add) one account's delivery state: status, published_at, error_message, last_attempted_at,
        published_url. Returns the post."""
        with self.lock:
            rec = lookup(self.book.posts, post_id, "post")
            values = delivery_values(fields)
            with self.book.modify(post_id):
                current = next((d for d in rec.deliveries if d.account_id == account_id), None)
                if current is None:
                    current = DeliveryRec(account_id, rec.status)
                    rec.deliveries.append(current)
                for name, value in values.items():
                    setattr(current, name, value)
            return post_wire(rec, rec.deliveries)

    def remove_delivery(self, post_id: str, account_id: str) -> JsonObj:
        with self.lock:
            rec = lookup(self.book.posts, post_id, "post")
            with self.book.modify(post_id):
                rec.deliveries = [d for d in rec.deliveries if d.account_id != account_id]
            return post_wire(rec, rec.deliveries)

    def delete_post(self, post_id: str) -> None:
        with self.lock:
            lookup(self.book.posts, post_id, "post")
            self.book.remove(post_id)

    def post(self, post_id: str) -> JsonObj:
        """A post with every delivery, whatever the scope."""
        with self.lock:
            rec = lookup(self.book.posts, post_id, "post")
            return post_wire(rec, rec.deliveries)

    def posts(self, *, status: str | None = None, limit: int | None = None) -> list[JsonObj]:
        """Posts of every scope, newest first."""
        with self.lock:
            out: list[JsonObj] = []
            for rec in self.book.newest():
                if status is None or rec.status == status:
                    out.append(post_wire(rec, rec.deliveries))
                    if limit is not None and len(out) >= limit:
                        break
            return out

    def post_count(self) -> int:
        with self.lock:
            return len(self.book)

    def add_posts_bulk(
        self,
        count: int,
        *,
        statuses: Sequence[str] = ("scheduled",),
        account_ids: Sequence[str] | None = None,
        accounts_per_post: int = 1,
        start: datetime | str | None = None,
        step_ms: int = 1000,
        scheduled_at: datetime | str | None = None,
        caption: str = "Bulk post",
    ) -> list[str]:
        """Create ``count`` posts at once (5,000 in well under a second). Statuses and accounts are taken round
        robin; created_at runs from ``start`` (default: now minus count*step) by ``step_ms`` (0: all equal)."""
        if count < 0 or accounts_per_post < 1 or not statuses:
            raise ValueError("count >= 0, accounts_per_post >= 1 and at least one status are required")
        with self.lock:
            recs = bulk_records(
                [new_id() for _ in range(count)],
                statuses=statuses,
                targets=list(account_ids) if account_ids is not None else self._default_targets(),
                accounts_per_post=accounts_per_post,
                first_ms=to_ms(start) if start is not None else self.now_ms() - count * step_ms,
                step_ms=step_ms,
                scheduled_at=ts_text(scheduled_at, seconds=True),
                caption=caption,
            )
            self.book.insert_many(recs)
            return [r.id for r in recs]

    def reset(self) -> None:
        """Empty the data, clear faults and the log, condition back to ok. Scopes and keys stay."""
        with self.lock:
            self.accounts.clear()
            self.book.clear()
            self.packs.clear()
            self._condition = "ok"
            self.faults.clear()
            self.log.clear()

    @contextmanager
    def batch(self) -> Iterator[SimState]:
        """Hold the lock across several changes, so no request sees them half done."""
        with self.lock:
            yield self

    # ---------------------------------------------------------------------------------------------- API reads

    def query_posts(
        self, scope: Scope, *, status: str | None, limit: int, since_us: int | None, until_us: int | None
    ) -> JsonObj:
        with self.lock:
            page = self.book.page(scope.id, status=status, limit=limit, since_us=since_us, until_us=until_us)
            return {
                "summary": summary_wire(self.book.counts(scope.id)),
                "posts": [post_wire(rec, self._states_in(rec, scope)) for rec in page],
            }

    def post_in(self, scope: Scope, post_id: str) -> JsonObj | None:
        with self.lock:
            rec = self.book.posts.get(post_id)
            if rec is None or scope.id not in rec.scopes:
                return None
            return post_wire(rec, self._states_in(rec, scope))

    def accounts_in(self, scope: Scope) -> JsonObj:
        with self.lock:
            listed = [account_wire(a, scope) for a in self.accounts.values() if a.scope_id == scope.id and a.active]
        return {
            "scope": scope.kind,
            "owner_user_id": scope.owner_user_id,
            "workspace_id": scope.workspace_id,
            "accounts": listed,
        }

    # ---------------------------------------------------------------------------------------------- internals

    def _scope_of(self, account_id: str) -> str | None:
        rec = self.accounts.get(account_id)
        return rec.scope_id if rec is not None else None

    def _states_in(self, rec: PostRec, scope: Scope) -> list[DeliveryRec]:
        return [d for d in rec.deliveries if self._scope_of(d.account_id) == scope.id]

    def _scope(self, scope_id: str | None) -> Scope:
        if scope_id is None:
            return self.default_scope
        return lookup(self.scopes, scope_id, "scope")

    def _default_targets(self) -> list[str]:
        targets = [a.id for a in self.accounts.values() if a.scope_id == self.default_scope.id and a.active]
        if not targets:
            raise ValueError("the default scope has no active account; add one or pass account_ids")
        return targets

    def _deliveries(self, spec: Sequence[str | JsonObj] | JsonObj | None, status: str) -> list[DeliveryRec]:
        return build_deliveries(spec, status, self._default_targets)

    def _account_json(self, rec: AccountRec) -> JsonObj:
        out = account_wire(rec, self.scopes[rec.scope_id])
        out.update(scope_id=rec.scope_id, active=rec.active)
        return out


__all__ = ["CONDITIONS", "SimState", "new_id"]
