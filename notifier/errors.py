"""Every error the service raises on purpose, in one tree.

    NotifierError
    ├── ConfigError ................ a setting is missing or wrong (names the setting; exit code 2)
    ├── PartnerApiError ............ the Partner API answered with an error, or could not be reached
    │   ├── Unauthorized ........... 401: missing, invalid or revoked key          code "unauthorized"
    │   ├── SubscriptionRequired ... 402: no active plan                           code "subscription_required"
    │   ├── TierNotAllowed ......... 403: Scheduler tier                           code "tier_not_allowed"
    │   ├── NotFound ............... 404: post/pack missing or outside the scope    code "not_found"
    │   ├── InvalidRequest ......... 400/422: invalid_since, invalid_until, invalid_query, missing_pack_id
    │   ├── RateLimited ............ 429: too many requests (carries Retry-After)   code "rate_limited"
    │   ├── ServerError ............ 5xx: list_failed, get_failed, accounts_failed, ...
    │   └── TransportError ......... timeout or connection error                   code "timeout" / "connection_error"
    ├── StoreError ................. Redis state could not be written as asked
    │   └── FencedOut .............. this poller no longer holds the scope's lease; its write was refused
    ├── DeliveryFailed ............. a notification target refused or did not answer (URL masked)
    ├── EmbeddedRedisError ......... no redis-server binary could be found or started
    ├── InvalidSubscription ........ a subscription failed validation (carries [(field, message)], URLs masked)
    ├── ReadOnly ................... a subscription managed as code cannot be changed through the API
    ├── RecordNotFound ............. no subscription / delivery with that id
    └── NotReplayable .............. only a dead delivery can be re-queued

``PartnerApiError.retryable`` says whether trying again may help (5xx, 429, transport errors). Messages never
contain the API key or an unmasked notification URL.
"""

from __future__ import annotations


class NotifierError(Exception):
    """Base of every error raised on purpose by this package."""


class ConfigError(NotifierError):
    """A setting is missing or wrong. ``setting`` is the environment variable's name."""

    def __init__(self, setting: str, message: str) -> None:
        self.setting = setting
        self.message = message
        super().__init__(f"{setting}: {message}")


class PartnerApiError(NotifierError):
    """The Partner API answered with an error envelope, or could not be reached."""

    code: str = "error"
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        endpoint: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.message = message
        self.status = status
        if code is not None:
            self.code = code
        self.endpoint = endpoint
        self.retry_after = retry_after
        where = f" on {endpoint}" if endpoint else ""
        shown = f"{status} {self.code}" if status is not None else self.code
        super().__init__(f"Partner API {shown}{where}: {message}")


class Unauthorized(PartnerApiError):
    code = "unauthorized"


class SubscriptionRequired(PartnerApiError):
    code = "subscription_required"


class TierNotAllowed(PartnerApiError):
    code = "tier_not_allowed"


class NotFound(PartnerApiError):
    code = "not_found"


class InvalidRequest(PartnerApiError):
    code = "invalid_request"


class RateLimited(PartnerApiError):
    code = "rate_limited"
    retryable = True


class ServerError(PartnerApiError):
    code = "server_error"
    retryable = True


class TransportError(PartnerApiError):
    code = "connection_error"
    retryable = True


#: Errors that mean "this key cannot use the API now": stop hammering, show it in /readyz.
AUTH_ERRORS = (Unauthorized, SubscriptionRequired, TierNotAllowed)


class StoreError(NotifierError):
    """Redis state could not be written as asked."""


class FencedOut(StoreError):
    """The lease of the scope is held by another poller (or expired): the write was refused."""


class DeliveryFailed(NotifierError):
    """A notification target refused or did not answer. ``url`` is already masked."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"delivery to {url} failed: {reason}")


class EmbeddedRedisError(NotifierError):
    """No redis-server could be found or started for the embedded mode."""


class InvalidSubscription(NotifierError):
    """A subscription failed validation. ``errors`` holds ``(field, message)`` pairs; URLs in them are masked."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors))


class ReadOnly(NotifierError):
    """A subscription managed as code (``source: config``) cannot be changed or deleted through the API."""

    def __init__(self, subscription_id: str) -> None:
        self.subscription_id = subscription_id
        super().__init__(f"subscription {subscription_id} is managed in the subscriptions file and is read-only here")


class RecordNotFound(NotifierError):
    """No record of ``kind`` (``subscription`` or ``delivery``) has this id."""

    def __init__(self, kind: str, record_id: str) -> None:
        self.kind = kind
        self.record_id = record_id
        super().__init__(f"no {kind} with id {record_id}")


class NotReplayable(NotifierError):
    """Only a dead delivery can be re-queued; ``status`` is the one it has."""

    def __init__(self, delivery_id: str, status: str) -> None:
        self.delivery_id = delivery_id
        self.status = status
        super().__init__(f"delivery {delivery_id} is {status}, only a dead delivery can be retried")
