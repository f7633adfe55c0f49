"""Window planning for the list sweep: tiles the axis, respects the page size, keeps ties together."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from notifier.sweep import Window, plan_windows


def covers(windows: list[Window], t: int) -> list[int]:
    return [
        i
        for i, w in enumerate(windows)
        if (w.since_ms is None or t >= w.since_ms) and (w.until_ms is None or t <= w.until_ms)
    ]


def test_few_known_posts_need_one_window() -> None:
    """Up to 100 known posts below the covered instant are listed in one unbounded-below window."""
    assert plan_windows(range(50), upper_ms=1_000) == [Window(since_ms=None, until_ms=1_000)]


def test_steady_state_window_count_is_ceil_of_known() -> None:
    """4,900 distinct known instants need exactly 49 windows of 100."""
    assert len(plan_windows(range(0, 49_000, 10), upper_ms=10**9)) == 49


def test_instants_above_the_upper_bound_are_not_counted() -> None:
    """Posts above the bound are listed already and take no window room."""
    windows = plan_windows([500] * 3 + list(range(100)), upper_ms=499)
    assert len(windows) == 1


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 2_000), max_size=600), st.integers(0, 2_500))
def test_windows_tile_the_axis_and_hold_at_most_a_page(known: list[int], upper: int) -> None:
    """Every instant up to the bound lies in some window; no window holds more than 100 distinct-cut posts."""
    windows = plan_windows(known, upper)
    assert windows[0].until_ms == upper and windows[-1].since_ms is None
    for t in range(-5, upper + 1, 7):
        assert covers(windows, t), t
    below = [t for t in known if t <= upper]
    for i, _w in enumerate(windows):
        inside = [t for t in below if i in covers(windows, t) and covers(windows, t)[0] == i]
        ties = max((below.count(t) for t in set(inside)), default=0)
        assert len(inside) <= max(100, ties)
