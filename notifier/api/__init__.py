"""The HTTP app: health, metrics, OpenAPI docs and the admin API. Build it with ``create_app(AppDeps(...))``."""

from notifier.api.app import create_app
from notifier.api.deps import AppDeps, Phase, Readiness, TestOutcome, TestSender

__all__ = ["AppDeps", "Phase", "Readiness", "TestOutcome", "TestSender", "create_app"]
