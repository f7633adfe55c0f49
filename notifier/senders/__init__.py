"""Notification senders: the apprise adapter (``apprise_sender``), our apprise plugins (``plugins``: signed
``webhook://`` / ``webhooks://`` and ``console://``), URL rules and masking (``urls``) and ``notifier send-test``
(``sendtest``).

Must not import: redis, litestar, prometheus_client, the poller or the dispatcher.
"""
