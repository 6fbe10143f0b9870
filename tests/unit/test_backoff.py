"""Job retries: which failures retry, how long they wait (jittered), and when they stop."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from procrastinate.jobs import Job

from intellizap.evolution.errors import (
    BadRequest,
    EvolutionUnavailable,
    InstanceNotFound,
    NotAuthorized,
    NotOnWhatsApp,
)
from intellizap.jobs import Backoff
from intellizap.llm import (
    InvalidApiKey,
    LlmRejected,
    LlmUnavailable,
    NoApiKey,
    OutOfCredit,
    RateLimited,
)


def job(attempts: int, job_id: int = 1, **kwargs: Any) -> Job:
    return Job(
        id=job_id,
        queue="q",
        lock=None,
        queueing_lock=None,
        task_name="t",
        attempts=attempts,
        task_kwargs=kwargs,
    )


def wait_of(strategy: Backoff, exception: BaseException, failed: Job) -> float | None:
    before = datetime.now(UTC)
    decision = strategy.get_retry_decision(exception=exception, job=failed)
    if decision is None:
        return None
    assert decision.retry_at is not None
    return (decision.retry_at - before).total_seconds()


class Transient(Exception):
    transient = True

    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("try later")
        self.retry_after = retry_after


@pytest.mark.parametrize(
    "exception",
    [
        NotOnWhatsApp("x"),
        NotAuthorized("x"),
        InstanceNotFound("x"),
        BadRequest("x"),
        InvalidApiKey("x"),
        LlmRejected("x"),
        NoApiKey("x"),
    ],
)
@pytest.mark.parametrize("attempts", [0, 3])
def test_permanent_errors_are_not_retried(exception: Exception, attempts: int) -> None:
    assert exception.transient is False  # type: ignore[attr-defined]
    assert Backoff().get_retry_decision(exception=exception, job=job(attempts)) is None
    assert Backoff().gives_up(exception, job(attempts))


@pytest.mark.parametrize(
    "exception",
    [
        EvolutionUnavailable("x"),
        LlmUnavailable("x"),
        OutOfCredit("x"),
        RateLimited("x", None),
        RuntimeError("?"),
    ],
)
def test_transient_and_unknown_errors_are_retried(exception: Exception) -> None:
    wait = wait_of(Backoff(base=5.0, jitter=0.25), exception, job(0))

    assert wait is not None
    assert 5 * 0.75 - 0.1 <= wait <= 5 * 1.25 + 0.1


def test_waits_grow_exponentially_within_their_jitter_and_are_capped() -> None:
    strategy = Backoff(max_attempts=20, base=5.0, cap=300.0, jitter=0.25)

    for attempts in range(10):
        wait = wait_of(strategy, Transient(), job(attempts))
        expected = min(300.0, 5.0 * 2**attempts)
        assert wait is not None
        assert expected * 0.75 - 0.1 <= wait <= expected * 1.25 + 0.1, (attempts, wait)


def test_jobs_failing_together_do_not_come_back_together() -> None:
    """Today's lockstep: 200 jobs failing at once with the same attempt count got the same wait
    (and came back at the same instant, to fail together again)."""
    strategy = Backoff(base=5.0, cap=900.0)
    for exception in (Transient(), RateLimited("slow down", retry_after=1.0)):
        for attempts in (0, 3):
            waits = [strategy.wait(exception, job(attempts, job_id=n)) for n in range(1, 201)]
            assert len({round(w, 3) for w in waits}) > 150, (exception, attempts)
            # Spread over a good part of the interval, not bunched at one end.
            assert max(waits) - min(waits) > 0.3 * statistics.median(waits)


def test_the_wait_of_one_attempt_is_the_same_every_time_it_is_asked() -> None:
    strategy = Backoff(base=5.0)
    failed = job(2, job_id=42)

    waits = {strategy.wait(Transient(), failed) for _ in range(5)}

    assert len(waits) == 1


def test_retry_after_larger_than_the_backoff_is_honoured() -> None:
    strategy = Backoff(base=5.0, cap=900.0, jitter=0.25)

    wait = wait_of(strategy, Transient(retry_after=120), job(0))
    assert wait is not None
    assert 120 - 0.1 <= wait <= 150 + 0.1


def test_retry_after_smaller_than_the_backoff_does_not_shorten_a_failure() -> None:
    strategy = Backoff(base=5.0, cap=900.0, jitter=0.25)

    wait = wait_of(strategy, Transient(retry_after=2), job(3))
    assert wait is not None
    assert 30 - 0.1 <= wait <= 50 + 0.1


def test_a_rate_limit_comes_back_when_the_provider_says_not_after_a_growing_backoff() -> None:
    strategy = Backoff(max_attempts=20, base=5.0, cap=900.0, jitter=0.25)

    # Tenth attempt: a failure would wait ~15 minutes; a throttle waits what it was told.
    wait = wait_of(strategy, RateLimited("slow down", retry_after=3.0), job(9))
    assert wait is not None
    assert 3 - 0.1 <= wait <= 4 + 0.1


def test_retry_after_is_capped() -> None:
    strategy = Backoff(base=5.0, cap=100.0, jitter=0.25)

    wait = wait_of(strategy, Transient(retry_after=10_000), job(0))
    assert wait is not None
    assert 100 - 0.1 <= wait <= 125 + 0.1


def test_a_tiny_wait_is_at_least_one_second() -> None:
    wait = wait_of(Backoff(base=0.1), Transient(), job(0))

    assert wait == pytest.approx(1, abs=0.2)


def test_without_a_deadline_there_is_no_retry_after_the_last_attempt() -> None:
    strategy = Backoff(max_attempts=4, base=5.0)

    assert wait_of(strategy, Transient(), job(2)) is not None
    assert wait_of(strategy, Transient(), job(3)) is None  # the 4th attempt just failed
    assert wait_of(strategy, Transient(), job(10)) is None


def test_with_a_deadline_retries_go_on_past_the_attempt_count_until_the_deadline() -> None:
    strategy = Backoff(max_attempts=6, base=5.0, cap=900.0, deadline_arg="deadline")
    deadline = datetime.now(UTC) + timedelta(hours=3)
    throttled = RateLimited("slow down", retry_after=2.0)

    # Far more attempts than max_attempts: a throttled provider never loses the work.
    for attempts in (5, 6, 50, 500):
        failed = job(attempts, deadline=deadline.isoformat())
        assert not strategy.gives_up(throttled, failed)
        assert wait_of(strategy, throttled, failed) is not None


def test_with_a_deadline_the_job_gives_up_when_its_next_attempt_would_be_too_late() -> None:
    strategy = Backoff(max_attempts=6, base=5.0, cap=900.0, deadline_arg="deadline")
    now = datetime.now(UTC)
    soon = job(0, deadline=(now + timedelta(seconds=60)).isoformat())
    throttled_long = RateLimited("slow down", retry_after=120.0)
    throttled_short = RateLimited("slow down", retry_after=2.0)

    assert strategy.gives_up(throttled_long, soon)
    assert wait_of(strategy, throttled_long, soon) is None
    assert not strategy.gives_up(throttled_short, soon)
    # An hour later the same deadline has passed for any wait.
    assert strategy.gives_up(throttled_short, soon, now=now + timedelta(hours=1))
    # Permanent errors stop at once, deadline or not.
    assert strategy.gives_up(InvalidApiKey("x"), soon)


def test_an_unreadable_deadline_falls_back_to_the_attempt_count() -> None:
    strategy = Backoff(max_attempts=3, base=5.0, deadline_arg="deadline")

    assert not strategy.gives_up(Transient(), job(0, deadline="next tuesday"))
    assert strategy.gives_up(Transient(), job(2, deadline="next tuesday"))
    assert strategy.gives_up(Transient(), job(2))
