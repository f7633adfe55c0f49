"""Our own apprise plugins: ``webhook://`` / ``webhooks://`` (signed Standard Webhooks) and ``console://``.

``webhook://host[:port]/path?secret=whsec_...`` POSTs JSON signed per the Standard Webhooks spec:
``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature`` = ``v1,`` + base64 of
HMAC-SHA256(secret, ``"{id}.{timestamp}.{body}"``), where the secret is the base64 text after ``whsec_``.
``webhooks://`` is the same over HTTPS. Without a ``secret`` the request is sent unsigned.

What is posted: when the sender has set ``OUTGOING`` (a ``WebhookMessage``: the delivery id and the event JSON),
exactly that body with that id; otherwise (apprise used directly) ``{"type": "notification", "title", "body",
"notify_type"}`` with a fresh id. The context variable travels into apprise's worker thread with the call.

``console://`` prints the notification to standard output (``notifier demo``).

``register_plugins()`` adds both to apprise's plugin registry; calling it again does nothing.

Must not import: redis, litestar, prometheus_client, or any other module of this package.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import sys
import threading
import time
import uuid
import warnings
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import requests
from apprise import NotifyBase as _AppriseNotifyBase
from apprise import NotifyType
from apprise.manager_plugins import NotificationManager as _AppriseNotificationManager
from apprise.url import PrivacyMode

# apprise types its plugin class attributes as None / () and leaves most methods untyped: subclass and call
# through Any so strict mypy checks our code, not apprise's annotations.
NotifyBase: Any = _AppriseNotifyBase
NotificationManager: Any = _AppriseNotificationManager

WEBHOOK_SCHEMES = ("webhook", "webhooks")
CONSOLE_SCHEME = "console"


@dataclass(frozen=True)
class WebhookMessage:
    """What a ``webhook://`` target receives for one delivery: a stable id and the JSON body."""

    id: str
    body: bytes


#: Set by the sender around one apprise call; read by ``WebhookPlugin.send`` in the worker thread.
OUTGOING: ContextVar[WebhookMessage | None] = ContextVar("notifier_outgoing", default=None)


