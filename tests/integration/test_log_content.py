"""A failed statement logged with its traceback carries no chat content: SQLAlchemy does not echo
the parameters, and PostgreSQL's "Failing row contains (…)" detail is cut."""

from __future__ import annotations

import io

import pytest
import sqlalchemy.exc
from sqlalchemy import text

from intellizap.db.engine import Database
from intellizap.logging import configure_logging, get_logger

CONTENT = "Resumo confidencial do grupo: pedido de 200 caixas"


async def test_a_failed_insert_of_a_summary_logs_no_summary_text(database: Database) -> None:
    stream = io.StringIO()
    configure_logging(json=True, level="INFO", stream=stream)
    try:
        with pytest.raises(sqlalchemy.exc.IntegrityError) as failure:
            async with database.session() as session:
                await session.execute(
                    text(
                        "INSERT INTO resumos (grupo_id, usuario_id, status, conteudo)"
                        " VALUES (NULL, NULL, 'pendente', :content)"
                    ),
                    {"content": CONTENT},
                )
        get_logger("intellizap.test").error("summary not stored", exc_info=failure.value)
    finally:
        configure_logging(json=False, level="WARNING")
    line = stream.getvalue()
    assert "summary not stored" in line
    assert "SQL parameters hidden" in line
    assert "Failing row contains (…)" in line
    assert CONTENT not in line
    assert "200 caixas" not in line
