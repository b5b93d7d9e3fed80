"""Plan catalogue, subscriptions and payment providers (filled in by the billing issue)."""
