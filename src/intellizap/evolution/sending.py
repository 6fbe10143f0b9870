"""Sending text to WhatsApp: exactly once, paced per instance, without holding a worker slot.

:func:`queue_text` records the message in the send ledger (``send_ledger.py``), split at
paragraph boundaries, and defers one ``send_text`` job per part. The job:

1. **Order.** Jobs of one tenant share the lock ``whatsapp-send:<tenant>``. procrastinate runs
   a lock's jobs one at a time in the order they were queued, and a job waiting for a retry still
   holds its place: no later job of that lock starts before it. So a job that has to wait is
   simply retried at a later time (:class:`Later`) — the parts of a summary still go in order.
2. **Pacing.** An instance sends again ``SEND_MIN_INTERVAL_SECONDS`` after its previous POST
   ended (read from the ledger). Too early, the job is retried at that time: a worker slot is
   busy only while a request is in flight, and other instances and jobs use the slots meanwhile.
3. **Exactly once.** The attempt is committed (``enviando``) before the POST, and its outcome
   after. A run that finds an attempt with no outcome (the worker was killed, the answer was
   lost, Evolution answered 5xx) does not post: it looks for the message — the ``send.message``
   webhook may already have confirmed it, else Evolution's message store is asked
   (``findMessages``). Found: sent. Not found: it posts again only once
   ``SEND_OUTCOME_WAIT_SECONDS`` have passed since that attempt began, so that a request still
   being handled by Evolution has had its time to finish (see the README for what bounds the
   remaining window).
4. **Completion.** When the last part is sent, or a part fails for good (the later parts are
   then cancelled), the task the caller named (a feature's, e.g. marking a summary ``enviado``)
   is run, inside the send job (queued as a job of its own only if that fails): a summary costs
   no extra job to be marked sent. Sends outrank every other job (:data:`PRIORITY`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import procrastinate
from procrastinate.jobs import Job
from procrastinate.retry import BaseRetryStrategy, RetryDecision

from intellizap import jobs
from intellizap.db.engine import Database
from intellizap.evolution import repository, send_ledger, send_witnesses
from intellizap.evolution.client import Quote
from intellizap.evolution.errors import DeliveryUnknown, EvolutionError
from intellizap.evolution.send_ledger import FINAL, Completion, Send, Status
from intellizap.evolution.text_parts import split_text
from intellizap.jobs import Later
from intellizap.logging import get_logger
from intellizap.observability.evolution import SENDS, send_outcome

log = get_logger(__name__)

SEND_TASK = "send_text"
#: Above every other job (procrastinate's default priority is 0).
PRIORITY = 10
#: How often a send whose outcome is unknown looks for its message again.
RECHECK_SECONDS = 10.0
#: Failures of a POST that certainly did not go out (refused connection, 429, …).
SEND_BACKOFF = jobs.Backoff(max_attempts=8)
#: Anything else (the database unreachable, Evolution down while we look for a message): tried
#: again every 15 minutes at most, for as long as the send is in the ledger (the job then ends).
#: The count includes the job's reschedulings, hence so high.
_UNEXPECTED = jobs.Backoff(max_attempts=1_000)
#: Days a ledger row is kept (a message may be queued again by a re-run within hours).
LEDGER_DAYS = 7


async def queue_text(
    queue: procrastinate.App,
    database: Database,
    *,
    tenant_id: uuid.UUID,
    number: str,
    text: str,
    max_chars: int,
    key: str,
    quote: Quote | None = None,
    on_done: Completion | None = None,
    mentions: Sequence[str] = (),
) -> int:
    """Send ``text`` to ``number`` (the quote goes on the first part); returns the number of
    parts. ``key`` names the message: queueing the same key again (a re-run after a crash) sends
    nothing twice. ``on_done`` is run once every part is sent or one failed for good.
    ``mentions``: numbers written as ``@<number>`` in ``text``; each part mentions those it
    carries (WhatsApp notifies them; groups only)."""
    parts = split_text(text, max_chars)
    send_ids = await repository.record(
        database,
        tenant_id=tenant_id,
        key=key,
        number=number,
        parts=parts,
        quote=_quote_args(quote) if quote else None,
        on_done=on_done,
        mentions=[[n for n in mentions if f"@{n}" in part] for part in parts],
    )
    for send_id in send_ids:
        await jobs.defer(
            queue,
            SEND_TASK,
            lock=f"whatsapp-send:{tenant_id}",
            queueing_lock=f"send:{send_id}",
            priority=PRIORITY,
            args={"send_id": send_id},
        )
    return len(parts)


def _quote_args(quote: Quote) -> dict[str, Any]:
    return {
        "message_id": quote.message_id,
        "chat_jid": quote.chat_jid,
        "from_me": quote.from_me,
        "participant": quote.participant,
        "message": quote.message,
    }


class SendRetry(BaseRetryStrategy):
    """:class:`Later` reschedules the job at its time; anything else backs off."""

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if isinstance(exception, Later):
            return RetryDecision(retry_at=exception.at)
        return _UNEXPECTED.get_retry_decision(exception=exception, job=job)


class QueuedBeforeTheLedger(Exception):
    """A ``send_text`` job queued by a version without the send ledger (its text in the job's
    arguments): it cannot be sent exactly once, so it fails at once instead of retrying."""

    transient = False


@jobs.blueprint.task(name=SEND_TASK, queue="sending", retry=SendRetry(), pass_context=True)
async def send_text(
    job_context: procrastinate.JobContext, /, *, send_id: int | None = None, **legacy: Any
) -> str:
    if send_id is None:
        raise QueuedBeforeTheLedger(
            f"send job {job_context.job.id} was queued by an older version (arguments "
            f"{sorted(legacy)}); let the sending queue drain before upgrading"
        )
    return await deliver(job_context, send_id)


async def deliver(job_context: procrastinate.JobContext, send_id: int) -> str:
    """One run of a send job; returns the ledger status it leaves (or ``gone``)."""
    context = jobs.context_of(job_context)
    database = context.database
    pacing = context.settings.send_min_interval_seconds
    started = time.monotonic()
    send = await repository.load(database, send_id, pacing=pacing, begin=True)
    if send is None:
        return "gone"  # its tenant was deleted, or the row outlived the ledger's retention
    if send.began_at is not None:
        return await _post(job_context, send, started)
    if send.status in FINAL:
        await _complete(job_context, send)  # a run that stopped before its completion
        return send.status.value
    if send.earlier_part_failed:
        await repository.cancel(database, send, "uma parte anterior da mensagem não foi enviada")
        return Status.CANCELLED.value
    if send.busy_until is not None:
        raise Later(send.busy_until, "pacing this instance's sends")
    if send.status is Status.PENDING:
        raise Later(datetime.now(UTC), "another run of this send began it")
    # An earlier attempt's outcome is unknown: find out before anything is posted again.
    found = await _went_out(context, send)
    if found is not None:
        SENDS.labels(outcome=send_outcome(None)).inc()
        await _complete(job_context, found)
        return Status.SENT.value
    assert send.posted_at is not None
    settled_at = send.posted_at + timedelta(seconds=context.settings.send_outcome_wait_seconds)
    if send.now < settled_at:
        recheck = send.now + timedelta(seconds=RECHECK_SECONDS)
        raise Later(min(settled_at, recheck), "waiting to learn whether the last POST went out")
    log.warning(
        "an earlier send attempt did not go out; sending again",
        usuario_id=str(send.tenant_id),
        envio=send.id,
        tentativas=send.attempts,
    )
    started = time.monotonic()
    if await repository.begin_attempt(database, send) is None:
        raise Later(datetime.now(UTC), "another run of this send changed it")
    return await _post(job_context, send, started)


async def _post(job_context: procrastinate.JobContext, send: Send, started: float) -> str:
    """Make the POST of an attempt just begun (committed in the ledger) and record its outcome.
    ``started``: when the call that began it was made (monotonic clock)."""
    context = jobs.context_of(job_context)
    database = context.database
    wait = context.settings.send_outcome_wait_seconds
    if time.monotonic() - started > wait / 2:
        # This process stalled around the commit (paused, swapped out): another run may
        # already be deciding this send. Leave it to the ledger rather than post late.
        raise Later(datetime.now(UTC), "stalled before posting")
    if send.instance is None:
        failed = await repository.record_not_sent(
            database, send, "envio falhou: a conta não tem instância da Evolution", final=True
        )
        SENDS.labels(outcome="instance_not_found").inc()
        await _complete(job_context, failed)
        return Status.FAILED.value
    assert send.text is not None
    try:
        message_id = await context.evolution.send_text(
            send.instance,
            number=send.number,
            text=send.text,
            quote=Quote(**send.quote) if send.quote else None,
            mentioned=send.mentions,
            token=send.token,
        )
    except DeliveryUnknown as exc:
        SENDS.labels(outcome="unknown").inc()
        await repository.record_unknown(database, send, str(exc))
        log.warning(
            "send outcome unknown; looking for the message before any new attempt",
            usuario_id=str(send.tenant_id),
            envio=send.id,
            reason=str(exc),
        )
        raise Later(
            datetime.now(UTC) + timedelta(seconds=min(RECHECK_SECONDS, wait)),
            "send outcome unknown",
        ) from exc
    except EvolutionError as exc:
        return await _not_sent(job_context, send, exc)
    sent = await repository.record_sent(database, send, message_id)
    SENDS.labels(outcome=send_outcome(None)).inc()
    log.info(
        "text sent",
        instancia=send.instance,
        usuario_id=str(send.tenant_id),
        envio=send.id,
        parte=send.part + 1,
        partes=send.parts,
        chars=len(send.text),
    )
    await _complete(job_context, sent)
    return Status.SENT.value


async def _not_sent(
    job_context: procrastinate.JobContext, send: Send, error: EvolutionError
) -> str:
    """The POST certainly did not go out: back off and try again, or give up for good."""
    database = jobs.context_of(job_context).database
    attempts = send.attempts + 1
    decision = SEND_BACKOFF.get_retry_decision(
        exception=error, job=job_context.job.evolve(attempts=attempts - 1)
    )
    if decision is not None and decision.retry_at is not None:
        await repository.record_not_sent(database, send, str(error), final=False)
        raise Later(decision.retry_at, "the send failed and will be tried again") from error
    failed = await repository.record_not_sent(database, send, f"envio falhou: {error}", final=True)
    SENDS.labels(outcome=send_outcome(error)).inc()
    log.error(
        "send failed for good",
        usuario_id=str(send.tenant_id),
        envio=send.id,
        tentativas=attempts,
        reason=str(error),
    )
    await _complete(job_context, failed)
    return Status.FAILED.value


async def _went_out(context: jobs.WorkerContext, send: Send) -> Send | None:
    """Whether the attempt whose outcome is unknown did send the message: if so it is recorded
    and returned as sent, else None.

    The ledger was read after any ``send.message`` echo had been applied, so only Evolution's
    message store is left to ask: our messages in that chat from the POST on, with the same
    text, not already confirming another row (the oldest such message is taken).
    """
    assert send.posted_at is not None
    if send.instance is None:
        return None
    wait = timedelta(seconds=context.settings.send_outcome_wait_seconds)
    since = send.posted_at - send_ledger.CLOCK_SKEW
    until = max(send.now, send.posted_at + wait) + send_ledger.CLOCK_SKEW
    try:
        found = await context.evolution.find_sent_messages(
            send.instance,
            chat_jid=send.chat_jid,
            since=since,
            until=until,
            token=send.token,
        )
    except EvolutionError as exc:
        if exc.transient:
            raise  # Evolution down: ask again later (backoff), never post blind
        log.warning(
            "cannot search Evolution's messages; only the send.message webhook can tell "
            "whether a send went out",
            usuario_id=str(send.tenant_id),
            reason=str(exc),
        )
        return None
    same_text = [
        item
        for item in reversed(found)
        if item.text is not None and send_ledger.fingerprint(item.text) == send.fingerprint
    ]
    taken = await send_witnesses.claimed(
        context.database, send.tenant_id, [item.message_id for item in same_text]
    )
    match = next((item for item in same_text if item.message_id not in taken), None)
    if match is None:
        return None
    log.info(
        "an earlier send attempt did go out; not sending again",
        usuario_id=str(send.tenant_id),
        envio=send.id,
    )
    return await repository.record_sent(context.database, send, match.message_id)


async def _complete(job_context: procrastinate.JobContext, send: Send) -> None:
    """Run the caller's completion when this send ends its message, in this job: it costs no
    job of its own. Should it fail, it is queued as a job instead, retried on its own. A re-run
    of this job (killed before it ended) runs it again, so the completion task must tolerate
    running twice."""
    if send.on_done is None:
        return
    if send.status is Status.FAILED:
        outcome: dict[str, Any] = {"sent": False, "reason": send.error}
    elif send.status is Status.SENT and send.is_last:
        outcome = {"sent": True, "reason": None}
    else:
        return
    args = {**send.on_done.args, **outcome}
    try:
        await jobs.run_here(job_context, send.on_done.task, args)
    except Exception as exc:
        log.warning(
            "a send's completion failed; queued to be retried on its own",
            task=send.on_done.task,
            usuario_id=str(send.tenant_id),
            error=type(exc).__name__,
        )
        await jobs.defer(
            job_context.app,
            send.on_done.task,
            queueing_lock=f"send-done:{send.batch}",
            priority=PRIORITY,
            args=args,
        )


@jobs.blueprint.periodic(cron="20 4 * * *", periodic_id="send-ledger-cleanup")
@jobs.blueprint.task(name="forget_old_sends", queue="maintenance", pass_context=True)
async def forget_old_sends(job_context: procrastinate.JobContext, timestamp: int) -> int:
    """Delete the ledger rows older than :data:`LEDGER_DAYS`."""
    before = datetime.fromtimestamp(timestamp, UTC) - timedelta(days=LEDGER_DAYS)
    deleted = await repository.forget_before(jobs.context_of(job_context).database, before)
    log.info("old send ledger rows deleted", envios_apagados=deleted)
    return deleted
