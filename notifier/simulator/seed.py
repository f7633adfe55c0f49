"""Seed data for the simulator: a realistic workspace, the same for the same seed.

Owns: ``seed_workspace`` (six accounts on six platforms, N posts spread over every status with matching
per-account deliveries, packs, and a second workspace whose accounts, posts and packs the default key must not
see — except its public pack), and the realistic bits the live mode reuses: captions, error messages and
platform URLs.

Must not import: httpx, redis, apprise, litestar, uvicorn, or any notifier module outside ``notifier.simulator``.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from notifier.simulator.records import JsonObj, fmt_ms, to_ms
from notifier.simulator.state import SimState

ACCOUNTS: tuple[tuple[str, str, str, str], ...] = (
    # platform, type, username, display name
    ("instagram", "byo", "brandhq", "Brand HQ"),
    ("tiktok", "hosted", "ugc_trends_42", "Hosted Trends 42"),
    ("youtube", "byo", "brandhq_tv", "Brand HQ TV"),
    ("pinterest", "byo", "brandhq_pins", "Brand HQ Pins"),
    ("linkedin", "byo", "brand-hq", "Brand HQ"),
    ("facebook", "hosted", "brandhq.official", "Brand HQ Official"),
)

CAPTIONS: tuple[str, ...] = (
    "Holiday drops start Monday!",
    "3 dinner ideas under 20 minutes #easydinner",
    "Behind the scenes of our spring shoot",
    "POV: you finally found the perfect desk setup",
    "New colourway just landed. Which one are you picking?",
    "Monday motivation: small steps, every day",
    "We asked 100 people their favourite productivity hack",
    "Restock alert: the bestseller is back",
    "How we pack 1,000 orders a day (sped up)",
    "Giveaway! Tag a friend who needs this",
    "The 5-minute morning routine that changed everything",
    "Unboxing the limited edition with @ugc_trends_42",
)

ERRORS: dict[str, tuple[str, ...]] = {
    "tiktok": (
        "TikTok rejected the upload: video duration exceeds the account's limit",
        "TikTok API error: spam_risk_too_many_posts",
    ),
    "instagram": (
        "Instagram access token expired; reconnect the account",
        "Instagram rejected the media: aspect ratio not supported for Reels",
    ),
    "youtube": ("YouTube quota exceeded for today; try again tomorrow", "YouTube rejected the title: too long"),
    "pinterest": ("Pinterest board not found or no longer accessible", "Pinterest rate limit reached"),
    "linkedin": ("LinkedIn organization permission revoked", "LinkedIn media upload timed out"),
    "facebook": ("Facebook page token is invalid; reconnect the page", "Media processing failed: unsupported codec"),
}

_WEIGHTS = {
    "draft": 8,
    "pending": 6,
    "scheduled": 26,
    "posted": 36,
    "failed": 8,
    "partial": 6,
    "retry": 4,
    "deleted": 3,
}


def error_message(platform: str, rng: random.Random) -> str:
    return rng.choice(ERRORS.get(platform, ("Publishing failed: the platform returned an unknown error",)))


def published_url(platform: str, username: str, rng: random.Random) -> str:
    digits = "".join(rng.choice("0123456789") for _ in range(19))
    slug = "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") for _ in range(11))
    return {
        "tiktok": f"https://www.tiktok.com/@{username}/video/{digits}",
        "instagram": f"https://www.instagram.com/reel/{slug}/",
        "youtube": f"https://www.youtube.com/shorts/{slug}",
        "pinterest": f"https://www.pinterest.com/pin/{digits[:18]}/",
        "linkedin": f"https://www.linkedin.com/feed/update/urn:li:activity:{digits}/",
        "facebook": f"https://www.facebook.com/{username}/videos/{digits[:16]}/",
    }.get(platform, f"https://example.com/{platform}/{slug}")


@dataclass(frozen=True)
class SeedInfo:
    """What ``seed_workspace`` created (ids in creation order)."""

    account_ids: list[str] = field(default_factory=list)
    post_ids: list[str] = field(default_factory=list)
    pack_ids: list[str] = field(default_factory=list)
    other_scope_id: str | None = None
    other_account_ids: list[str] = field(default_factory=list)

    def to_json(self) -> JsonObj:
        return asdict(self)


def seed_workspace(
    state: SimState,
    *,
    posts: int = 20,
    seed: int = 0,
    now: datetime | str | None = None,
    other_scope: bool = True,
) -> SeedInfo:
    """Fill an empty ``state`` with a realistic workspace for its default key (same seed and ``now``, same data)."""
    rng = random.Random(seed)
    now_ms = to_ms(now) if now is not None else state.now_ms()
    with state.batch():
        accounts = [
            state.add_account(platform, id=_uuid(rng), type=kind, username=user, display_name=name)
            for platform, kind, user, name in ACCOUNTS
        ]
        info = SeedInfo(account_ids=[a["id"] for a in accounts])
        statuses = rng.choices(list(_WEIGHTS), weights=list(_WEIGHTS.values()), k=posts)
        previous_created: int | None = None
        for n, status in enumerate(statuses):
            created = now_ms - rng.randrange(60_000, 30 * 86_400_000)
            if n == 1 and previous_created is not None:
                created = previous_created  # two posts share one created_at, as real bursts do
            previous_created = created
            chosen = rng.sample(accounts, k=rng.choice((1, 1, 2, 2, 3)) if status != "partial" else 2)
            info.post_ids.append(_add_seeded_post(state, rng, status, created, now_ms, chosen))
        packs = (("Motivation Pack", 24, False), ("Product Shots", 8, False), ("Summer Vibes", 12, True))
        for name, images, public in packs:
            created_at = fmt_ms(now_ms - rng.randrange(86_400_000, 90 * 86_400_000))
            pack = state.add_pack(name, id=_uuid(rng), images=images, is_public=public, created_at=created_at)
            info.pack_ids.append(pack["id"])
        if other_scope:
            info = _add_other_scope(state, rng, now_ms, info, accounts[0]["id"])
    return info


def _add_seeded_post(
    state: SimState, rng: random.Random, status: str, created: int, now_ms: int, accounts: list[JsonObj]
) -> str:
    minute = 60_000
    if status in ("scheduled", "pending"):
        overdue = status == "scheduled" and rng.random() < 0.15
        when = now_ms - rng.randrange(60, 600) * minute if overdue else now_ms + rng.randrange(60, 7 * 1440) * minute
    elif status == "draft":
        when = None
    else:
        when = min(created + rng.randrange(5, 2880) * minute, now_ms - minute)
    states: list[JsonObj] = []
    for i, account in enumerate(accounts):
        state_status = status if status != "partial" else ("posted" if i == 0 else "failed")
        states.append(_delivery(rng, account, state_status, when))
    video = rng.random() < 0.65
    post_id = _uuid(rng)
    platforms = {a["platform"] for a in accounts}
    media: JsonObj = (
        {"type": "video", "url": f"https://cdn.example.com/videos/{post_id[:8]}.mp4"}
        if video
        else {"type": "slideshow", "urls": [f"https://cdn.example.com/slides/{post_id[:8]}/{k}.jpg" for k in range(4)]}
    )
    state.add_post(
        id=post_id,
        status=status,
        caption=rng.choice(CAPTIONS),
        created_at=fmt_ms(created),
        scheduled_at=seconds_ts(when) if when is not None else None,
        media=media,
        music_url=(
            f"https://www.tiktok.com/music/original-sound-{rng.randrange(10**18, 10**19)}"
            if "tiktok" in platforms and not video
            else None
        ),
        tiktok={"privacy_level": "PUBLIC_TO_EVERYONE", "disable_comment": False} if "tiktok" in platforms else None,
        pinterest=(
            {"board_id": str(rng.randrange(10**17, 10**18)), "title": "Dinner board", "tags": ["easy dinner"]}
            if "pinterest" in platforms
            else None
        ),
        accounts=states,
    )
    return post_id


def _delivery(rng: random.Random, account: JsonObj, status: str, when: int | None) -> JsonObj:
    delivery: dict[str, Any] = {"account_id": account["id"], "status": status}
    if status in ("posted", "failed", "retry") and when is not None:
        attempted = when + rng.randrange(5_000, 120_000)
        delivery["last_attempted_at"] = fmt_ms(attempted)
        if status == "posted":
            delivery["published_at"] = fmt_ms(attempted)
            delivery["published_url"] = published_url(account["platform"], account["username"] or "", rng)
        else:
            delivery["error_message"] = error_message(account["platform"], rng)
    return delivery


def _add_other_scope(state: SimState, rng: random.Random, now_ms: int, info: SeedInfo, own_account: str) -> SeedInfo:
    """A second workspace: one post shared with ours (we see only our delivery), one we must not see, packs."""
    other = state.add_scope("workspace", owner_user_id=_uuid(rng), workspace_id=_uuid(rng))
    theirs = state.add_account(
        "tiktok", id=_uuid(rng), type="byo", username="agency_clips", display_name="Agency Clips", scope_id=other.id
    )
    created = fmt_ms(now_ms - 3_600_000)
    shared = state.add_post(
        id=_uuid(rng), status="scheduled", caption="Collab drop with the agency", created_at=created,
        scheduled_at=seconds_ts(now_ms + 86_400_000),
        accounts=[own_account, theirs["id"]],
    )  # fmt: skip
    state.add_post(
        id=_uuid(rng), status="failed", caption="Agency internal test", created_at=created,
        accounts=[{"account_id": theirs["id"], "status": "failed", "error_message": error_message("tiktok", rng)}],
    )  # fmt: skip
    public = state.add_pack("Community Stock Pack", id=_uuid(rng), images=30, is_public=True, scope_id=other.id)
    state.add_pack("Agency Internal", id=_uuid(rng), images=5, scope_id=other.id)
    return SeedInfo(
        account_ids=info.account_ids,
        post_ids=[*info.post_ids, shared["id"]],
        pack_ids=[*info.pack_ids, public["id"]],
        other_scope_id=other.id,
        other_account_ids=[theirs["id"]],
    )


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def seconds_ts(ms: int) -> str:
    """``2025-02-01T15:00:00Z``: whole seconds, as the pages write ``scheduled_at``."""
    return fmt_ms(ms)[:-5] + "Z"
