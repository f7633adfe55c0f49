"""Alert rules, the chart's PrometheusRule, the Grafana dashboard and the metrics exposition, checked offline."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import generate_latest
from prometheus_client.metrics import MetricWrapperBase

from notifier.metrics import Metrics
from tests.design import DESIGN_METRICS
from tests.ship import chartkit

RULES = chartkit.REPO / "config" / "alerts" / "notifier-rules.yaml"
DASHBOARD = chartkit.REPO / "config" / "grafana" / "notifier-dashboard.json"
ALERTS_TEST = Path(__file__).with_name("alerts_test.yaml")
#: Series Prometheus makes itself; anything else a query names must be exported by the service.
PROMETHEUS_SERIES = {"up"}


def exported_series() -> dict[str, str]:
    """{series name a query may use: metric family} for every metric Metrics.create() registers.

    Counters are queried with _total, histograms through _bucket/_sum/_count, gauges by their name.
    """
    names: dict[str, str] = {}
    for family in Metrics.create().registry.collect():
        if family.type == "counter":
            names[f"{family.name}_total"] = f"{family.name}_total"
        elif family.type == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                names[family.name + suffix] = family.name
        else:
            names[family.name] = family.name
    return names


def series_in(expr: str) -> set[str]:
    """Metric names an expression selects (identifiers followed by a selector, a range or an operator)."""
    names = set(re.findall(r"\b(notifier_[a-z0-9_]+)\b", expr))
    names |= {n for n in PROMETHEUS_SERIES if re.search(rf"\b{n}\s*{{", expr)}
    return names


def rule_groups(path: Path) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(path.read_text())["groups"]
    return groups


def alerts_by_name(groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), input=stdin.decode() if stdin else None, capture_output=True, text=True, timeout=60, check=False
    )


# ----------------------------------------------------------------------------------------------------------------
# Alert rules.


def test_alert_rules_cover_the_failures_operators_need(promtool: str) -> None:
    """The rule file has the required alerts, each with a severity and a summary, and passes promtool check rules."""
    alerts = alerts_by_name(rule_groups(RULES))
    assert set(alerts) >= {
        "NotifierDown",
        "NotifierPollStale",
        "NotifierPartnerApiAuthErrors",
        "NotifierDeadDeliveriesGrowing",
        "NotifierDeliveryBacklogHigh",
    }
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert rule["annotations"]["summary"], name
    result = run(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts)} rules found" in result.stdout


def test_alert_rules_fire_when_they_should(promtool: str) -> None:
    """promtool's rule unit tests: each alert fires on its failure, with its labels and text, and not when healthy."""
    result = run(promtool, "test", "rules", str(ALERTS_TEST))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alert_rules_use_only_exported_metrics() -> None:
    """Every series an alert queries is one the service exports (or Prometheus' own `up`)."""
    known = set(exported_series()) | PROMETHEUS_SERIES
    for name, rule in alerts_by_name(rule_groups(RULES)).items():
        used = series_in(rule["expr"])
        assert used, name
        assert used <= known, (name, used - known)
    exprs = " ".join(r["expr"] for r in alerts_by_name(rule_groups(RULES)).values())
    assert "notifier_last_successful_poll_timestamp_seconds" in exprs
    assert 'code=~"401|402|403"' in exprs


def test_chart_prometheus_rule_matches_the_rule_file(everything_values: dict[str, Any]) -> None:
    """With default thresholds the chart's PrometheusRule has the rule file's alerts, on the release's own job."""
    values = chartkit.merge(
        everything_values, {"prometheusRule": {"pollStaleSeconds": 600, "deliveryBacklogThreshold": 100}}
    )
    rendered = alerts_by_name(chartkit.prometheus_rule_groups(chartkit.manifests(values)))
    own_selector = f'job="notifier-metrics", namespace="{chartkit.NAMESPACE}"'
    for name, rule in alerts_by_name(rule_groups(RULES)).items():
        chart_rule = rendered[name]
        assert own_selector in chart_rule["expr"], name
        assert chart_rule["expr"].replace(own_selector, 'job="genviral-notifier"') == rule["expr"], name
        assert chart_rule.get("for") == rule.get("for"), name
        assert chart_rule["labels"] == rule["labels"], name
        assert chart_rule["annotations"]["summary"] == rule["annotations"]["summary"], name
    assert "NotifierNotificationsFailing" in rendered  # prometheusRule.additionalRules


