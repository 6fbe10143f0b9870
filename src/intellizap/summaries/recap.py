"""Writing a group's weekly recap: reduced from the week's daily summaries, never the raw week.

The tick claims a ``resumos`` row with ``origem = 'semanal'`` (``data_referencia`` = the recap's
local day, at most one per group and week) and queues its job in the same transaction. The job
reads the summaries the group received in the 7 local days up to that day, asks the model once
(metered, quota-checked) and delivers the text wherever the group's summaries go, with the
weekly heading. The row then follows the same path as a daily one: ``pendente`` with content →
``enviado`` once the send ledger confirms (``delivery.py``), or ``erro`` with the reason. A job
re-run after a crash with the content already stored sends that same text under the same ledger
key: the model is not asked (nor paid) twice, and nothing is sent twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import procrastinate
from sqlalchemy.ext.asyncio import AsyncSession

from intellizap.db.engine import Database
from intellizap.llm import Completion, Llm
from intellizap.logging import get_logger
from intellizap.settings import Settings
from intellizap.summaries import rollups_repository as sql
from intellizap.summaries.delivery import on_delivery
from intellizap.summaries.destinations import Letter, NoOwnerNumber, deliver, destination_of
from intellizap.summaries.language import choose_language
from intellizap.summaries.metered import complete_and_store
from intellizap.summaries.rollup_prompt import GroupSummary, build_recap_messages
from intellizap.summaries.service import fail
from intellizap.summaries.wording import WEEKLY, heading
from intellizap.tenants import quota
from intellizap.tenants.clock import tenant_zone

log = get_logger(__name__)

#: A recap due at the hour of the group's daily summary waits this long for that day's summary
#: to be written before it goes without it.
DAILY_WAIT = timedelta(minutes=30)

_WEEKDAYS = ("seg", "ter", "qua", "qui", "sex", "sáb", "dom")


class DailyStillPending(Exception):
    """The recap day's own daily summary is still being written: try again shortly."""

    transient = True


@dataclass(frozen=True, slots=True)
class Week:
    first: date
    last: date

    @property
    def label(self) -> str:
        return f"{self.first:%d/%m} a {self.last:%d/%m}"


def week_ending(day: date) -> Week:
    """The 7 local days a recap of ``day`` covers: the six before it and ``day`` itself."""
    return Week(day - timedelta(days=6), day)


def day_label(day: date) -> str:
    return f"{_WEEKDAYS[day.weekday()]} {day:%d/%m}"


def no_dailies_reason(week: Week) -> str:
    return (
        f"nenhum resumo diário enviado na semana de {week.label}; retrospectiva não gerada "
        "(nada enviado nem cobrado)"
    )


async def write_recap(
    database: Database,
    llm: Llm,
    settings: Settings,
    queue: procrastinate.App,
    summary_id: uuid.UUID,
    *,
    now: datetime,
) -> str:
    async with database.session() as session:
        row = await sql.recap_to_write(session, summary_id)
        if row is None or row["status"] != "pendente" or row["origem"] != "semanal":
            return "skipped"
        zone = tenant_zone(row["fuso_horario"], settings.default_timezone)
        week = week_ending(row["day"])
        dailies = await sql.week_summaries(
            session, group_id=row["group_id"], zone=zone.key, first=week.first, last=week.last
        )
        waiting = await sql.daily_being_written(session, row["group_id"], row["day"])
    log_ids = {"grupo_id": str(row["group_id"]), "resumo_id": str(summary_id)}
    language = choose_language(
        row["group_language"], row["account_language"], (d["conteudo"] for d in dailies)
    )
    if row["conteudo"]:  # written before a crash: the same text, the ledger sends it once
        await _deliver(database, queue, settings, row, week, language, row["conteudo"])
        return "resent"
    if waiting and now < row["created_at"] + DAILY_WAIT:
        raise DailyStillPending("the recap day's daily summary is still being written")
    if not dailies:
        await fail(database, summary_id, no_dailies_reason(week))
        log.info("weekly recap not sent: no daily summaries that week", **log_ids)
        return "no_dailies"
    messages = build_recap_messages(
        week=week.label,
        daily=[GroupSummary(row["nome"], day_label(d["day"]), d["conteudo"]) for d in dailies],
        language=language,
    )
    start = min((d["periodo_inicio"] for d in dailies if d["periodo_inicio"]), default=None)
    end = max((d["periodo_fim"] for d in dailies if d["periodo_fim"]), default=None)

    async def store(session: AsyncSession, completion: Completion) -> None:
        await sql.store_recap(
            session,
            summary_id,
            content=completion.text,
            message_count=sum(d["total_mensagens"] or 0 for d in dailies),
            start=start,
            end=end,
            tokens=completion.input_tokens + completion.output_tokens,
        )

    completion = await complete_and_store(
        database,
        llm,
        settings,
        account=quota.Account(row["tenant_id"], row["tokens_mes"], row["renewal_day"], zone),
        openai_key=row["openai_key"],
        messages=messages,
        kind="resumo",
        summary_id=summary_id,
        now=now,
        store=store,
    )
    await _deliver(database, queue, settings, row, week, language, completion.text)
    log.info("weekly recap generated", resumos_diarios=len(dailies), **log_ids)
    return "generated"


async def _deliver(
    database: Database,
    queue: procrastinate.App,
    settings: Settings,
    row: Any,
    week: Week,
    language: str,
    content: str,
) -> None:
    """To the group's destination, like its daily summaries (nobody mentioned: a recap repeats
    what the dailies already asked of people). Same key, same text: sent once."""
    name = row["nome"] or row["grupo_id_externo"]
    letter = Letter(
        group_text=f"{heading(WEEKLY, language, period=week.label)}\n\n{content}",
        owner_text=f"{heading(WEEKLY, language, group_name=name, period=week.label)}\n\n{content}",
        participants={},
    )
    try:
        await deliver(
            queue,
            database,
            tenant_id=row["tenant_id"],
            destination=destination_of(
                row["destination"], row["grupo_id_externo"], row["owner_number"]
            ),
            letter=letter,
            max_chars=settings.send_max_chars,
            key=f"summary:{row['id']}",
            on_done=on_delivery(row["id"]),
        )
    except NoOwnerNumber as exc:
        await fail(database, row["id"], str(exc))
