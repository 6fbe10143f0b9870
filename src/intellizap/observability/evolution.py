"""Metrics of what we send to WhatsApp through Evolution, by outcome.

Count each send once it is decided::

    SENDS.labels(outcome=send_outcome(None)).inc()        # sent
    SENDS.labels(outcome=send_outcome(exc)).inc()         # failed with ``exc``
"""

from __future__ import annotations

from prometheus_client import Counter

SENDS = Counter(
    "intellizap_evolution_sends_total",
    "Messages sent through Evolution by outcome (sent, not_on_whatsapp, unauthorized, "
    "instance_not_found, unavailable, rejected, error; unknown: a POST whose outcome is being "
    "looked up, counted again as sent when found)",
    ["outcome"],
)

_OUTCOMES = {
    "NotOnWhatsApp": "not_on_whatsapp",
    "NotAuthorized": "unauthorized",
    "InstanceNotFound": "instance_not_found",
    "EvolutionUnavailable": "unavailable",
    "BadRequest": "rejected",
}


def send_outcome(exc: BaseException | None) -> str:
    """The ``outcome`` label of a send that ended with ``exc`` (None: it was sent)."""
    if exc is None:
        return "sent"
    return _OUTCOMES.get(type(exc).__name__, "error")
