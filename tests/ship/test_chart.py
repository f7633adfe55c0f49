"""The Helm chart: lint, strict schema validation of what it renders, values.schema.json, and what it promises."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from tests.ship import chartkit
from tests.ship.chartkit import HelmError, ci_values, manifests, merge, of_kind, one

FULLNAME = f"{chartkit.RELEASE}-genviral-notifier"  # the release name does not contain the chart name
SCENARIOS = ["default", "everything", "external-redis"]


def deployments(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{role: Deployment}, the role read from the container's `serve --role` arguments."""
    out = {}
    for dep in of_kind(docs, "Deployment"):
        args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[:2] == ["serve", "--role"], args
        out[args[2]] = dep
    return out


def container(dep: dict[str, Any]) -> dict[str, Any]:
    containers = dep["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: dict[str, Any] = containers[0]
    return result


def render_error(values: dict[str, Any]) -> str:
    with pytest.raises(HelmError) as info:
        chartkit.render(values)
    return str(info.value)


# ----------------------------------------------------------------------------------------------------------------
# Lint and strict validation.


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_chart_lints_clean_in_strict_mode(scenario: str) -> None:
    """`helm lint --strict` reports no warning or error for each CI scenario."""
    assert chartkit.lint(ci_values(scenario)) == []


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_rendered_manifests_validate_strictly(scenario: str) -> None:
    """Every rendered manifest matches its Kubernetes 1.33 / prometheus-operator schema, unknown fields included."""
    docs = manifests(ci_values(scenario))
    assert docs
    assert chartkit.invalid(docs) == []


def test_validation_catches_typos_and_wrong_types(everything_docs: list[dict[str, Any]]) -> None:
    """The validator rejects a misspelt field, a wrong type and bad monitoring objects, so a pass means something."""
    service = copy.deepcopy(one(everything_docs, "Service", "notifier"))
    service["spec"]["ports"][0]["porst"] = 80
    deployment = copy.deepcopy(of_kind(everything_docs, "Deployment")[0])
    deployment["spec"]["replicas"] = "3"
    monitor = copy.deepcopy(one(everything_docs, "ServiceMonitor"))
    monitor["spec"]["endpoints"][0]["prot"] = "http"
    rule = copy.deepcopy(one(everything_docs, "PrometheusRule"))
    del rule["spec"]["groups"][0]["rules"][0]["expr"]
    for broken in (service, deployment, monitor, rule):
        assert chartkit.validate(broken), broken["kind"]


def test_default_install_renders_the_core_objects(default_docs: list[dict[str, Any]]) -> None:
    """Defaults give one all-roles Deployment, its Services, ConfigMap, Secret, PDB; no monitoring CRs, no Redis."""
    kinds = sorted(d["kind"] for d in default_docs)
    assert kinds == sorted(
        ["ConfigMap", "Deployment", "PodDisruptionBudget", "Pod", "Secret", "Service", "Service", "ServiceAccount"]
    )
    assert list(deployments(default_docs)) == ["all"]


def test_everything_on_renders_every_optional_part(everything_docs: list[dict[str, Any]]) -> None:
    """The everything-on scenario renders per-role Deployments, Redis, ServiceMonitor, PrometheusRule, PDBs."""
    kinds = {d["kind"] for d in everything_docs}
    assert {"ServiceMonitor", "PrometheusRule", "StatefulSet", "NetworkPolicy"} <= kinds
    assert sorted(deployments(everything_docs)) == ["api", "dispatcher", "poller"]
    assert len(of_kind(everything_docs, "PodDisruptionBudget")) == 3


# ----------------------------------------------------------------------------------------------------------------
# values.schema.json and the render-time checks.


BAD_VALUES = {
    "replicaCount as a string": ({"replicaCount": "3"}, "/replicaCount"),
    "negative replicaCount": ({"replicaCount": -1}, "/replicaCount"),
    "unknown top-level key": ({"replicas": 2}, "replicas"),
    "misspelt setting": ({"settings": {"poll_intervall": 5}}, "poll_intervall"),
    "chart-managed setting": ({"settings": {"redis_url": "redis://r:6379/0"}}, "redis_url"),
    "zero poll interval": ({"settings": {"poll_interval": 0}}, "/settings/poll_interval"),
    "unknown log format": ({"settings": {"log_format": "xml"}}, "/settings/log_format"),
    "unknown pull policy": ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    "port out of range": ({"service": {"port": 70000}}, "/service/port"),
    "unknown event type": (
        {"subscriptions": [{"name": "x", "urls": ["json://h/p"], "events": ["post.exploded"]}]},
        "/subscriptions/0/events/0",
    ),
    "subscription without urls": ({"subscriptions": [{"name": "x", "events": ["*"]}]}, "urls"),
    "unknown platform": (
        {
            "subscriptions": [
                {"name": "x", "urls": ["json://h/p"], "events": ["*"], "filters": {"platforms": ["myspace"]}}
            ]
        },
        "/subscriptions/0/filters/platforms/0",
    ),
    "redis url with http scheme": ({"redis": {"url": "http://redis:6379"}}, "/redis/url"),
    "root pod": ({"podSecurityContext": {"runAsNonRoot": False}}, "/podSecurityContext/runAsNonRoot"),
    "privilege escalation": (
        {"securityContext": {"allowPrivilegeEscalation": True}},
        "/securityContext/allowPrivilegeEscalation",
    ),
    "scrape interval without unit": ({"serviceMonitor": {"interval": "thirty"}}, "/serviceMonitor/interval"),
    "PDB as words": ({"podDisruptionBudget": {"maxUnavailable": "half"}}, "/podDisruptionBudget/maxUnavailable"),
    "memory limit as words": ({"resources": {"limits": {"memory": "lots"}}}, "/resources/limits/memory"),
    "bad image digest": ({"image": {"digest": "latest"}}, "/image/digest"),
}


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_schema_rejects_bad_values(case: str, default_values: dict[str, Any]) -> None:
    """values.schema.json rejects each bad value, naming where it is."""
    override, where = BAD_VALUES[case]
    message = render_error(merge(default_values, override))
    assert "schema" in message
    assert where in message


def test_schema_accepts_every_ci_scenario() -> None:
    """The schema accepts the CI scenarios (so the rejections above are about the bad values)."""
    for scenario in SCENARIOS:
        chartkit.chart().validate_schema(ci_values(scenario))


def test_api_key_is_required_without_existing_secret() -> None:
    """Without genviral.apiKey or existingSecret the render fails naming genviral.apiKey."""
    assert "genviral.apiKey is required" in render_error({})


@pytest.mark.parametrize("override", [{"replicaCount": 2}, {"roles": {"split": True}}])
def test_several_pods_need_a_shared_redis(override: dict[str, Any], default_values: dict[str, Any]) -> None:
    """replicaCount > 1 or split roles without a shared Redis fail, naming the settings that fix it."""
    message = render_error(merge(default_values, override))
    assert "redis.url" in message
    assert "redis.enabled" in message


def test_chart_redis_and_external_redis_are_exclusive(default_values: dict[str, Any]) -> None:
    """redis.enabled together with redis.url is refused rather than silently picking one."""
    message = render_error(merge(default_values, {"redis": {"enabled": True, "url": "redis://r:6379/0"}}))
    assert "redis.enabled" in message


# ----------------------------------------------------------------------------------------------------------------
# Rollouts follow configuration.


def pod_annotations(values: dict[str, Any]) -> dict[str, str]:
    dep = deployments(manifests(values))["all"]
    annotations: dict[str, str] = dep["spec"]["template"]["metadata"]["annotations"]
    return annotations


def test_checksum_changes_when_config_changes(default_values: dict[str, Any]) -> None:
    """A settings or subscriptions change alters checksum/config (the pods roll); an image change does not."""
    before = pod_annotations(default_values)["checksum/config"]
    assert len(before) == 64
    polled = pod_annotations(merge(default_values, {"settings": {"poll_interval": 10}}))["checksum/config"]
    subscribed = pod_annotations(
        merge(default_values, {"subscriptions": [{"name": "all", "urls": ["json://h/p"], "events": ["*"]}]})
    )["checksum/config"]
    retagged = pod_annotations(merge(default_values, {"image": {"tag": "9.9.9"}}))["checksum/config"]
    assert polled != before
    assert subscribed not in {before, polled}
    assert retagged == before


def test_checksum_changes_when_chart_secret_changes(default_values: dict[str, Any]) -> None:
    """A new API key alters checksum/secret, so the pods pick it up."""
    before = pod_annotations(default_values)["checksum/secret"]
    after = pod_annotations(merge(default_values, {"genviral": {"apiKey": "rotated"}}))["checksum/secret"]
    assert before != after


# ----------------------------------------------------------------------------------------------------------------
# Security and health.


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_pod_runs_locked_down(scenario: str) -> None:
    """Pods: non-root, RuntimeDefault seccomp, no token; containers: read-only root, no escalation, no capabilities."""
    specs = chartkit.pod_specs(manifests(ci_values(scenario)))
    assert specs
    for name, spec in specs:
        pod_sc = spec["securityContext"]
        assert pod_sc["runAsNonRoot"] is True, name
        assert pod_sc["runAsUser"] > 0, name
        assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert "add" not in sc["capabilities"], name


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_notifier_pods_have_writable_tmp_and_data(scenario: str) -> None:
    """With a read-only root, /tmp and the data dir are emptyDirs, and NOTIFIER_DATA_DIR points at the latter."""
    for role, dep in deployments(manifests(ci_values(scenario))).items():
        spec = dep["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in container(dep)["volumeMounts"]}
        data_dir = chartkit.env_of(container(dep))["NOTIFIER_DATA_DIR"]
        for path in ("/tmp", data_dir):
            assert "emptyDir" in volumes[mounts[path]], (role, path)


def test_probes_hit_healthz_and_readyz(everything_docs: list[dict[str, Any]]) -> None:
    """Every notifier container: liveness and startup on /healthz, readiness on /readyz, on its named http port."""
    for role, dep in deployments(everything_docs).items():
        c = container(dep)
        assert [p["name"] for p in c["ports"]] == ["http"], role
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert str(c["ports"][0]["containerPort"]) == chartkit.env_of(c)["NOTIFIER_PORT"]
        assert c["resources"]["limits"]["memory"]


# ----------------------------------------------------------------------------------------------------------------
# Secrets, Redis, configuration.


def secret_data(docs: list[dict[str, Any]]) -> dict[str, str]:
    data = one(docs, "Secret")["data"]
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def test_api_key_and_admin_token_come_from_the_chart_secret(default_docs: list[dict[str, Any]]) -> None:
    """The chart's Secret holds the API key and admin token; the container reads both from it, never in clear."""
    assert secret_data(default_docs) == {"genviral-api-key": "ci-partner-api-key", "admin-token": "ci-admin-token"}
    env = chartkit.env_of(container(deployments(default_docs)["all"]))
    assert env["NOTIFIER_GENVIRAL_API_KEY"] == {"secretKeyRef": {"name": FULLNAME, "key": "genviral-api-key"}}
    assert env["NOTIFIER_ADMIN_TOKEN"] == {"secretKeyRef": {"name": FULLNAME, "key": "admin-token"}}


def test_admin_token_is_generated_when_unset(default_values: dict[str, Any]) -> None:
    """Without adminToken the chart makes up a long random one."""
    values = {k: v for k, v in default_values.items() if k != "adminToken"}
    token = secret_data(manifests(values))["admin-token"]
    assert len(token) == 48
    assert token.isalnum()


def test_existing_secrets_are_referenced_not_created() -> None:
    """With existingSecret and redis.existingSecret the chart creates no Secret and reads the given keys."""
    docs = manifests(ci_values("external-redis"))
    assert of_kind(docs, "Secret") == []
    env = chartkit.env_of(container(deployments(docs)["all"]))
    assert env["NOTIFIER_GENVIRAL_API_KEY"] == {"secretKeyRef": {"name": "notifier-credentials", "key": "api-key"}}
    assert env["NOTIFIER_ADMIN_TOKEN"] == {"secretKeyRef": {"name": "notifier-credentials", "key": "admin-token"}}
    assert env["NOTIFIER_REDIS_URL"] == {"secretKeyRef": {"name": "notifier-redis", "key": "url"}}


def test_redis_url_is_kept_in_the_secret(default_values: dict[str, Any]) -> None:
    """redis.url (it may hold a password) goes into the chart's Secret; the pods roll out one at a time."""
    url = "redis://:s3cret@redis.db.svc:6379/2"
    docs = manifests(merge(default_values, {"redis": {"url": url}, "replicaCount": 3}))
    assert secret_data(docs)["redis-url"] == url
    dep = deployments(docs)["all"]
    assert chartkit.env_of(container(dep))["NOTIFIER_REDIS_URL"] == {
        "secretKeyRef": {"name": FULLNAME, "key": "redis-url"}
    }
    assert dep["spec"]["replicas"] == 3
    assert dep["spec"]["strategy"]["type"] == "RollingUpdate"
    assert url not in str(dep)


def test_embedded_redis_runs_one_pod_at_a_time(default_docs: list[dict[str, Any]]) -> None:
    """Without a Redis, no NOTIFIER_REDIS_URL is set (embedded) and the Deployment recreates rather than surges."""
    dep = deployments(default_docs)["all"]
    assert "NOTIFIER_REDIS_URL" not in chartkit.env_of(container(dep))
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    assert dep["spec"]["replicas"] == 1


def test_chart_redis_is_a_persistent_statefulset(everything_docs: list[dict[str, Any]]) -> None:
    """redis.enabled: a one-replica StatefulSet with a PVC and no eviction, its Service used by every role."""
    sts = one(everything_docs, "StatefulSet")
    assert sts["spec"]["replicas"] == 1
    claim = sts["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert claim["spec"]["storageClassName"] == "fast-ssd"
    args = sts["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    assert args[args.index("--appendonly") + 1] == "yes"
    service = one(everything_docs, "Service", "notifier-redis")
    assert service["spec"]["selector"] == sts["spec"]["selector"]["matchLabels"]
    for dep in deployments(everything_docs).values():
        assert chartkit.env_of(container(dep))["NOTIFIER_REDIS_URL"] == "redis://notifier-redis:6379/0"


def test_redis_network_policy_admits_only_notifier_pods(everything_docs: list[dict[str, Any]]) -> None:
    """The NetworkPolicy selects the Redis pods and admits the pods of every notifier role."""
    policy = one(everything_docs, "NetworkPolicy")
    sts = one(everything_docs, "StatefulSet")
    assert policy["spec"]["podSelector"]["matchLabels"] == sts["spec"]["selector"]["matchLabels"]
    allowed = policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    for dep in deployments(everything_docs).values():
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert allowed.items() <= labels.items()
    assert not allowed.items() <= sts["spec"]["template"]["metadata"]["labels"].items()


def test_settings_file_loads_with_the_service_settings_loader(tmp_path: Any) -> None:
    """The ConfigMap's settings.yaml is accepted by Settings.load and carries the chart values."""
    from notifier.config import Settings

    values = ci_values("everything")
    docs = manifests(values)
    settings_file = tmp_path / "settings.yaml"
    settings_file.write_text(one(docs, "ConfigMap")["data"]["settings.yaml"])
    env = {k: v for k, v in chartkit.env_of(container(deployments(docs)["api"])).items() if isinstance(v, str)}
    env.pop("NOTIFIER_SUBSCRIPTIONS_FILE")  # mounted in the pod, not here
    env.pop("NOTIFIER_CONFIG")
    loaded = Settings.load(environ=env, config_file=settings_file)
    assert loaded.poll_interval == values["settings"]["poll_interval"]
    assert loaded.key_prefix == "notifier:prod:"
    assert loaded.retry_schedule == tuple(float(s) for s in values["settings"]["retry_schedule"])
    assert loaded.redis_url == "redis://notifier-redis:6379/0"
    assert str(loaded.data_dir) == "/data"


def test_subscriptions_are_mounted_where_the_service_looks(everything_docs: list[dict[str, Any]]) -> None:
    """values.subscriptions land in the ConfigMap and are mounted at NOTIFIER_SUBSCRIPTIONS_FILE."""
    import yaml

    data = one(everything_docs, "ConfigMap")["data"]
    assert yaml.safe_load(data["subscriptions.yaml"]) == {"subscriptions": ci_values("everything")["subscriptions"]}
    for dep in deployments(everything_docs).values():
        path = chartkit.env_of(container(dep))["NOTIFIER_SUBSCRIPTIONS_FILE"]
        directory, filename = path.rsplit("/", 1)
        mount = next(m for m in container(dep)["volumeMounts"] if m["mountPath"] == directory)
        volume = next(v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"])
        assert volume["configMap"]["items"] == [{"key": "subscriptions.yaml", "path": filename}]
        assert "subPath" not in mount  # a directory mount sees ConfigMap edits


def test_subscriptions_can_come_from_a_secret() -> None:
    """subscriptionsExistingSecret mounts that Secret's key instead of a ConfigMap entry."""
    docs = manifests(ci_values("external-redis"))
    assert "subscriptions.yaml" not in one(docs, "ConfigMap")["data"]
    dep = deployments(docs)["all"]
    volume = next(v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "subscriptions")
    assert volume["secret"] == {
        "secretName": "notifier-subscriptions",
        "items": [{"key": "subscriptions.yaml", "path": "subscriptions.yaml"}],
    }


# ----------------------------------------------------------------------------------------------------------------
# Scaling and Services.


def test_split_roles_get_their_own_deployments(everything_docs: list[dict[str, Any]]) -> None:
    """roles.split: api / poller / dispatcher Deployments with their replica counts; the Service reaches api only."""
    deps = deployments(everything_docs)
    assert {role: d["spec"]["replicas"] for role, d in deps.items()} == {"api": 2, "poller": 2, "dispatcher": 3}
    assert container(deps["dispatcher"])["resources"]["limits"]["memory"] == "512Mi"
    assert container(deps["poller"])["resources"]["limits"]["memory"] == "384Mi"  # the top-level default
    selector = one(everything_docs, "Service", "notifier")["spec"]["selector"]
    for role, dep in deps.items():
        reached = selector.items() <= dep["spec"]["template"]["metadata"]["labels"].items()
        assert reached == (role == "api"), role
    for pdb in of_kind(everything_docs, "PodDisruptionBudget"):
        matched = [
            r for r, d in deps.items() if pdb["spec"]["selector"]["matchLabels"] == d["spec"]["selector"]["matchLabels"]
        ]
        assert len(matched) == 1
        assert pdb["spec"] == {"minAvailable": 1, "selector": pdb["spec"]["selector"]}


@pytest.mark.parametrize("scenario", ["default", "everything"])
def test_metrics_service_covers_every_notifier_pod_and_nothing_else(scenario: str) -> None:
    """The headless metrics Service selects the pods of every role (ready or not), not Redis nor the test pod."""
    docs = manifests(ci_values(scenario))
    service = one(docs, "Service", f"{FULLNAME if scenario == 'default' else 'notifier'}-metrics")
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    selector = service["spec"]["selector"].items()
    for dep in of_kind(docs, "Deployment"):
        assert selector <= dep["spec"]["template"]["metadata"]["labels"].items()
    for other in of_kind(docs, "StatefulSet"):
        assert not selector <= other["spec"]["template"]["metadata"]["labels"].items()
    for pod in of_kind(docs, "Pod"):
        assert not selector <= pod["metadata"]["labels"].items()


def test_service_monitor_scrapes_the_metrics_service(everything_docs: list[dict[str, Any]]) -> None:
    """The ServiceMonitor selects exactly the metrics Service, on its port name, at /metrics, with the given labels."""
    monitor = one(everything_docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    wanted = monitor["spec"]["selector"]["matchLabels"].items()
    services = [s for s in of_kind(everything_docs, "Service") if wanted <= s["metadata"]["labels"].items()]
    assert [s["metadata"]["name"] for s in services] == ["notifier-metrics"]
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["port"] in {p["name"] for p in services[0]["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert endpoint["interval"] == "15s"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [chartkit.NAMESPACE]}


def test_helm_test_pod_calls_the_service(default_docs: list[dict[str, Any]]) -> None:
    """The `helm test` hook GETs /healthz on the Service's name and port."""
    pod = one(default_docs, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = pod["spec"]["containers"][0]["args"][0]
    service = one(default_docs, "Service", FULLNAME)
    assert f"http://{FULLNAME}:{service['spec']['ports'][0]['port']}/healthz" in script


def test_notes_tell_how_to_reach_docs_and_metrics(default_values: dict[str, Any]) -> None:
    """NOTES.txt gives the port-forward command, the /schema and /metrics URLs and how to read the admin token."""
    text = chartkit.notes(default_values)
    assert f"kubectl -n {chartkit.NAMESPACE} port-forward svc/{FULLNAME} 8080:8080" in text
    assert "http://127.0.0.1:8080/schema" in text
    assert "http://127.0.0.1:8080/metrics" in text
    assert f"get secret {FULLNAME} -o jsonpath='{{.data.admin-token}}'" in text
    assert "EMBEDDED" in text
    assert "ci-admin-token" not in text
