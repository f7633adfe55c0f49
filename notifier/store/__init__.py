"""Redis adapters: snapshots + event outbox, poller lease and health, subscriptions, deliveries."""