class InvalidSecret(ValueError):
    """The webhook secret is not ``whsec_`` followed by base64."""


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret (``whsec_`` + base64; the prefix is optional)."""
    text = secret.strip().replace(" ", "+")  # a '+' in a query string may arrive as a space
    text = text.removeprefix("whsec_")
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecret("the webhook secret must be whsec_ followed by base64") from None
    if not key:
        raise InvalidSecret("the webhook secret is empty")
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one message."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class WebhookPlugin(NotifyBase):  # type: ignore[misc]  # apprise's base, reached through Any
    """POSTs event JSON signed per the Standard Webhooks spec."""

    service_name = "Signed webhook"
    service_url = "https://www.standardwebhooks.com/"
    protocol = "webhook"
    secure_protocol = "webhooks"
    setup_url = "https://www.standardwebhooks.com/"
    request_rate_per_sec = 0
    templates = ("{schema}://{host}", "{schema}://{host}:{port}", "{schema}://{host}/{fullpath}")
    template_tokens = dict(
        NotifyBase.template_tokens,
        host={"name": "Hostname", "type": "string", "required": True},
        port={"name": "Port", "type": "int", "min": 1, "max": 65535},
    )
    template_args = dict(
        NotifyBase.template_args,
        secret={"name": "Signing secret (whsec_...)", "type": "string", "private": True},
    )

    def __init__(self, secret: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        fullpath = kwargs.get("fullpath")
        self.fullpath: str = fullpath if isinstance(fullpath, str) else ""
        self.secret: str | None = secret or None
        try:
            self._key: bytes | None = decode_secret(secret) if secret else None
        except InvalidSecret as exc:
            self.logger.warning("Invalid webhook secret: %s.", exc)
            raise TypeError(str(exc)) from None

    @property
    def target(self) -> str:
        scheme = "https" if self.secure else "http"
        port = f":{self.port}" if isinstance(self.port, int) else ""
        return f"{scheme}://{self.host}{port}{self.fullpath or '/'}"

    def request_parts(self, message: WebhookMessage, now: float) -> tuple[str, dict[str, str], bytes]:
        """The URL, headers and body of the signed POST that delivers ``message`` at time ``now``."""
        timestamp = int(now)
        headers = {
            "User-Agent": self.app_id,
            "Content-Type": "application/json",
            "webhook-id": message.id,
            "webhook-timestamp": str(timestamp),
        }
        if self._key is not None:
            headers["webhook-signature"] = sign(self._key, message.id, timestamp, message.body)
        return self.target, headers, message.body

    def send(self, body: str, title: str = "", notify_type: Any = NotifyType.INFO, **kwargs: Any) -> bool:
        message = OUTGOING.get()
        if message is None:
            kind = getattr(notify_type, "value", str(notify_type))
            payload = {"type": "notification", "title": title, "body": body, "notify_type": kind}
            message = WebhookMessage(id="msg_" + uuid.uuid4().hex, body=json.dumps(payload).encode())
        url, headers, content = self.request_parts(message, time.time())
        self.throttle()
        try:
            response = requests.post(
                url,
                data=content,
                headers=headers,
                verify=self.verify_certificate,
                timeout=self.request_timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            self.logger.warning("Could not reach the webhook at %s: %s.", self.host, type(exc).__name__)
            return False
        if not 200 <= response.status_code < 300:
            reason = NotifyBase.http_response_code_lookup(response.status_code)
            self.logger.warning("Webhook answered HTTP %s%s.", response.status_code, f" {reason}" if reason else "")
            return False
        return True

    @property
    def url_identifier(self) -> tuple[Any, ...]:
        return (self.secure_protocol if self.secure else self.protocol, self.host, self.port, self.fullpath)

    def url(self, privacy: bool = False, *args: Any, **kwargs: Any) -> str:
        params = self.url_parameters(*args, privacy=privacy, **kwargs)
        if self.secret:
            params["secret"] = self.pprint(self.secret, privacy, mode=PrivacyMode.Secret, safe="")
        port = f":{self.port}" if isinstance(self.port, int) else ""
        path = NotifyBase.quote(self.fullpath, safe="/") if self.fullpath else "/"
        query = NotifyBase.urlencode(params, safe="*")
        scheme = self.secure_protocol if self.secure else self.protocol
        return f"{scheme}://{self.host}{port}{path}" + (f"?{query}" if query else "")

    def __len__(self) -> int:
        return 1

    @staticmethod
    def parse_url(url: str) -> dict[str, Any] | None:
        results: dict[str, Any] | None = NotifyBase.parse_url(url)
        if not results:
            return results
        secret = results["qsd"].get("secret")
        if secret:
            results["secret"] = NotifyBase.unquote(secret)
        return results


class ConsolePlugin(NotifyBase):  # type: ignore[misc]  # apprise's base, reached through Any
    """Prints each notification to standard output."""

    service_name = "Console"
    service_url = "https://github.com/caronc/apprise"
    protocol = "console"
    setup_url = "https://github.com/caronc/apprise"
    request_rate_per_sec = 0
    templates = ("{schema}://",)

    _lock = threading.Lock()

    def send(self, body: str, title: str = "", notify_type: Any = NotifyType.INFO, **kwargs: Any) -> bool:
        text = f"\n== {title}\n{body}\n" if title else f"\n{body}\n"
        with self._lock:
            sys.stdout.write(text)
            sys.stdout.flush()
        return True

    @property
    def url_identifier(self) -> tuple[Any, ...]:
        return (self.protocol,)

    def url(self, privacy: bool = False, *args: Any, **kwargs: Any) -> str:
        params = self.url_parameters(*args, privacy=privacy, **kwargs)
        query = NotifyBase.urlencode(params)
        return "console://" + (f"?{query}" if query else "")

    def __len__(self) -> int:
        return 1

    @staticmethod
    def parse_url(url: str) -> dict[str, Any] | None:
        results: dict[str, Any] | None = NotifyBase.parse_url(url, verify_host=False)
        return results


@functools.cache
def register_plugins() -> None:
    """Make ``webhook://``, ``webhooks://`` and ``console://`` known to apprise (once per process)."""
    manager = NotificationManager()
    with warnings.catch_warnings():
        # apprise's e-mail plugin imports the stdlib's deprecated imghdr while apprise loads its plugins
        warnings.filterwarnings("ignore", message="'imghdr' is deprecated", category=DeprecationWarning)
        for plugin in (WebhookPlugin, ConsolePlugin):
            manager.add(plugin, force=True)
