"""The procrastinate app: the durable, PostgreSQL-based job queue. Features register tasks on it."""

from __future__ import annotations

import procrastinate

from intellizap.db.engine import libpq_url

#: Import paths of the modules that define tasks; the worker imports them at start.
TASK_MODULES: list[str] = []

app = procrastinate.App(connector=procrastinate.PsycopgConnector(), import_paths=TASK_MODULES)


def connect(url: str) -> procrastinate.App:
    """``app`` bound to the database at ``url`` (open it with ``async with … .open_async()``)."""
    return app.with_connector(
        procrastinate.PsycopgConnector(
            conninfo=libpq_url(url),
            kwargs={"options": "-c timezone=UTC"},
            min_size=1,
            max_size=4,
        )
    )
