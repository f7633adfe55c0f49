"""Render and lint the Helm chart in-process with the Helm Go SDK (helm-python-sdk), and validate manifests.

``render()`` is ``helm template``: no cluster, ``lookup`` returns nothing, the Kubernetes version is pinned.
``validate()`` checks built-in kinds against the Kubernetes JSON schemas (kubernetes-validate, strict: unknown
fields are errors) and prometheus-operator kinds against the pydantic models of its CRDs, plus an unknown-field
check those models do not make themselves.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import helm_python
import yaml
from helm_python import _native

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "genviral-notifier"
KUBE_VERSION = "1.33"
RELEASE = "notifier"
NAMESPACE = "social"

HelmError = helm_python.HelmError


@functools.cache
def chart() -> helm_python.Chart:
    helm_python.disable_logging()
    return helm_python.Chart.load(str(CHART))


def ci_values(name: str) -> dict[str, Any]:
    """The values of ``ci/<name>-values.yaml``."""
    data = yaml.safe_load((CHART / "ci" / f"{name}-values.yaml").read_text())
    assert isinstance(data, dict)
    return data


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge of -f files and --set: nested maps merge, anything else replaces."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def render(values: dict[str, Any], *, release: str = RELEASE, namespace: str = NAMESPACE) -> dict[str, str]:
    """{template path: rendered text} for an install, like ``helm template`` (NOTES.txt included).

    The Kubernetes version goes to Helm's render options, which helm-python-sdk 0.2.2 accepts but does not yet
    expose in ``Chart.render``'s signature.
    """
    opts = {
        "name": release,
        "namespace": namespace,
        "is_install": True,
        "revision": 1,
        "kube_version": f"v{KUBE_VERSION}.0",
    }
    raw = _native.call_string("helm_render", chart()._raw(), json.dumps(values), json.dumps(opts))
    rendered: dict[str, str] = json.loads(raw)
    return rendered


def documents(rendered: dict[str, str]) -> list[dict[str, Any]]:
    """Every manifest of a render (not NOTES.txt), as dicts, in template order."""
    docs: list[dict[str, Any]] = []
    for path in sorted(rendered):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(rendered[path]):
            if doc:
                docs.append(doc)
    return docs


def manifests(values: dict[str, Any], **kw: str) -> list[dict[str, Any]]:
    return documents(render(values, **kw))


def notes(values: dict[str, Any]) -> str:
    return next(text for path, text in render(values).items() if path.endswith("NOTES.txt"))


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in of_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[d['metadata']['name'] for d in found]}"
    return found[0]


def lint(values: dict[str, Any]) -> list[str]:
    """``helm lint --strict``: the warnings and errors, as "path: message" lines (infos left out)."""
    report = helm_python.lint(str(CHART), values, strict=True, kube_version=f"v{KUBE_VERSION}.0")
    return [f"{m['path']}: {m['error'].strip()}" for m in report.get("messages") or [] if m["severity"] >= 2]


# --------------------------------------------------------------------------------------------------------------
# Validation.


def _unknown_fields(given: Any, kept: Any, path: str = "") -> list[str]:
    """Keys of the input that the model dropped: pydantic ignores extra fields, a CRD's structural schema not."""
    if isinstance(given, dict) and isinstance(kept, dict):
        out = []
        for key, value in given.items():
            if key not in kept:
                out.append(path + key)
            else:
                out += _unknown_fields(value, kept[key], f"{path}{key}.")
        return out
    if isinstance(given, list) and isinstance(kept, list):
        return [
            e for i, (g, k) in enumerate(zip(given, kept, strict=False)) for e in _unknown_fields(g, k, f"{path}{i}.")
        ]
    return []


@functools.cache
def _prometheus_operator_models() -> Any:
    from cloudcoil.models.prometheus_operator import v1  # ~2 s: imported once per session

    return v1


def validate(doc: dict[str, Any]) -> str | None:
    """Why a manifest is invalid, or None. Kinds nobody has a schema for are invalid too."""
    import kubernetes_validate
    import pydantic

    api_version, kind = doc.get("apiVersion", ""), doc.get("kind", "")
    if api_version == "monitoring.coreos.com/v1":
        model = getattr(_prometheus_operator_models(), kind, None)
        if model is None:
            return f"no model for {api_version} {kind}"
        try:
            obj = model.model_validate(doc)
        except pydantic.ValidationError as exc:
            return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        extra = _unknown_fields(doc, obj.model_dump(by_alias=True, exclude_unset=True, mode="json"))
        return f"unknown fields: {', '.join(extra)}" if extra else None
    try:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{'.'.join(str(p) for p in exc.path)}: {exc.message}"
    except kubernetes_validate.SchemaNotFoundError:
        return f"no schema for {api_version} {kind} in Kubernetes {KUBE_VERSION}"
    return None


def invalid(docs: list[dict[str, Any]]) -> list[str]:
    """One line per invalid manifest."""
    errors = []
    for doc in docs:
        why = validate(doc)
        if why:
            errors.append(f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}: {why}")
    return errors


def prometheus_rule_groups(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [g for d in of_kind(docs, "PrometheusRule") for g in d["spec"]["groups"]]


def pod_specs(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) of every workload and bare Pod."""
    out = []
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            out.append((name, doc["spec"]["template"]["spec"]))
        elif doc["kind"] == "Pod":
            out.append((name, doc["spec"]))
    return out


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    """{name: value or valueFrom} of a container."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}
