"""Settings: the only place that reads the environment and the settings file.

``Settings.load(environ, config_file)`` reads ``NOTIFIER_*`` variables and, when given (``NOTIFIER_CONFIG`` or
``--config``), a YAML file of the same keys in lower case without the prefix; the environment wins. Every
value is checked here and a wrong one raises ``ConfigError`` naming the variable. Tests build
``Settings(...)`` directly.

Must not import: anything of this package but ``notifier.errors``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from notifier.errors import ConfigError

PREFIX = "NOTIFIER_"
DEFAULT_BASE_URL = "https://www.genviral.io/api/partner/v1"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Validated settings. Field names are the variable names without ``NOTIFIER_``, in lower case."""

    #: Bearer token for the Partner API. Never logged, never returned.
    genviral_api_key: str = field(default="", repr=False)
    #: Base URL of the Partner API; endpoints are appended.
    genviral_base_url: str = DEFAULT_BASE_URL
    #: ``redis://`` / ``rediss://`` / ``unix://`` URL; empty starts an embedded redis-server.
    redis_url: str = field(default="", repr=False)
    #: Where the embedded Redis keeps its data.
    data_dir: Path = Path(".notifier")
    #: Prefix of every Redis key.
    key_prefix: str = "notifier:"
    #: Seconds between poll cycles.
    poll_interval: float = 30.0
    #: Where the HTTP app listens.
    host: str = "0.0.0.0"
    port: int = 8080
    #: Bearer token for the admin API.
    admin_token: str = field(default="", repr=False)
    #: On the first poll of a scope, notify for posts already failed/posted (else a silent baseline).
    notify_existing: bool = False
    #: Seconds past ``scheduled_at`` after which a still-unpublished post raises ``post.overdue``.
    overdue_after: float = 900.0
    #: YAML file of subscriptions managed as code (read-only through the API).
    subscriptions_file: Path | None = None
    #: ``json`` or ``console``.
    log_format: str = "json"
    #: ``debug``, ``info``, ``warning`` or ``error``.
    log_level: str = "info"
    #: Seconds a settled (posted/failed) post stays in the snapshot, so a retry of it is still diffed.
    retention: float = 7 * 24 * 3600.0
    #: Seconds a posted post is still checked for a late ``published_url``.
    published_url_window: float = 48 * 3600.0
    #: Approximate cap on the length of the event stream.
    events_maxlen: int = 100_000
    #: Seconds between delivery attempts: the n-th retry waits the n-th value; past the last, dead.
    retry_schedule: tuple[float, ...] = (5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0)
    #: Seconds one notification target may take before the attempt counts as failed.
    send_timeout: float = 10.0
    #: Seconds a Partner API request may take.
    request_timeout: float = 15.0

    def require(self, *names: str) -> None:
        """Raise ``ConfigError`` for the first of ``names`` that is empty."""
        for name in names:
            if not getattr(self, name):
                raise ConfigError(env_name(name), "is required but not set")

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, config_file: str | Path | None = None) -> Settings:
        """Read and check the settings; the environment wins over the file."""
        env = dict(os.environ if environ is None else environ)
        raw: dict[str, Any] = {}
        path = config_file or env.get(PREFIX + "CONFIG")
        if path:
            raw.update(_read_file(Path(path)))
        for name in _FIELDS:
            key = env_name(name)
            if key in env:
                raw[name] = env[key]
        return _check(cls(**_parse(raw)))

    def public(self) -> dict[str, Any]:
        """The settings as a person may see them: secrets replaced by whether they are set."""
        shown: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in _SECRETS:
                value = "(set)" if value else "(unset)"
            elif isinstance(value, Path):
                value = str(value)
            shown[f.name] = value
        return shown


_FIELDS = [f.name for f in dataclasses.fields(Settings)]
_SECRETS = {"genviral_api_key", "admin_token", "redis_url"}


def env_name(field_name: str) -> str:
    return PREFIX + field_name.upper()