def test_chart_prometheus_rule_thresholds_follow_values(everything_docs: list[dict[str, Any]]) -> None:
    """prometheusRule.pollStaleSeconds and deliveryBacklogThreshold end up in the expressions."""
    rendered = alerts_by_name(chartkit.prometheus_rule_groups(everything_docs))
    assert rendered["NotifierPollStale"]["expr"].endswith("> 300")
    assert rendered["NotifierDeliveryBacklogHigh"]["expr"].endswith("> 50")


def test_rendered_prometheus_rule_passes_promtool(
    promtool: str, everything_docs: list[dict[str, Any]], tmp_path: Path
) -> None:
    """The rule groups of the rendered PrometheusRule pass promtool check rules."""
    groups = chartkit.prometheus_rule_groups(everything_docs)
    rules_file = tmp_path / "rendered-rules.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": groups}))
    result = run(promtool, "check", "rules", str(rules_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in result.stdout


# ----------------------------------------------------------------------------------------------------------------
# Metrics exposition.


def exercised_metrics() -> Metrics:
    """Metrics.create() with a sample in every labelled series, so the exposition shows every family in full."""
    metrics = Metrics.create()
    for field in dataclasses.fields(metrics):
        collector = getattr(metrics, field.name)
        if not isinstance(collector, MetricWrapperBase):
            continue
        labelnames = getattr(collector, "_labelnames", ())
        target = collector.labels(*["sample"] * len(labelnames)) if labelnames else collector
        if hasattr(target, "inc"):
            target.inc()
        else:
            target.observe(0.2)
    return metrics


def test_metrics_exposition_passes_promtool(promtool: str) -> None:
    """promtool check metrics finds no problem in the service's exposition (names, units, help, _total)."""
    text = generate_latest(exercised_metrics().registry)
    assert b"notifier_poll_cycles_total" in text
    result = run(promtool, "check", "metrics", stdin=text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""
    assert result.stderr.strip() == ""


# ----------------------------------------------------------------------------------------------------------------
# Grafana dashboard.


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def dashboard_exprs() -> list[tuple[str, str]]:
    """(panel title, expr) of every query of the dashboard, template variables included."""
    out = []
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            out.append((panel["title"], target["expr"]))
    for var in dashboard()["templating"]["list"]:
        if var["type"] == "query":
            out.append((f"${var['name']}", var["query"]["query"]))
    return out


def test_dashboard_uses_only_exported_metrics() -> None:
    """Every series a dashboard query selects is exported by Metrics.create() (with the right suffix) or is `up`."""
    known = set(exported_series()) | PROMETHEUS_SERIES
    for title, expr in dashboard_exprs():
        used = series_in(expr)
        assert used, (title, expr)
        assert used <= known, (title, sorted(used - known))


def test_dashboard_shows_every_design_metric() -> None:
    """Each DESIGN §6 metric, and every other family the service exports, appears in at least one panel."""
    families = exported_series()
    shown = {families[name] for _, expr in dashboard_exprs() for name in series_in(expr) if name in families}
    assert set(families.values()) <= shown
    assert shown >= DESIGN_METRICS


def test_dashboard_is_well_formed() -> None:
    """Unique panel ids, panels inside the 24-column grid, queries through the datasource variable."""
    data = dashboard()
    assert data["uid"] == "genviral-notifier"
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in data["templating"]["list"]}
    assert {"datasource", "namespace", "job"} <= variables
    for panel in data["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert 'namespace=~"$namespace"' in target["expr"], panel["title"]


def test_dashboard_queries_parse(promtool: str, tmp_path: Path) -> None:
    """Every dashboard query is valid PromQL (checked by promtool as recording rules, variables filled in)."""
    rules = []
    for i, (title, expr) in enumerate(dashboard_exprs()):
        if expr.startswith("label_values("):
            expr = expr.removeprefix("label_values(").rsplit(",", 1)[0]  # the series selector inside
        concrete = expr.replace("$__rate_interval", "5m").replace("$namespace", ".*").replace("$job", ".*")
        rules.append({"record": f"dashboard:query_{i}:x", "expr": concrete, "labels": {"panel": title}})
    rules_file = tmp_path / "queries.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run(promtool, "check", "rules", str(rules_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
