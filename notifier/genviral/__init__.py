"""The Genviral Partner API adapter: ``PartnerClient`` and its retry policy.

Must not import: redis, apprise, litestar (see ``notifier.genviral.client``).
"""

from notifier.genviral.client import PartnerClient, RetryPolicy, api_key_id

__all__ = ["PartnerClient", "RetryPolicy", "api_key_id"]
