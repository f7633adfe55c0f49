"""Subscriptions as code: the YAML file is applied, reloaded on change, and a bad file changes nothing."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from notifier.errors import ReadOnly
from notifier.models import SubscriptionPatch
from notifier.store.keys import Keys
from notifier.store.subscriptions import SubscriptionStore
from notifier.subscriptions_file import (
    SubscriptionsFileError,
    SubscriptionsFileWatcher,
    parse_subscriptions,
    subscription_id_for,
)
from tests.delivery.conftest import Receiver, fast_settings, make_event, publish, running, wait_until

NOW = datetime(2025, 3, 1, tzinfo=UTC)

GOOD = """
- name: TikTok failures
  urls: ["json://127.0.0.1:9/a"]
  events: [post.failed, delivery.failed]
  filters: {platforms: [tiktok]}
- id: ops-all
  name: Everything
  urls: ["console://"]
  events: ["*"]
  storm_threshold: 20
"""


def test_parse_gives_stable_ids_and_config_source() -> None:
    """Items without an id get one derived from the name; explicit ids are kept; source is config."""
    subs = parse_subscriptions(GOOD, Path("subs.yaml"), now=NOW)
    assert [s.id for s in subs] == [subscription_id_for("TikTok failures"), "ops-all"]
    assert subscription_id_for("TikTok failures") == subscription_id_for(" TikTok failures ")
    assert all(s.source == "config" for s in subs) and subs[1].storm_threshold == 20
    assert parse_subscriptions("subscriptions:" + GOOD, Path("s"), now=NOW)[1].id == "ops-all"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("- name: [unclosed", "not valid YAML"),
        ("name: x", "must hold a list"),
        ("- name: a\n  urls: [console://]\n  events: ['*']\n  colour: red", "unknown field"),
        ("- name: a\n  urls: [console://]\n  events: ['*']\n  filters: {platform: [tiktok]}", "unknown field"),
        ("- name: a\n  urls: ['nope://x']\n  events: ['*']", "urls[0]"),
        ("- name: a\n  urls: [console://]\n  events: [post.exploded]", "events[0]"),
        (
            "- name: a\n  urls: [console://]\n  events: ['*']\n- name: a\n  urls: [console://]\n  events: ['*']",
            "same id",
        ),
    ],
)
def test_bad_files_name_the_file_and_the_problem(text: str, problem: str) -> None:
    """Every kind of bad file is refused with a message naming the file and what is wrong."""
    with pytest.raises(SubscriptionsFileError) as info:
        parse_subscriptions(text, Path("/etc/notifier/subs.yaml"), now=NOW)
    assert "/etc/notifier/subs.yaml" in str(info.value) and problem in str(info.value)


async def test_watcher_reloads_and_keeps_last_good_set(
    redis: aioredis.Redis, keys: Keys, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A changed file is applied; a bad one is logged with its path and the previous set stays in force."""
    path = tmp_path / "subs.yaml"
    path.write_text(GOOD)
    store = SubscriptionStore(redis, keys)
    watcher = SubscriptionsFileWatcher(path, store)
    assert await watcher.check() is True
    assert {s.name for s in await store.list_all()} == {"TikTok failures", "Everything"}
    assert await watcher.check() is False  # unchanged
    with pytest.raises(ReadOnly):
        await store.update("ops-all", SubscriptionPatch(enabled=False), now=NOW)
    path.write_text("- name: [broken")
    with caplog.at_level(logging.ERROR, logger="notifier.subscriptions_file"):
        assert await watcher.check() is False
    assert str(path) in caplog.text and "last good" in caplog.text and watcher.healthy is False
    assert {s.name for s in await store.list_all()} == {"TikTok failures", "Everything"}
    path.write_text(GOOD.split("- id:")[0])
    assert await watcher.check() is True and watcher.healthy is True
    assert [s.name for s in await store.list_all()] == ["TikTok failures"]


async def test_dispatcher_follows_the_file(
    redis: aioredis.Redis, keys: Keys, tmp_path: Path, receiver: Receiver
) -> None:
    """A dispatcher with a subscriptions file delivers to it, and to the new URL after the file changes."""
    path = tmp_path / "subs.yaml"
    path.write_text(f"- name: file sub\n  urls: ['{receiver.url('webhook', '/one')}']\n  events: ['*']\n")
    async with running(redis, keys, settings=fast_settings(subscriptions_file=path)):
        await wait_until(lambda: SubscriptionStore(redis, keys).count())
        await publish(redis, keys, make_event(1))
        await wait_until(lambda: receiver.at("/one"))
        path.write_text(f"- name: file sub\n  urls: ['{receiver.url('webhook', '/two')}']\n  events: ['*']\n")
        await wait_until(lambda: _url_is(redis, keys, "/two"))
        await publish(redis, keys, make_event(2))
        await wait_until(lambda: receiver.at("/two"))
    assert [h.json()["id"] for h in receiver.at("/one")] == ["evt_post.failed_1"]
    assert [h.json()["id"] for h in receiver.at("/two")] == ["evt_post.failed_2"]


async def _url_is(redis: aioredis.Redis, keys: Keys, path: str) -> bool:
    subs = await SubscriptionStore(redis, keys).list_all()
    return len(subs) == 1 and subs[0].urls[0].endswith(path)