def _read_file(path: Path) -> dict[str, Any]:
    setting = PREFIX + "CONFIG"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(setting, f"cannot read {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(setting, f"{path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(setting, f"{path} must hold a mapping of settings")
    unknown = sorted(str(k) for k in data if k not in _FIELDS)
    if unknown:
        raise ConfigError(setting, f"{path} has unknown keys: {', '.join(unknown)}")
    return {str(k): v for k, v in data.items()}


def _text(name: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool | dict | list):
        raise ConfigError(env_name(name), f"must be a string, got {type(value).__name__}")
    return str(value).strip()


def _number(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(env_name(name), f"must be a number of seconds, got {value!r}") from None
    if not math.isfinite(number):
        raise ConfigError(env_name(name), f"must be a finite number, got {value!r}")
    return number


def _integer(name: str, value: Any) -> int:
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise ConfigError(env_name(name), f"must be a whole number, got {value!r}") from None


def _boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(env_name(name), f"must be true or false, got {value!r}")


def _path(name: str, value: Any) -> Path:
    return Path(_text(name, value))


def _optional_path(name: str, value: Any) -> Path | None:
    text = _text(name, value)
    return Path(text) if text else None


def _schedule(name: str, value: Any) -> tuple[float, ...]:
    items = value if isinstance(value, list) else str(value).split(",")
    try:
        schedule = tuple(float(str(item).strip()) for item in items if str(item).strip())
    except ValueError:
        raise ConfigError(env_name(name), f"must be a comma-separated list of seconds, got {value!r}") from None
    if any(not math.isfinite(s) or s < 0 for s in schedule):
        raise ConfigError(env_name(name), "must hold only non-negative numbers of seconds")
    return schedule


_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "data_dir": _path,
    "poll_interval": _number,
    "port": _integer,
    "notify_existing": _boolean,
    "overdue_after": _number,
    "subscriptions_file": _optional_path,
    "retention": _number,
    "published_url_window": _number,
    "events_maxlen": _integer,
    "retry_schedule": _schedule,
    "send_timeout": _number,
    "request_timeout": _number,
}


def _parse(raw: dict[str, Any]) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for name, value in raw.items():
        parse: Callable[[str, Any], Any] = _PARSERS.get(name, _text)
        parsed[name] = parse(name, value)
    return parsed


def _check(s: Settings) -> Settings:
    def bad(name: str, message: str) -> ConfigError:
        return ConfigError(env_name(name), message)

    base = urlsplit(s.genviral_base_url)
    if base.scheme not in {"http", "https"} or not base.netloc:
        raise bad("genviral_base_url", f"must be an http(s) URL, got {s.genviral_base_url!r}")
    if s.redis_url:
        scheme = urlsplit(s.redis_url).scheme
        if scheme not in {"redis", "rediss", "unix"}:
            raise bad("redis_url", f"must start with redis://, rediss:// or unix://, not {scheme or '(none)'}://")
    if s.poll_interval <= 0:
        raise bad("poll_interval", f"must be greater than 0, got {s.poll_interval}")
    if not 1 <= s.port <= 65535:
        raise bad("port", f"must be between 1 and 65535, got {s.port}")
    for name in ("overdue_after", "retention", "published_url_window", "send_timeout", "request_timeout"):
        if getattr(s, name) < 0 or (name.endswith("timeout") and getattr(s, name) == 0):
            raise bad(name, f"must be a positive number of seconds, got {getattr(s, name)}")
    if s.events_maxlen < 1:
        raise bad("events_maxlen", f"must be at least 1, got {s.events_maxlen}")
    if s.log_format not in {"json", "console"}:
        raise bad("log_format", f"must be json or console, got {s.log_format!r}")
    if s.log_level.lower() not in {"debug", "info", "warning", "error"}:
        raise bad("log_level", f"must be debug, info, warning or error, got {s.log_level!r}")
    if not s.key_prefix:
        raise bad("key_prefix", "must not be empty")
    if s.subscriptions_file is not None and not s.subscriptions_file.is_file():
        raise bad("subscriptions_file", f"{s.subscriptions_file} does not exist or is not a file")
    return dataclasses.replace(s, log_level=s.log_level.lower())
