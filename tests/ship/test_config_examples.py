"""The example files in config/: the settings example documents every setting, the subscriptions example is valid."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from notifier.config import Settings
from notifier.models import Subscription
from notifier.subscriptions_file import SubscriptionsFileError, parse_subscriptions
from tests.ship import chartkit

SETTINGS_EXAMPLE = chartkit.REPO / "config" / "settings.example.yaml"
SUBSCRIPTIONS_EXAMPLE = chartkit.REPO / "config" / "subscriptions.example.yaml"


def top_level_keys_with_comment(path: Path) -> dict[str, bool]:
    """{top-level key: whether a comment line sits right above it or above the keys grouped with it}."""
    lines = path.read_text().splitlines()
    out: dict[str, bool] = {}
    for i, line in enumerate(lines):
        if line and not line[0].isspace() and not line.startswith("#") and ":" in line:
            j = i - 1
            while j >= 0 and lines[j] and not lines[j].startswith("#") and not lines[j][0].isspace():
                j -= 1  # keys written as a group (host / port) share the comment above the group
            out[line.split(":", 1)[0]] = j >= 0 and lines[j].startswith("#")
    return out


def test_settings_example_documents_every_setting() -> None:
    """Every Settings field is a key of the example, each with a comment, and there is no other key."""
    fields = {f.name for f in dataclasses.fields(Settings)}
    keys = top_level_keys_with_comment(SETTINGS_EXAMPLE)
    assert set(keys) == fields
    assert [k for k, commented in keys.items() if not commented] == []
    text = SETTINGS_EXAMPLE.read_text()
    for name in fields:
        assert f"NOTIFIER_{name.upper()}" in text, name


def test_settings_example_holds_the_defaults() -> None:
    """Loaded by the service's own loader, the example equals the defaults: what it says is what you get."""
    assert Settings.load(environ={}, config_file=SETTINGS_EXAMPLE) == Settings()


def test_settings_example_values_are_loadable_from_the_chart() -> None:
    """Every key the chart lets users set in `settings` exists in the settings example (and so in Settings)."""
    schema_keys = set(chartkit.chart().schema["properties"]["settings"]["properties"])
    assert schema_keys <= set(top_level_keys_with_comment(SETTINGS_EXAMPLE))
    chart_managed = {"genviral_api_key", "admin_token", "redis_url", "data_dir", "host", "port", "subscriptions_file"}
    assert schema_keys | chart_managed == {f.name for f in dataclasses.fields(Settings)}


def load_subscriptions(text: str, path: Path) -> list[Subscription]:
    """The service's own subscriptions-file loader (raises SubscriptionsFileError naming the problem)."""
    return parse_subscriptions(text, path, now=datetime(2025, 1, 1, tzinfo=UTC))


def test_subscriptions_example_is_valid() -> None:
    """The service's subscriptions-file loader accepts the example, with every subscription of it."""
    subs = load_subscriptions(SUBSCRIPTIONS_EXAMPLE.read_text(), SUBSCRIPTIONS_EXAMPLE)
    raw = yaml.safe_load(SUBSCRIPTIONS_EXAMPLE.read_text())["subscriptions"]
    assert [s.name for s in subs] == [r["name"] for r in raw]
    assert all(s.source == "config" for s in subs)


def test_subscriptions_example_shows_slack_failures_and_email_on_posted() -> None:
    """The example sends failures to Slack and posted posts by email, as the docs describe."""
    subs = load_subscriptions(SUBSCRIPTIONS_EXAMPLE.read_text(), SUBSCRIPTIONS_EXAMPLE)
    by_scheme = {s.urls[0].split("://", 1)[0]: s for s in subs}
    assert "post.failed" in by_scheme["slack"].events
    assert "post.posted" in by_scheme["mailtos"].events


def test_subscriptions_loader_rejects_a_broken_example(tmp_path: Path) -> None:
    """A typo in the example's format is caught by the same loader (so acceptance above means something)."""
    broken = SUBSCRIPTIONS_EXAMPLE.read_text().replace("- post.failed", "- post.fialed")
    with pytest.raises(SubscriptionsFileError, match=r"post\.fialed"):
        load_subscriptions(broken, tmp_path / "subscriptions.yaml")


def test_chart_subscriptions_configmap_is_loadable() -> None:
    """The subscriptions.yaml the chart renders into its ConfigMap is accepted by the service's loader."""
    values = chartkit.ci_values("everything")
    configmap = chartkit.one(chartkit.manifests(values), "ConfigMap")
    subs = load_subscriptions(configmap["data"]["subscriptions.yaml"], Path("subscriptions.yaml"))
    assert [s.name for s in subs] == [raw["name"] for raw in values["subscriptions"]]
