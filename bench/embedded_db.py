"""A throwaway embedded PostgreSQL for a benchmark, stopped however the benchmark ends (a
postmaster left behind keeps its memory and port until someone kills it)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from intellizap.db.embedded import EmbeddedPostgres


@contextlib.contextmanager
def embedded_server(workdir: Path) -> Iterator[tuple[EmbeddedPostgres, str]]:
    """The server started in ``workdir``, and its URL."""
    server = EmbeddedPostgres(workdir)
    url = server.start()
    try:
        yield server, url
    finally:
        with contextlib.suppress(Exception):
            server.stop()


@contextlib.contextmanager
def embedded_database(workdir: Path) -> Iterator[str]:
    """The URL of a started server in ``workdir``."""
    with embedded_server(workdir) as (_, url):
        yield url
