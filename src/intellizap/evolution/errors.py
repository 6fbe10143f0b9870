"""What can go wrong talking to Evolution, in terms a job can act on."""

from __future__ import annotations


class EvolutionError(Exception):
    """Base class. ``transient`` errors are worth retrying later; the others are not."""

    transient = False


class EvolutionUnavailable(EvolutionError):
    """Evolution could not be reached or answered 5xx, even after the client's own retries.
    ``retry_after`` is the server's ``Retry-After`` in seconds, when it sent one."""

    transient = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeliveryUnknown(EvolutionUnavailable):
    """A request that acts (a send) got no usable answer after it was written: a read timeout,
    a dropped connection or a 5xx. Evolution may have carried it out, so it is never repeated
    blindly; the sender finds out first (see ``evolution/sending.py``)."""


class InstanceNotFound(EvolutionError):
    """Evolution has no instance of that name: the tenant's ``instancia`` is wrong or was deleted."""


class NotAuthorized(EvolutionError):
    """Evolution refused the API key: check ``EVOLUTION_API_KEY`` or the tenant's ``evolution_token``."""


class NotOnWhatsApp(EvolutionError):
    """The number or group is not on WhatsApp (or the instance is no longer in the group)."""


class BadRequest(EvolutionError):
    """Evolution rejected the request; the message says why."""
