"""The send ledger on real PostgreSQL: recording, pacing, and which echoes may settle a send
whose outcome is unknown (and which may not: another tenant's, an old message's, another text)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text

from intellizap.db.engine import Database
from intellizap.evolution import repository, send_witnesses
from intellizap.evolution.send_ledger import Send, Status
from tests.conftest import load_fixture, webhook_headers
from tests.factories import count, create_group, create_tenant

GROUP = "120363401234567890@g.us"
TEXT = "📝 *Resumo do grupo*\n\n• reunião na quinta"


async def recorded(
    database: Database, *parts: str, key: str = "summary:1", instance: str = "acme-support"
) -> list[Send]:
    tenant = await create_tenant(database, instance)
    ids = await repository.record(
        database,
        tenant_id=tenant.id,
        key=key,
        number=GROUP,
        parts=list(parts or [TEXT]),
        quote=None,
        on_done=None,
    )
    return [send for send_id in ids if (send := await repository.load(database, send_id))]


async def posted(database: Database, send: Send) -> Send:
    """The send with a POST begun (its outcome unknown until something says otherwise)."""
    assert await repository.begin_attempt(database, send) is not None
    reloaded = await repository.load(database, send.id)
    assert reloaded is not None
    return reloaded


async def echo(database: Database, send: Send, **changes: Any) -> bool:
    values: dict[str, Any] = {
        "tenant_id": send.tenant_id,
        "chat_jid": GROUP,
        "message_id": "3EB0ECHO0001",
        "text": TEXT,
        "sent_at": datetime.now(UTC),
    }
    values.update(changes)
    return await send_witnesses.record_echo(database, **values)


async def status_of(database: Database, send: Send) -> tuple[Status, str | None]:
    reloaded = await repository.load(database, send.id)
    assert reloaded is not None
    return reloaded.status, reloaded.message_id


async def test_recording_the_same_message_twice_records_it_once(clean_database: Database) -> None:
    tenant = await create_tenant(clean_database, "acme-support")
    arguments: dict[str, Any] = {
        "tenant_id": tenant.id,
        "key": "transcript:abc",
        "number": GROUP,
        "parts": ["um", "dois"],
        "quote": {"message_id": "Q1", "chat_jid": GROUP},
        "on_done": None,
    }

    first = await repository.record(clean_database, **arguments)
    again = await repository.record(clean_database, **{**arguments, "parts": ["outro"]})

    assert first == again
    sends = [await repository.load(clean_database, send_id) for send_id in first]
    assert [(s.part, s.parts, s.text) for s in sends if s] == [(0, 2, "um"), (1, 2, "dois")]
    assert [s.quote is not None for s in sends if s] == [True, False]  # on the first part only


async def test_an_echo_settles_the_send_waiting_for_it(clean_database: Database) -> None:
    [send] = await recorded(clean_database)
    send = await posted(clean_database, send)

    assert await echo(clean_database, send, text=f"  {TEXT}\n") is True
    assert await echo(clean_database, send) is False  # delivered twice: nothing more happens

    assert await status_of(clean_database, send) == (Status.SENT, "3EB0ECHO0001")
    ours = "SELECT count(*) FROM mensagens_enviadas WHERE id_externo = '3EB0ECHO0001'"
    assert await count(clean_database, ours) == 1


async def test_echoes_that_are_not_this_send_leave_it_unknown(clean_database: Database) -> None:
    [send] = await recorded(clean_database)
    send = await posted(clean_database, send)
    other = await create_tenant(clean_database, "beta-store")
    assert send.posted_at is not None

    not_it = [
        {"tenant_id": other.id},  # another tenant's message with the same text
        {"chat_jid": "120363409876543210@g.us"},  # the same text in another group
        {"text": "📝 *Resumo do grupo*\n\n• reunião na sexta"},
        {"text": None},
        {"sent_at": send.posted_at - timedelta(minutes=10)},  # older than our POST
    ]
    for changes in not_it:
        assert await echo(clean_database, send, **changes) is False, changes

    assert await status_of(clean_database, send) == (Status.SENDING, None)


async def test_a_message_id_settles_one_send_only(clean_database: Database) -> None:
    """Two sends of the same text: the echo of the first cannot settle the second too."""
    first, second = await recorded(clean_database, TEXT, TEXT)
    first = await posted(clean_database, first)
    assert await echo(clean_database, first, message_id="3EB0FIRST") is True
    second = await posted(clean_database, second)

    assert await echo(clean_database, second, message_id="3EB0FIRST") is False  # a replay

    assert await status_of(clean_database, second) == (Status.SENDING, None)
    assert await echo(clean_database, second, message_id="3EB0SECOND") is True


async def test_a_send_never_posted_is_not_settled_by_an_echo(clean_database: Database) -> None:
    [send] = await recorded(clean_database)

    assert await echo(clean_database, send) is False

    assert await status_of(clean_database, send) == (Status.PENDING, None)


async def test_a_second_run_cannot_begin_the_same_attempt(clean_database: Database) -> None:
    [send] = await recorded(clean_database)

    assert await repository.begin_attempt(clean_database, send) is not None
    assert await repository.begin_attempt(clean_database, send) is None  # read before the first


async def test_the_instance_is_busy_for_the_interval_after_its_last_post(
    clean_database: Database,
) -> None:
    first, second = await recorded(clean_database, "um", "dois")
    other = (await recorded(clean_database, "outro", key="summary:2", instance="beta-store"))[0]

    async def busy_until(send: Send, pacing: float = 30) -> datetime | None:
        loaded = await repository.load(clean_database, send.id, pacing=pacing)
        assert loaded is not None
        return loaded.busy_until

    assert await busy_until(second) is None  # nothing posted yet
    await posted(clean_database, first)
    await repository.record_sent(clean_database, first, "3EB0A")
    busy = await busy_until(second)

    assert busy is not None
    assert timedelta(seconds=25) < busy - datetime.now(UTC) <= timedelta(seconds=30)
    assert await busy_until(second, pacing=0) is None
    assert await busy_until(other) is None  # another instance does not wait


async def test_a_failed_part_marks_the_later_parts(clean_database: Database) -> None:
    first, second, third = await recorded(clean_database, "um", "dois", "três")

    async def earlier_failed(send: Send) -> bool:
        loaded = await repository.load(clean_database, send.id)
        assert loaded is not None
        return loaded.earlier_part_failed

    assert await earlier_failed(second) is False
    failed = await repository.record_not_sent(clean_database, first, "envio falhou: x", final=True)

    assert await earlier_failed(second) is True
    await repository.cancel(clean_database, second, "parte anterior")
    assert await earlier_failed(third) is True
    assert (failed.status, failed.text, failed.error) == (Status.FAILED, None, "envio falhou: x")


async def test_old_rows_are_forgotten(clean_database: Database) -> None:
    old, new = await recorded(clean_database, "um", "dois")
    async with clean_database.session() as session:
        await session.execute(
            text("UPDATE envios SET created_at = now() - interval '8 days' WHERE id = :id"),
            {"id": old.id},
        )

    deleted = await repository.forget_before(clean_database, datetime.now(UTC) - timedelta(days=7))

    assert deleted == 1
    assert await repository.load(clean_database, old.id) is None
    assert await repository.load(clean_database, new.id) is not None


async def test_another_tenant_cannot_settle_a_send_through_the_webhook(
    service: httpx.AsyncClient, clean_database: Database
) -> None:
    """beta-store forges the echo of acme-support's pending summary (same group, same text)."""
    [send] = await recorded(clean_database)
    send = await posted(clean_database, send)
    other = await create_tenant(clean_database, "beta-store")
    await create_group(clean_database, other, GROUP)
    body = load_fixture("send.message.json")
    body["instance"] = "beta-store"
    body["data"]["key"].update(remoteJid=GROUP, id="3EB0FORGED")
    body["data"]["message"] = {"conversation": TEXT}
    body["data"]["messageTimestamp"] = int(datetime.now(UTC).timestamp())

    response = await service.post(
        "/webhooks/evolution", json=body, headers=webhook_headers("beta-store")
    )

    assert response.status_code == 200
    assert await status_of(clean_database, send) == (Status.SENDING, None)
    # The same echo from the right instance does settle it.
    body["instance"] = "acme-support"
    body["data"]["key"]["id"] = "3EB0REAL"
    response = await service.post(
        "/webhooks/evolution", json=body, headers=webhook_headers("acme-support")
    )
    assert response.status_code == 200
    assert await status_of(clean_database, send) == (Status.SENT, "3EB0REAL")
