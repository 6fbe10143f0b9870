"""Prometheus metrics of the ingest path (exposed at ``/metrics``)."""

from functools import cache

from prometheus_client import Counter, Histogram

WEBHOOKS = Counter("intellizap_webhooks_total", "Webhook requests by HTTP status", ["status"])
EVENTS = Counter("intellizap_webhook_events_total", "Webhook events by outcome", ["outcome"])
BATCH_SIZE = Histogram(
    "intellizap_message_batch_size",
    "Messages committed together by the group-commit writer",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)


@cache
def event_outcome(outcome: str) -> Counter:
    """The counter of one event outcome (``labels()`` takes a lock and a lookup per call)."""
    return EVENTS.labels(outcome=outcome)


WEBHOOK_OK = WEBHOOKS.labels(status="200")
