"""The database side of ``bench/burst.py``: the fill (``--tenants`` tenants in one time zone, all
due at the same minute, ``--groups`` groups with summaries on spread over them, ``--messages``
messages each, then ``ANALYZE``) and the progress query the drain is followed with (summaries
claimed and finished, jobs doing and waiting, summary jobs apart, jobs waiting to be retried)."""

from __future__ import annotations

import argparse
from datetime import datetime

from sqlalchemy import text

from intellizap.db.engine import Database

ZONE = "America/Sao_Paulo"

FILL = """
INSERT INTO usuarios (instancia, "horaResumo", fuso_horario)
SELECT 'burst-' || n, :at, :zone FROM generate_series(1, :tenants) AS n;
INSERT INTO grupos (grupo_id_externo, usuario_id, ativo, resumo_ativo, transcricao_ativa, nome)
SELECT '1203634' || lpad(g::text, 11, '0') || '@g.us', u.id, true, true, false, 'Grupo ' || g
FROM generate_series(1, :groups) AS g
JOIN usuarios u ON u.instancia = 'burst-' || (1 + (g - 1) % :tenants);
INSERT INTO mensagens (grupo_id, id_externo, mensagem, "nome-autor", "numero-autor",
                       data_mensagem, tipo)
SELECT gr.id, 'M' || gr.id || '-' || m, 'mensagem ' || m || ' sobre o pedido ' || (m % 7),
       'Pessoa ' || (m % 4), '55119999' || lpad((m % 4)::text, 5, '0'),
       now() - make_interval(secs => 60 * (:messages - m)), 'texto'
FROM grupos gr CROSS JOIN generate_series(1, :messages) AS m;
"""
PROGRESS = """
SELECT (SELECT count(*) FROM resumos),
       (SELECT count(*) FROM resumos WHERE status <> 'pendente'),
       (SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'),
       (SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'),
       (SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing' AND task_name = 'summarize'),
       (SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo' AND task_name = 'summarize'),
       (SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo' AND attempts > 0)
"""


async def fill(database: Database, args: argparse.Namespace, due_local: datetime) -> None:
    async with database.session() as session:
        for statement in FILL.strip().split(";\n"):
            await session.execute(
                text(statement),
                {
                    "at": due_local.strftime("%H:%M"),
                    "zone": ZONE,
                    "tenants": args.tenants,
                    "groups": args.groups,
                    "messages": args.messages,
                },
            )
    async with database.engine.connect() as conn:
        await conn.execute(text("ANALYZE"))
