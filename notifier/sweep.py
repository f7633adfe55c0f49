"""Which posts to list each cycle, in as few requests as the list endpoint allows.

The list endpoint has no offset: it returns at most 100 posts, newest ``created_at`` first, with inclusive
``since``/``until`` bounds and an optional ``status`` filter, plus scope-wide counts per status. One sweep:

1. ``GET /posts?limit=100`` (no filter): the newest posts of any status and the counts. Fewer than 100 back
   means that is every post. Otherwise, when older posts than last cycle's newest are still unseen, page on
   (a burst of new posts is found in one cycle, settled or not).
2. For each open status (draft, pending, scheduled, retry) whose count says posts remain unseen: split the
   ``created_at`` axis below what step 1 covered into windows holding at most 100 known posts each (known
   from the snapshot index), and list each window (plus the covered instant itself, when still short). A
   window that comes back full is only paged further
   when the counts say something is still missing, so a steady state costs ``ceil(open / 100)`` requests
   however old the posts are. ``retry`` is not counted by the API; it is listed only when the counts leave
   posts unexplained.
3. Ties: a full page whose posts all share one ``created_at`` cannot be paged past with ``until``; the
   status filter already splits it; beyond 100 posts of one status at one instant the API offers no way, so
   the sweep says so (``truncated``) and moves on.

Posts that were open and are not in the sweep have left the open set: the poller fetches them by id.

Must not import: redis, apprise, litestar, prometheus_client.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from notifier.genviral.client import PartnerClient
from notifier.models import COUNTED_STATUSES, Post, PostsPage, PostsSummary, ms_to_ts, ts_ms

log = logging.getLogger("notifier.sweep")

PAGE = 100


@dataclass(frozen=True)
class Window:
    """Inclusive ``created_at`` bounds in ms; None is unbounded."""

    since_ms: int | None
    until_ms: int | None


def plan_windows(known_ms: Iterable[int], upper_ms: int | None, cap: int = PAGE) -> list[Window]:
    """Windows tiling ``(-inf, upper_ms]``, newest first, each holding at most ``cap`` of the known instants.

    Cuts fall between distinct instants (posts sharing one instant stay in one window); neighbouring windows
    share their boundary instant, so nothing between them can be missed.
    """
    ordered = sorted((t for t in known_ms if upper_ms is None or t <= upper_ms), reverse=True)
    windows: list[Window] = []
    top = upper_ms
    count = 0
    i = 0
    while i < len(ordered):
        j = i
        while j < len(ordered) and ordered[j] == ordered[i]:
            j += 1
        group = j - i
        if count and count + group > cap:
            # cut between ordered[i - 1] (in the window) and ordered[i] (in the next one)
            cut = (ordered[i - 1] + ordered[i]) // 2 if ordered[i - 1] - ordered[i] > 1 else ordered[i]
            windows.append(Window(since_ms=cut, until_ms=top))
            top, count = cut, 0
        count += group
        i = j
    windows.append(Window(since_ms=None, until_ms=top))
    return windows


@dataclass
class SweepResult:
    posts: dict[str, Post] = field(default_factory=dict)
    summary: PostsSummary | None = None
    #: Posts in ``posts`` per status, kept as pages arrive.
    counts: Counter[str] = field(default_factory=Counter)
    #: created_at (ms) of the newest post of the scope: the first page is the newest posts.
    newest_ms: int | None = None


class Sweeper:
    """Runs one sweep with a client; ``known`` maps each open status to the known posts' created_at (ms)."""

    def __init__(self, client: PartnerClient, open_statuses: Iterable[str]) -> None:
        self._client = client
        self._statuses = tuple(open_statuses)

    async def sweep(self, known: Mapping[str, list[int]], watermark_ms: int | None) -> SweepResult:
        out = SweepResult()
        top = await self._page(out, status=None, since_ms=None, until_ms=None)
        out.summary = top.summary
        out.newest_ms = max((ts_ms(p.created_at) for p in top.posts), default=None)
        if len(top.posts) < PAGE:
            return out
        covered = min(ts_ms(p.created_at) for p in top.posts)
        # New posts since last cycle beyond the first page: page on, unfiltered, down to the watermark.
        while watermark_ms is not None and covered > watermark_ms:
            page = await self._page(out, status=None, since_ms=watermark_ms, until_ms=covered)
            covered = self._next_until(out, page.posts, covered) if len(page.posts) >= PAGE else watermark_ms
        for status in self._statuses:
            await self._sweep_status(out, status, known.get(status, []), covered)
        return out

    async def _sweep_status(self, out: SweepResult, status: str, known_ms: list[int], covered: int) -> None:
        expected = self._expected(out, status)
        if expected is not None and self._collected(out, status) >= expected:
            return
        full: list[tuple[Window, int]] = []
        # Below the instant the first page reached; posts at that instant are mostly in hand already.
        for window in plan_windows(known_ms, covered - 1):
            page = await self._page(out, status=status, since_ms=window.since_ms, until_ms=window.until_ms)
            if len(page.posts) >= PAGE:
                full.append((window, self._next_until(out, page.posts, window.until_ms)))
        # A full window may hold more; page on only while the counts say posts are missing.
        while full and (expected is None or self._collected(out, status) < expected):
            window, until = full.pop(0)
            page = await self._page(out, status=status, since_ms=window.since_ms, until_ms=until)
            if len(page.posts) >= PAGE:
                full.append((window, self._next_until(out, page.posts, until)))
        if expected is None or self._collected(out, status) < expected:
            # still short: posts tied at the covered instant that the first page had no room for
            await self._page(out, status=status, since_ms=covered, until_ms=covered)

    def _expected(self, out: SweepResult, status: str) -> int | None:
        """How many posts of ``status`` exist, when the counts tell; ``0`` when nothing is unexplained."""
        assert out.summary is not None
        if status in COUNTED_STATUSES:
            return out.summary.by_status.get(status, 0)
        uncounted = out.summary.total - sum(out.summary.by_status.values())
        return None if uncounted > 0 else 0

    @staticmethod
    def _collected(out: SweepResult, status: str) -> int:
        return out.counts[status]

    def _next_until(self, out: SweepResult, posts: list[Post], until_ms: int | None) -> int:
        """The cursor below a full page: its oldest instant (inclusive), or past it when the page is one instant."""
        oldest = min(ts_ms(p.created_at) for p in posts)
        newest = max(ts_ms(p.created_at) for p in posts)
        if oldest == newest:
            log.warning("more than %d posts share created_at %s; some cannot be listed", PAGE, ms_to_ts(oldest))
            return oldest - 1
        return oldest

    async def _page(
        self, out: SweepResult, *, status: str | None, since_ms: int | None, until_ms: int | None
    ) -> PostsPage:
        page = await self._client.list_posts(
            status=status,
            limit=PAGE,
            since=ms_to_ts(since_ms) if since_ms is not None else None,
            until=ms_to_ts(until_ms) if until_ms is not None else None,
        )
        for p in page.posts:
            before = out.posts.get(p.id)
            if before is not None:
                out.counts[before.status] -= 1
            out.counts[p.status] += 1
            out.posts[p.id] = p
        return page
