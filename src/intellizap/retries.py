"""Retrying jobs: when a failed job runs again, when it stops, and what the user is told then.

Shared by every task through :mod:`intellizap.jobs` (which re-exports these names).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta

import procrastinate
from procrastinate.jobs import Job
from procrastinate.retry import BaseRetryStrategy, RetryDecision

from intellizap.logging import get_logger

log = get_logger(__name__)


class Later(Exception):
    """Not now: run this job again at ``at``. Not a failure (pacing, waiting for an outcome,
    backing off), so a retry strategy that knows it reschedules the job at that time without
    counting it as a failed attempt (``evolution.sending.SendRetry``), and its log line says
    "rescheduled", without a traceback (``observability.job_logs.ShowRescheduling``)."""

    rescheduling = True

    def __init__(self, at: datetime, why: str) -> None:
        super().__init__(f"{why}; again at {at.isoformat(timespec='milliseconds')}")
        self.at = at


def _permanent(exception: BaseException) -> bool:
    """Errors say whether retrying can help (``transient``); unknown ones are retried."""
    return getattr(exception, "transient", True) is False


def _throttled(exception: BaseException) -> bool:
    """A provider asking us to slow down (``throttled``): not a failure of the work itself."""
    return getattr(exception, "throttled", False) is True


def _deadline_of(job: Job, arg: str | None) -> datetime | None:
    value = job.task_kwargs.get(arg) if arg else None
    if not isinstance(value, str):
        return None
    try:
        deadline = datetime.fromisoformat(value)
    except ValueError:
        return None
    return deadline if deadline.tzinfo is not None else deadline.replace(tzinfo=UTC)


class Backoff(BaseRetryStrategy):
    """When a failed job runs again, and when it stops trying.

    - Permanent errors (``transient = False``) are never retried.
    - A throttle (``throttled = True``, e.g. the LLM's rate limit) is retried when the provider
      says (``retry_after``), not after an ever-growing backoff: waiting longer than asked only
      leaves the provider idle while work piles up.
    - Other failures wait ``base * 2**attempts`` (capped at ``cap``), and at least
      ``retry_after`` when the error carries one.
    - Every wait is jittered (``± jitter``, and a throttle's by up to ``jitter`` more), so jobs
      that failed together do not all come back at the same instant.
    - With ``deadline_arg``, the job's own deadline (an ISO-8601 instant in that task argument)
      bounds the retries, not a count: the job stops when its next attempt would start after the
      deadline. Jobs without one stop after ``max_attempts``.

    The wait of one attempt of one job is deterministic (seeded by job id and attempt), so
    :meth:`gives_up` and procrastinate's own call to :meth:`get_retry_decision` always agree.
    """

    def __init__(
        self,
        *,
        max_attempts: int = 8,
        base: float = 5.0,
        cap: float = 900.0,
        jitter: float = 0.25,
        deadline_arg: str | None = None,
    ) -> None:
        self.max_attempts = max_attempts
        self.base = base
        self.cap = cap
        self.jitter = jitter
        self.deadline_arg = deadline_arg

    def wait(self, exception: BaseException, job: Job) -> float:
        """Seconds before the next attempt of ``job`` after ``exception``."""
        rng = random.Random(f"{job.id}:{job.attempts}")  # noqa: S311 - jitter, not secrecy
        retry_after = getattr(exception, "retry_after", None)
        hint = float(retry_after) if isinstance(retry_after, int | float) else 0.0
        hint = min(max(hint, 0.0), self.cap)
        if _throttled(exception) and hint > 0:
            return hint + rng.uniform(0, max(1.0, hint * self.jitter))
        exponential = min(self.cap, self.base * 2.0 ** int(job.attempts))
        wait = exponential * rng.uniform(1 - self.jitter, 1 + self.jitter)
        if hint > 0:
            wait = max(wait, hint * rng.uniform(1, 1 + self.jitter))
        return max(1.0, min(wait, self.cap * (1 + self.jitter)))

    def gives_up(self, exception: BaseException, job: Job, *, now: datetime | None = None) -> bool:
        """Whether this failure ends the job: a permanent error, a retry that would start after
        the job's deadline, or (without a deadline) its last attempt. Tasks ask it to record the
        reason (e.g. ``resumos.erro``) before the job fails for good."""
        if _permanent(exception):
            return True
        deadline = _deadline_of(job, self.deadline_arg)
        if deadline is not None:
            now = now or datetime.now(UTC)
            return now + timedelta(seconds=self.wait(exception, job)) > deadline
        return job.attempts + 1 >= self.max_attempts

    def decide(self, exception: BaseException, job: Job) -> RetryDecision | None:
        """When to run ``job`` again after ``exception``, or None when it fails for good. Pure:
        the worker's metrics ask it too, without logging the decision a second time."""
        if _permanent(exception) or self.gives_up(exception, job):
            return None
        return RetryDecision(retry_in={"milliseconds": int(self.wait(exception, job) * 1000)})

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        decision = self.decide(exception, job)
        if decision is not None:
            log.info(
                "job will be retried",
                task=job.task_name,
                job_id=job.id,
                in_seconds=round(self.wait(exception, job), 1),
                reason=str(exception),
            )
        elif _permanent(exception):
            log.error(
                "job failed permanently", task=job.task_name, job_id=job.id, reason=str(exception)
            )
        else:
            log.error(
                "job failed: no attempt left before its deadline or attempt limit",
                task=job.task_name,
                job_id=job.id,
                attempts=job.attempts + 1,
                reason=str(exception),
            )
        return decision


#: What the user is told when a job gives up: a text, or a function of the exception.
Reason = str | Callable[[BaseException], str]


def reason_for(
    exception: BaseException, reasons: Mapping[type[BaseException], Reason], default: Reason
) -> str:
    """The first reason whose exception type matches (so list subclasses first)."""
    reason = next((r for kind, r in reasons.items() if isinstance(exception, kind)), default)
    return reason(exception) if callable(reason) else reason


@contextlib.asynccontextmanager
async def final_failure(
    job_context: procrastinate.JobContext,
    retry: Backoff,
    *,
    reasons: Mapping[type[BaseException], Reason],
    default: Reason,
    record: Callable[[str], Awaitable[object]],
) -> AsyncIterator[None]:
    """Around a task's work: when a failure is final (``retry.gives_up``), tell the user why with
    ``record(reason)`` before the exception fails the job; otherwise let procrastinate retry.

        async with jobs.final_failure(job_context, RETRY, reasons=REASONS, default="…",
                                      record=lambda reason: fail(db, summary_id, reason)):
            return await summarize(…)
    """
    try:
        yield
    except Exception as exc:
        if retry.gives_up(exc, job_context.job):
            try:
                await record(reason_for(exc, reasons, default))
            except Exception as record_error:
                log.error(
                    "could not record why a job failed",
                    task=job_context.job.task_name,
                    job_id=job_context.job.id,
                    error=str(record_error),
                )
        raise
