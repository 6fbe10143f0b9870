"""The composition root's part of the job queue: which modules define tasks, and what wraps
every job a worker runs.

Shared infrastructure (:mod:`intellizap.jobs`) does not know the features; the processes that run
or defer jobs (``serve``, ``worker``, the API, the operator commands) get their queue and their
worker here, so a feature's new task module is added in this one list.
"""

from __future__ import annotations

import procrastinate

from intellizap import jobs
from intellizap.observability.jobs import observe_job
from intellizap.settings import Settings

#: Modules whose tasks the worker must know (imported when the queue is connected).
TASK_MODULES = (
    "intellizap.jobs",
    "intellizap.evolution.sending",
    "intellizap.transcription.tasks",
    "intellizap.tenants.group_sync",
    "intellizap.summaries.scheduled",
    "intellizap.summaries.tasks",
    "intellizap.summaries.delivery",
    "intellizap.ingest.scheduled",
)


def connect_queue(url: str, *, pool_size: int = 4) -> procrastinate.App:
    """The job queue on the database at ``url``, with every feature's tasks (see :func:`jobs.connect`)."""
    return jobs.connect(url, pool_size=pool_size, task_modules=TASK_MODULES)


async def run_worker(queue: procrastinate.App, settings: Settings, url: str) -> None:
    """The worker (:func:`jobs.run_worker`), every job wrapped by :func:`observe_job`: its log
    lines carry the tenant it works for, and it is counted in the job and summary metrics."""
    await jobs.run_worker(queue, settings, url, middleware=[observe_job])
