"""The codebase holds its own rules: layering of the core, lint and types clean."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ["models.py", "diff.py", "render.py", "errors.py"]
ADAPTERS = {"httpx", "redis", "apprise", "litestar", "prometheus_client", "uvicorn"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", CORE)
def test_core_imports_no_adapter(module: str) -> None:
    """The pure core (models, diff, render, errors) imports no I/O library and no adapter of ours."""
    names = imported_modules(ROOT / "notifier" / module)
    assert not {n.split(".")[0] for n in names} & ADAPTERS
    ours = {n for n in names if n.startswith("notifier.")}
    assert ours <= {"notifier.models", "notifier.errors", "notifier.render", "notifier.diff"}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False)


def test_ruff_clean() -> None:
    """ruff finds nothing to say about the package, the tests or the benchmarks."""
    lint = run("ruff", "check", "notifier", "tests", "benchmarks")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = run("ruff", "format", "--check", "notifier", "tests", "benchmarks")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


@pytest.mark.slow
def test_mypy_strict_clean() -> None:
    """mypy --strict passes on the notifier package."""
    result = run("mypy")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
