"""``intellizap jobs list|retry|cancel``: the job queue seen and handled by an operator
(docs/operations.md says when to use which)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from intellizap import job_admin
from intellizap.commands.common import fail, load_settings, with_database
from intellizap.commands.tenant_views import table
from intellizap.db.engine import Database

jobs_cli = typer.Typer(help="The job queue: list, retry and cancel jobs.", no_args_is_help=True)

StatusOption = Annotated[
    list[str] | None,
    typer.Option(
        "--status",
        help=f"Only jobs in this status (repeatable): {', '.join(job_admin.STATUSES)}. "
        "Default: todo, doing and failed.",
    ),
]
TaskOption = Annotated[str | None, typer.Option("--task", help="Only jobs of this task.")]
QueueOption = Annotated[str | None, typer.Option("--queue", help="Only jobs of this queue.")]


def _statuses(given: list[str] | None, default: tuple[str, ...]) -> list[str]:
    statuses = given or list(default)
    unknown = [status for status in statuses if status not in job_admin.STATUSES]
    if unknown:
        fail(f"unknown status {unknown[0]!r}: use one of {', '.join(job_admin.STATUSES)}")
    return statuses


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    seconds = (now - moment).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    text = (
        f"{seconds:.0f}s"
        if seconds < 120
        else f"{seconds / 60:.0f}m"
        if seconds < 7200
        else f"{seconds / 3600:.1f}h"
    )
    return f"in {text}" if future else f"{text} ago"


@jobs_cli.command("list")
def list_jobs(
    status: StatusOption = None,
    task: TaskOption = None,
    queue: QueueOption = None,
    limit: Annotated[int, typer.Option(help="Show at most this many, newest first.")] = 50,
) -> None:
    """Waiting, running and failed jobs, newest first, with the queue's depth."""
    settings = load_settings()
    statuses = _statuses(status, ("todo", "doing", "failed"))

    async def work(database: Database, _url: str) -> None:
        now = datetime.now(UTC)
        counts = await job_admin.active_counts(database)
        if counts:
            typer.echo(
                "queue depth: "
                + ", ".join(
                    f"{queue_name} {job_status} {jobs}"
                    + (f" ({later} scheduled later)" if later else "")
                    for queue_name, job_status, jobs, later in counts
                )
            )
        else:
            typer.echo("queue depth: nothing waiting or running")
        rows = await job_admin.list_jobs(
            database, statuses=statuses, task=task, queue=queue, limit=max(limit, 1)
        )
        if not rows:
            typer.echo(f"no {'/'.join(statuses)} jobs")
            return
        typer.echo(
            table(
                ("id", "task", "queue", "status", "attempts", "last event", "runs", "arguments"),
                [
                    (
                        row.id,
                        row.task,
                        row.queue,
                        row.status,
                        row.attempts,
                        f"{row.last_event or '-'} {_ago(row.last_event_at, now)}",
                        _ago(row.scheduled_at, now) if row.status == "todo" else "-",
                        row.arguments,
                    )
                    for row in rows
                ],
            )
        )

    with_database(settings, work)


_RETRY_MESSAGES = {
    "queued": "queued to run again",
    "not_found": "no such job",
    "not_retryable": "is {status}: only failed, cancelled or aborted jobs are retried "
    "(a running job whose worker died is re-run by itself after STALLED_JOB_SECONDS)",
    "duplicate": "not retried: an identical job is already waiting (same queueing lock)",
}


@jobs_cli.command("retry")
def retry(
    job_ids: Annotated[list[int] | None, typer.Argument(help="Jobs to run again.")] = None,
    failed: Annotated[
        bool, typer.Option("--failed", help="Every failed job (with --task/--queue: of those).")
    ] = False,
    task: TaskOption = None,
    queue: QueueOption = None,
    reset_attempts: Annotated[
        bool,
        typer.Option(
            "--reset-attempts", help="Give them their whole retry budget again, not one attempt."
        ),
    ] = False,
    limit: Annotated[int, typer.Option(help="With --failed: at most this many.")] = 1000,
) -> None:
    """Run failed (or cancelled) jobs again, now. Do it after fixing what made them fail."""
    settings = load_settings()
    if not job_ids and not failed:
        fail("give job ids, or --failed (optionally with --task/--queue)")

    async def work(database: Database, _url: str) -> None:
        ids = list(job_ids or [])
        if failed:
            ids += await job_admin.matching_jobs(
                database, statuses=["failed"], task=task, queue=queue, limit=limit
            )
        if not ids:
            typer.echo("no failed jobs match")
            return
        refused = 0
        for job_id in ids:
            outcome = await job_admin.retry_job(database, job_id, reset_attempts=reset_attempts)
            refused += outcome.result != "queued"
            message = _RETRY_MESSAGES[outcome.result].format(status=outcome.status)
            typer.echo(f"job {job_id}: {message}")
        if refused and not failed:
            raise typer.Exit(1)

    with_database(settings, work)


@jobs_cli.command("cancel")
def cancel(
    job_ids: Annotated[list[int], typer.Argument(help="Jobs to cancel.")],
    abort: Annotated[
        bool,
        typer.Option(
            "--abort",
            help="Also ask running jobs to stop (what they already did, e.g. a send, stays).",
        ),
    ] = False,
) -> None:
    """Cancel waiting jobs (they will not run); with --abort, stop running ones too."""
    settings = load_settings()

    async def work(database: Database, _url: str) -> None:
        refused = 0
        for job_id in job_ids:
            outcome = await job_admin.cancel_job(database, job_id, abort=abort)
            if outcome.result == "cancelled":
                typer.echo(f"job {job_id}: cancelled")
            elif outcome.result == "abort_requested":
                typer.echo(f"job {job_id}: asked to stop (it was running)")
            elif outcome.result == "not_found":
                refused += 1
                typer.echo(f"job {job_id}: no such job")
            else:
                refused += 1
                hint = " (add --abort to stop a running job)" if outcome.status == "doing" else ""
                typer.echo(f"job {job_id}: is {outcome.status}, nothing to cancel{hint}")
        if refused:
            raise typer.Exit(1)

    with_database(settings, work)
