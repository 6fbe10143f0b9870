"""Why a webhook is refused. Mapped to HTTP status codes in one place, ``intellizap.app``."""


class WebhookRejected(Exception):
    """Base class: the message is safe to show to the caller."""


class BodyTooLarge(WebhookRejected):
    """The body exceeds ``WEBHOOK_MAX_BYTES`` (413)."""


class MalformedBody(WebhookRejected):
    """The body is not JSON (400)."""


class NotAuthenticated(WebhookRejected):
    """No configured credential matched (401)."""


class BodyTimeout(WebhookRejected):
    """An unauthenticated body did not arrive in time (408)."""


class Flooded(WebhookRejected):
    """The instance sends more than ``WEBHOOK_RATE_PER_INSTANCE`` requests per second (429)."""


class Overloaded(WebhookRejected):
    """The bodies in memory already fill their budget (503; Evolution retries)."""
