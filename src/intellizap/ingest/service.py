"""What a webhook does to the database: store, edit and delete group messages of enabled groups.

Read top to bottom it is the product rule: only groups (``…@g.us``) the tenant enabled are kept,
within the tenant's ``max_grupos``; a group seen for the first time is recorded as inactive so
the frontend can offer it; everything else is acknowledged and dropped.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import procrastinate
import structlog

from intellizap.db.engine import Database
from intellizap.evolution.payloads import (
    INVALID_GROUP_JID,
    ChatMessage,
    ConnectionChanged,
    Envelope,
    Event,
    GroupsSeen,
    Ignored,
    MessageDeleted,
    MessageEdited,
    Reaction,
    is_group_jid,
)
from intellizap.evolution.send_witnesses import record_echo
from intellizap.ingest.changes import record_change
from intellizap.ingest.metrics import event_outcome
from intellizap.ingest.writer import MessageWriter, NewMessage, WriteResult
from intellizap.logging import get_logger
from intellizap.settings import Settings
from intellizap.summaries.on_demand import COMMAND, request_on_demand
from intellizap.tenants.directory import GroupInfo, TenantDirectory, TenantInfo
from intellizap.tenants.group_sync import request_group_sync
from intellizap.transcription.service import request_transcription, untranscribed_message

log = get_logger(__name__)
_DEBUG = logging.getLogger(__name__)  # the stdlib logger behind `log`: its level check is cached


@dataclass(slots=True)
class IngestReport:
    """What happened to each event of one webhook, by outcome (for the response and metrics)."""

    outcomes: Counter[str] = field(default_factory=Counter)

    def add(self, outcome: str) -> None:
        self.outcomes[outcome] += 1
        event_outcome(outcome).inc()


class IngestService:
    def __init__(
        self,
        database: Database,
        directory: TenantDirectory,
        writer: MessageWriter,
        queue: procrastinate.App,
        settings: Settings,
    ) -> None:
        self._settings = settings
        self._database = database
        self._directory = directory
        self._writer = writer
        self._queue = queue

    async def ingest(
        self, envelope: Envelope, tenant: TenantInfo | None, events: list[Event]
    ) -> IngestReport:
        """Apply every event of one webhook. Raises ``DatabaseUnavailable`` (→ 503) when the
        database cannot be reached, so Evolution retries: nothing is acknowledged unstored."""
        report = IngestReport()
        if tenant is None:
            log.info("webhook for an unknown instance ignored", instancia=envelope.instance)
            report.add("unknown_instance")
            return report
        structlog.contextvars.bind_contextvars(usuario_id=str(tenant.id), instancia=tenant.instance)
        try:
            for event in events:
                report.add(await self._apply(tenant, event))
        finally:
            structlog.contextvars.unbind_contextvars("usuario_id", "instancia", "grupo_id")
        return report

    async def _apply(self, tenant: TenantInfo, event: Event) -> str:
        match event:
            case ChatMessage():
                if event.from_me:  # perhaps the echo of a send whose outcome is unknown
                    await record_echo(
                        self._database,
                        tenant_id=tenant.id,
                        chat_jid=event.chat_jid,
                        message_id=event.message_id,
                        text=event.text,
                        sent_at=event.sent_at,
                    )
                group = await self._ingested_group(tenant, event.chat_jid)
                if group is None:
                    return "ignored"
                result = await self._store(group, event)
                if event.kind == "audio" and tenant.transcription_enabled:
                    await self._transcribe(group, event, result)
                if _is_summary_command(event) and (result.stored or _retried(event)):
                    await self._summarize_on_demand(tenant, group, event)
                return "stored" if result.stored else "duplicate"
            case MessageEdited():
                group = await self._ingested_group(tenant, event.chat_jid)
                if group is None:
                    return "ignored"
                await record_change(
                    self._database,
                    group_id=group.id,
                    external_id=event.message_id,
                    text=_clean(event.text),
                    edited_at=event.edited_at,
                )
                log.info("message edited", id_externo=event.message_id)
                return "edited"
            case MessageDeleted():
                group = await self._ingested_group(tenant, event.chat_jid)
                if group is None:
                    return "ignored"
                await record_change(
                    self._database,
                    group_id=group.id,
                    external_id=event.message_id,
                    deleted_at=event.deleted_at,
                )
                log.info("message deleted", id_externo=event.message_id)
                return "deleted"
            case Reaction():
                # Reactions are not chat lines: counted, never stored.
                return "reaction"
            case GroupsSeen():
                if event.invalid:
                    _log_invalid_groups(event.invalid)
                for jid, name in event.groups:
                    await self._directory.register_group(tenant, jid, name)
                await request_group_sync(self._queue, tenant.id)
                return "groups"
            case ConnectionChanged():
                log.info("instance connection changed", state=event.state)
                if event.state == "open":
                    await request_group_sync(self._queue, tenant.id)
                return "connection"
            case Ignored():
                if event.reason == INVALID_GROUP_JID:
                    _log_invalid_groups(1)
                return "ignored"
        raise AssertionError(f"unhandled event {event!r}")

    async def _ingested_group(self, tenant: TenantInfo, chat_jid: str) -> GroupInfo | None:
        """The group if its messages are to be kept; None (with the reason logged) otherwise."""
        if not is_group_jid(chat_jid):
            return None  # private chats, statuses, newsletters, broadcast lists
        group = tenant.groups.get(chat_jid)
        if group is None:
            await self._directory.register_group(tenant, chat_jid)
            log.info("new group recorded as inactive", grupo=chat_jid)
            return None
        if not group.active:
            return None
        if not group.within_limit:
            log.warning(
                "group over the tenant's max_grupos: message not stored",
                grupo_id=str(group.id),
                max_grupos=tenant.max_groups,
            )
            return None
        structlog.contextvars.bind_contextvars(grupo_id=str(group.id))
        return group

    async def _store(self, group: GroupInfo, message: ChatMessage) -> WriteResult:
        result = await self._writer.write(
            NewMessage(
                group_id=group.id,
                external_id=message.message_id,
                text=_clean(message.text),
                author_name=_clean(message.author_name),
                author_number=_clean(message.author_number),
                sent_at=message.sent_at,
                kind=message.kind,
                from_me=message.from_me,
            )
        )
        if _DEBUG.isEnabledFor(logging.DEBUG):  # a debug call costs more than a check when off
            log.debug(
                "message stored" if result.stored else "duplicate message acknowledged",
                id_externo=message.message_id,
                tipo=message.kind,
            )
        return result

    async def _transcribe(
        self, group: GroupInfo, message: ChatMessage, result: WriteResult
    ) -> None:
        """Queue the transcription of a stored audio of a group with transcription on. A duplicate
        webhook queues it again only if the first delivery stored the message but never got to
        queue the job (the job itself skips messages that already have a transcript)."""
        if not group.transcription_enabled or message.media_key is None:
            return
        message_id = result.message_id or await untranscribed_message(
            self._database, group.id, message.message_id
        )
        if message_id is not None:
            await request_transcription(
                self._database,
                self._queue,
                message_id=message_id,
                media=message.media_key,
                media_base64=message.media_base64,
            )

    async def _summarize_on_demand(
        self, tenant: TenantInfo, group: GroupInfo, message: ChatMessage
    ) -> None:
        if not (message.from_me or tenant.members_can_summarize):
            log.info("/resumo from a member ignored (resumo_membros is off)")
            return
        summary_id = await request_on_demand(
            self._database, self._queue, self._settings, tenant_id=tenant.id, group_id=group.id
        )
        if summary_id is None:
            log.info("/resumo ignored: one was asked for a moment ago")


def _log_invalid_groups(count: int) -> None:
    # Neither the id nor the payload: an attacker's string has no place in a log line.
    log.warning(
        "webhook named a chat ending in @g.us that is not a group JID (digits[-digits]@g.us): "
        "ignored, no group recorded",
        ignorados=count,
    )


#: Evolution retries a failed webhook for about 20 minutes.
_RETRY_WINDOW = timedelta(minutes=30)


def _retried(message: ChatMessage) -> bool:
    """A duplicate of a recent message is likely Evolution retrying after we failed (503) past
    storing it: what the first delivery did not finish (e.g. queue the ``/resumo``) is done now;
    the on-demand rate limit keeps a delivery that did finish from asking twice."""
    return message.sent_at > datetime.now(UTC) - _RETRY_WINDOW


def _is_summary_command(message: ChatMessage) -> bool:
    return message.kind == "texto" and (message.text or "").strip().lower() == COMMAND


def _clean(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL characters."""
    return value.replace("\x00", "") if value else value
