"""Where tasks are defined (``jobs.blueprint``) and how each process gets them: bound to its
own queue app by the composition root, never through a global one."""

from __future__ import annotations

import asyncio
from pathlib import Path

import procrastinate
import pytest

from intellizap import jobs
from intellizap.task_modules import TASK_MODULES, connect_queue

URL = "postgresql://nobody@127.0.0.1:1/none"  # never opened: nothing here reaches a database


def test_every_feature_task_is_bound_to_the_app_the_composition_root_builds() -> None:
    queue = connect_queue(URL)
    for name in ("summarize", "send_text", "summary_tick", "recover_stalled_jobs"):
        assert name in queue.tasks
        assert queue.tasks[name].blueprint is queue
        assert jobs.blueprint.tasks[name].blueprint is jobs.blueprint  # the definition stays
    assert "procrastinate.builtin_tasks.remove_old_jobs" in queue.tasks
    periodic = {task.periodic_id for task in queue.periodic_registry.periodic_tasks.values()}
    assert {"summary-tick", "recover-stalled-jobs", "daily-cleanup"} <= periodic


def test_two_apps_do_not_share_their_tasks() -> None:
    first, second = connect_queue(URL), connect_queue(URL)
    assert first.tasks["summarize"] is not second.tasks["summarize"]
    assert second.tasks["summarize"].blueprint is second


def test_the_definitions_alone_cannot_defer() -> None:
    connect_queue(URL)  # imports the task modules
    with pytest.raises(procrastinate.exceptions.UnboundTaskError):
        asyncio.run(jobs.blueprint.tasks["summarize"].defer_async(summary_id="x"))


def test_the_queue_module_names_no_feature() -> None:
    assert all(module.startswith("intellizap.") for module in TASK_MODULES)
    source = Path(jobs.__file__).read_text(encoding="utf-8")
    for feature in ("summaries", "ingest", "transcription", "frontend", "observability.jobs"):
        assert f"intellizap.{feature}" not in source


def test_only_the_queue_repository_spells_the_queue_tables() -> None:
    """Features reach procrastinate's tables and functions through ``job_repository`` (the
    operator's metrics read them too, as they read every table; migrations create them)."""
    package = Path(jobs.__file__).parent
    allowed = {"job_repository.py", "job_admin.py"}  # job_admin: docstrings naming the table
    spelled = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if "procrastinate_" in path.read_text(encoding="utf-8")
        and path.name not in allowed
        and not path.is_relative_to(package / "observability")
        and not path.is_relative_to(package / "db" / "migrations")
    ]
    assert spelled == []
