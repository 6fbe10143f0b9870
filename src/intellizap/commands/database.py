"""``intellizap db shell`` and ``db url``: psql on the configured or the embedded database.

The embedded PostgreSQL listens on a Unix socket only, in ``DATA_DIR/pgdata`` (or, when that
path is too long for a socket, in the runtime directory), and only while a process uses it:
``db shell`` starts it when nothing else runs, and stops it again when psql exits.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Annotated

import psycopg.conninfo
import typer

from intellizap.commands.common import MISCONFIGURED, database_url, fail, load_settings
from intellizap.db.embedded import PSQL, start_database

database_cli = typer.Typer(help="The database: psql, and its connection URL.", no_args_is_help=True)

#: libpq connection parameters → the environment variables psql reads them from. Passing them
#: this way keeps the password out of the process list (``ps`` shows command lines).
_ENVIRONMENT = {
    "host": "PGHOST",
    "port": "PGPORT",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "dbname": "PGDATABASE",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "options": "PGOPTIONS",
    "connect_timeout": "PGCONNECT_TIMEOUT",
}


def psql_environment(url: str) -> dict[str, str]:
    """The ``PG*`` variables that make a plain ``psql`` connect to ``url``."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(
            url.replace("postgresql+psycopg://", "postgresql://", 1)
        )
    except psycopg.ProgrammingError as exc:
        fail(f"DATABASE_URL is not a PostgreSQL URL: {exc}", MISCONFIGURED)
    return {
        variable: str(params[name])
        for name, variable in _ENVIRONMENT.items()
        if params.get(name) not in (None, "")
    }


def _psql() -> str:
    # The embedded server's own psql is always there; a system one is used only when the
    # bundled binary cannot run on this machine.
    if os.access(PSQL, os.X_OK):
        return str(PSQL)
    system = shutil.which("psql")
    if system is None:
        fail("no psql found: install the PostgreSQL client (apt-get install postgresql-client)")
    return system


@database_cli.command(
    "shell", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def shell(ctx: typer.Context) -> None:
    """psql on the database (arguments after the command go to psql, e.g.
    `intellizap db shell -c 'SELECT count(*) FROM mensagens'`)."""
    settings = load_settings()
    url = database_url(settings, schema=False)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env.update(psql_environment(url))
    completed = subprocess.run([_psql(), *ctx.args], env=env, check=False)  # noqa: S603
    raise typer.Exit(completed.returncode)


@database_cli.command("url")
def url(
    show_password: Annotated[
        bool, typer.Option("--show-password", help="Print the password too (for other tools).")
    ] = False,
) -> None:
    """The connection URL (the embedded server's socket when DATABASE_URL is unset). The
    embedded server answers only while `intellizap serve` (or another command) runs."""
    settings = load_settings()
    address, _embedded = start_database(settings)
    if not show_password:
        address = re.sub(r"(://[^:/@]*:)[^@/]+@", r"\1********@", address)
    typer.echo(address)
