"""genviral-notifier."""
