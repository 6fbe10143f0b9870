"""Writing the owner's daily digest (``usuarios.resumo_diario_dono``): one private message
across all the account's groups, built from that day's summaries (never the raw chats again).

The tick claims one ``resumos_dono`` row per account and local day once the day's summaries are
written (or half an hour after the hour at the latest) and queues its job in the same
transaction. The job gives the model the text of every group whose summary was sent and the
names of the others (too few messages, a failure: "quiet" groups, one line each), makes one
metered, quota-checked call (``uso_tokens.tipo = 'resumo_dono'``) and sends the result to
``usuarios.numero_dono`` through the send ledger under the key ``digest:<id>``. The row goes
``pendente`` → ``pendente`` with content → ``enviado`` (with ``data_envio``) once the ledger
confirms, or ``erro`` with the reason. A re-run with the content stored sends the same text
under the same key: nothing is generated, paid for or sent twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import procrastinate
from sqlalchemy.ext.asyncio import AsyncSession

from intellizap.db.engine import Database
from intellizap.evolution.send_ledger import Completion as SendCompletion
from intellizap.evolution.sending import queue_text
from intellizap.llm import Completion, Llm
from intellizap.logging import get_logger
from intellizap.settings import Settings
from intellizap.summaries import rollups_repository as sql
from intellizap.summaries.language import choose_language
from intellizap.summaries.metered import complete_and_store
from intellizap.summaries.rollup_prompt import GroupSummary, build_digest_messages
from intellizap.summaries.wording import DIGEST, heading
from intellizap.tenants import quota
from intellizap.tenants.clock import tenant_zone

log = get_logger(__name__)

DIGEST_DELIVERED_TASK = "digest_delivered"

#: What the tenant reads in ``resumos_dono.erro`` when the digest has nowhere to go.
NO_OWNER_NUMBER = (
    "o resumo do dia vai para o chat particular do dono, mas a conta não tem numero_dono: "
    "cadastre o número (com DDI e DDD, só dígitos) ou desative resumo_diario_dono"
)
NOTHING_TO_DIGEST = (
    "nenhum grupo teve resumo enviado hoje; resumo do dia não gerado (nada enviado nem cobrado)"
)


def on_digest_delivery(digest_id: uuid.UUID) -> SendCompletion:
    """What the send of digest ``digest_id`` runs once it is sent (or failed)."""
    return SendCompletion(task=DIGEST_DELIVERED_TASK, args={"digest_id": str(digest_id)})


async def write_digest(
    database: Database,
    llm: Llm,
    settings: Settings,
    queue: procrastinate.App,
    digest_id: uuid.UUID,
    *,
    now: datetime,
) -> str:
    async with database.session() as session:
        row = await sql.digest_to_write(session, digest_id)
        if row is None or row["status"] != "pendente":
            return "skipped"
        groups = await sql.digest_groups(
            session, tenant_id=row["tenant_id"], day=row["day"], max_groups=row["max_grupos"]
        )
    if not row["owner_number"]:
        await fail_digest(database, digest_id, NO_OWNER_NUMBER)
        return "no_owner_number"
    sent = [
        GroupSummary(g["nome"] or g["grupo_id_externo"], f"{row['day']:%d/%m}", g["conteudo"])
        for g in groups
        if g["status"] == "enviado" and (g["conteudo"] or "").strip()
    ]
    quiet = [
        g["nome"] or g["grupo_id_externo"]
        for g in groups
        if not (g["status"] == "enviado" and (g["conteudo"] or "").strip())
    ]
    language = choose_language(None, row["account_language"], (s.text for s in sent))
    if row["conteudo"]:  # written before a crash: the same text, the ledger sends it once
        await _send(database, queue, settings, row, language, row["conteudo"])
        return "resent"
    if not sent:
        await fail_digest(database, digest_id, NOTHING_TO_DIGEST)
        log.info("owner digest not sent: no summary today", usuario_id=str(row["tenant_id"]))
        return "nothing"
    messages = build_digest_messages(
        day=f"{row['day']:%d/%m/%Y}", summaries=sent, language=language, quiet=quiet
    )

    async def store(session: AsyncSession, completion: Completion) -> None:
        await sql.store_digest(
            session,
            digest_id,
            content=completion.text,
            group_count=len(sent) + len(quiet),
            tokens=completion.input_tokens + completion.output_tokens,
        )

    zone = tenant_zone(row["fuso_horario"], settings.default_timezone)
    completion = await complete_and_store(
        database,
        llm,
        settings,
        account=quota.Account(row["tenant_id"], row["tokens_mes"], row["renewal_day"], zone),
        openai_key=row["openai_key"],
        messages=messages,
        kind="resumo_dono",
        summary_id=None,
        now=now,
        store=store,
    )
    await _send(database, queue, settings, row, language, completion.text)
    log.info(
        "owner digest generated",
        usuario_id=str(row["tenant_id"]),
        grupos=len(sent),
        sem_novidades=len(quiet),
    )
    return "generated"


async def _send(
    database: Database,
    queue: procrastinate.App,
    settings: Settings,
    row: Any,
    language: str,
    content: str,
) -> None:
    title = heading(DIGEST, language, period=f"{row['day']:%d/%m}")
    await queue_text(
        queue,
        database,
        tenant_id=row["tenant_id"],
        number=row["owner_number"],
        text=f"{title}\n\n{content}",
        max_chars=settings.send_max_chars,
        key=f"digest:{row['id']}",
        on_done=on_digest_delivery(row["id"]),
    )


async def fail_digest(database: Database, digest_id: uuid.UUID, reason: str) -> None:
    await sql.mark_digest_failed(database, digest_id, reason)


async def record_digest_delivery(
    database: Database, digest_id: uuid.UUID, *, sent: bool, reason: str | None
) -> bool:
    """Mark the digest sent, or failed with ``reason``; returns whether it changed."""
    if sent:
        return await sql.mark_digest_sent(database, digest_id)
    return await sql.mark_digest_failed(database, digest_id, reason or "envio falhou")
