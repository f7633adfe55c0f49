"""The Dockerfile: hadolint-clean, multi-stage, non-root, slim, and consistent with the chart.

The image build and smoke run (podman, a few minutes) live in scripts/image-check.sh, which CI runs.
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import yaml

from tests.ship import chartkit

DOCKERFILE = chartkit.REPO / "Dockerfile"
DOCKERIGNORE = chartkit.REPO / ".dockerignore"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    """The instructions of each stage, in order (ARGs before the first FROM left out)."""
    result: list[list[tuple[str, str]]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def final_stage() -> dict[str, list[str]]:
    by_word: dict[str, list[str]] = {}
    for word, rest in stages()[-1]:
        by_word.setdefault(word, []).append(rest)
    return by_word


def test_hadolint_finds_nothing(hadolint: str) -> None:
    """hadolint reports no finding at any level (error, warning, info, style)."""
    result = subprocess.run(
        [hadolint, "--no-color", "--format", "json", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert json.loads(result.stdout or "[]") == [], result.stdout
    assert result.returncode == 0, result.stderr


def test_build_is_multi_stage_with_locked_uv_sync() -> None:
    """A build stage installs the locked dependencies with uv; the runtime stage copies only the venv from it."""
    all_stages = stages()
    assert len(all_stages) >= 2
    build_runs = " ".join(rest for word, rest in all_stages[0] if word == "RUN")
    assert "uv sync --locked" in build_runs
    assert "--no-default-groups" in build_runs  # no dev or ship tooling in the image
    assert "--no-editable" in build_runs  # the package lives in the venv, not in a source tree
    copies = final_stage()["COPY"]
    assert copies == ["--from=build /app/.venv /app/.venv"]


def test_base_is_slim_python_for_both_stages() -> None:
    """Both stages start from the same slim Python image (the venv's interpreter links must resolve)."""
    args = dict(rest.split("=", 1) for word, rest in instructions() if word == "ARG" and "=" in rest)
    assert args["PYTHON_IMAGE"] == "python:3.11-slim"
    froms = [rest.split()[0] for word, rest in instructions() if word == "FROM"]
    assert froms == ["${PYTHON_IMAGE}"] * len(froms)


def test_runtime_stage_is_lean_and_unprivileged() -> None:
    """The runtime stage: numeric non-root USER, no package installs or compilers, no HEALTHCHECK."""
    final = final_stage()
    (user,) = final["USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0
    assert gid.isdigit() and int(gid) > 0
    runs = " ".join(final.get("RUN", []))
    for tool in ("apt-get", "apk", "gcc", "build-essential", "pip install", "uv "):
        assert tool not in runs, tool
    assert "HEALTHCHECK" not in final


def test_entrypoint_serves_by_default() -> None:
    """ENTRYPOINT runs the console script from PATH and CMD is `serve`, in exec form, no fixed interpreter path."""
    final = final_stage()
    assert [json.loads(e) for e in final["ENTRYPOINT"]] == [["notifier"]]
    assert [json.loads(c) for c in final["CMD"]] == [["serve"]]
    assert "/usr/local/bin/python" not in DOCKERFILE.read_text()
    env = " ".join(final["ENV"])
    assert 'PATH="/app/.venv/bin:${PATH}"' in env


def runtime_env() -> dict[str, str]:
    env = " ".join(final_stage()["ENV"])
    return dict(re.findall(r'(\w+)="?([^"\s]+)"?', env))


def test_image_agrees_with_the_chart() -> None:
    """The chart's runAsUser, container port and data dir are the image's USER, EXPOSE and NOTIFIER_DATA_DIR."""
    values: dict[str, Any] = yaml.safe_load((chartkit.CHART / "values.yaml").read_text())
    final = final_stage()
    uid, _, gid = final["USER"][0].partition(":")
    assert values["podSecurityContext"]["runAsUser"] == int(uid)
    assert values["podSecurityContext"]["runAsGroup"] == int(gid)
    assert final["EXPOSE"] == [str(values["containerPort"])]
    env = runtime_env()
    assert env["NOTIFIER_PORT"] == str(values["containerPort"])
    dep = chartkit.one(chartkit.manifests(chartkit.ci_values("default")), "Deployment")
    assert (
        chartkit.env_of(dep["spec"]["template"]["spec"]["containers"][0])["NOTIFIER_DATA_DIR"]
        == env["NOTIFIER_DATA_DIR"]
    )
    assert final["WORKDIR"] == [env["NOTIFIER_DATA_DIR"]]


def test_dockerignore_sends_only_what_the_build_needs() -> None:
    """The build context is an allow-list: the package, pyproject.toml, uv.lock, README.md; no venv, git or tests."""
    lines = [ln.strip() for ln in DOCKERIGNORE.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "*"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    assert allowed == {"pyproject.toml", "uv.lock", "README.md", "notifier"}
    copied = {
        part.rstrip("/")
        for word, rest in stages()[0]
        if word == "COPY" and "--from" not in rest
        for part in rest.split()[:-1]
    }
    assert copied <= allowed
