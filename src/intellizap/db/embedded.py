"""The embedded PostgreSQL used when ``DATABASE_URL`` is unset (laptops, tests, small installs).

pgserver ships a PostgreSQL 16 server in a wheel; it listens on a Unix socket inside the data
directory only, so nothing on the network can reach it.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path

from intellizap.settings import Settings


def _runtime_dir() -> None:
    """pgserver keeps its lock file in the user's runtime directory (platformdirs), which warns
    on stderr when XDG_RUNTIME_DIR is unset (servers, containers, CI). Give it a private one."""
    if os.environ.get("XDG_RUNTIME_DIR"):
        return
    path = Path(tempfile.gettempdir()) / f"intellizap-runtime-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    if path.is_symlink() or path.stat().st_uid != os.getuid():
        return  # someone else's: let platformdirs choose (and warn)
    path.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(path)


_runtime_dir()
with warnings.catch_warnings():
    # platformdirs' RuntimeDirWarning, raised at import time by pgserver on unusual set-ups.
    warnings.simplefilter("ignore", UserWarning)
    import pgserver._commands as pg_commands
    from pgserver.postgres_server import PostgresServer, get_server

_log = logging.getLogger(__name__)

#: The ``psql`` shipped with the embedded server (the same major version).
PSQL = pg_commands.POSTGRES_BIN_PATH / "psql"


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in ``data_dir / "pgdata"``."""

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "pgdata").resolve()
        self._server: PostgresServer | None = None

    def start(self) -> str:
        """Start the server (or attach to the one already running) and return its URL."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        # cleanup_mode="stop": the server stops when the last process using it exits.
        server = get_server(self.pgdata, cleanup_mode="stop")
        self._server = server
        url: str = server.get_uri()
        _log.info("embedded PostgreSQL running with data in %s", self.pgdata)
        return url

    def release(self) -> None:
        """This process is done with the server: it stops when no other process uses it.

        pgserver does this at interpreter exit, but a process ended by a signal (uvicorn
        re-raises SIGTERM after its graceful shutdown) never gets there, so the application
        calls this at shutdown; a second call is harmless.
        """
        server, self._server = self._server, None
        if server is not None:
            server.cleanup()
            # pgserver keeps one handle per data directory and process; forget it, so a later
            # start() in this process registers again instead of reusing a released handle.
            PostgresServer._instances.pop(self.pgdata, None)

    def stop(self) -> None:
        """Stop the server now (tests use this to simulate a database outage)."""
        server = self._server
        if server is None:
            return
        # pg_ctl is generated at import time, so the type checker cannot see it.
        stop = pg_commands.pg_ctl  # type: ignore[attr-defined]
        stop(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=server.system_user)

    def restart(self) -> None:
        """Start the server again after :meth:`stop`, with the same socket and data."""
        server = self._server
        if server is None:
            raise RuntimeError("the embedded database was never started")
        with server._lock:
            server.ensure_postgres_running()


def start_database(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """The database URL to use, starting the embedded server when ``DATABASE_URL`` is unset."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value(), None
    embedded = EmbeddedPostgres(settings.data_dir)
    return embedded.start(), embedded
