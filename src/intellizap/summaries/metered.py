"""One metered, quota-checked LLM call whose result is stored with its usage: what the weekly
recap and the owner's digest each make (they read summaries, so one call always fits).

The worst case (prompt plus maximum output) is reserved from the tenant's quota first; the
call's real usage, the stored result and the end of the reservation then commit together, so a
crash either loses the call (nothing stored: the retry calls again, nothing was charged) or keeps
it (stored: the retry sends it, without calling again).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from intellizap.db.engine import Database
from intellizap.llm import Completion, KeyOwner, Llm, choose_key
from intellizap.settings import Settings
from intellizap.summaries.tokens import count_tokens
from intellizap.tenants import quota

Store = Callable[[AsyncSession, Completion], Awaitable[None]]


def prompt_tokens(messages: list[dict[str, str]]) -> int:
    return sum(count_tokens(message["content"]) for message in messages)


async def complete_and_store(
    database: Database,
    llm: Llm,
    settings: Settings,
    *,
    account: quota.Account,
    openai_key: str | None,
    messages: list[dict[str, str]],
    kind: str,
    summary_id: uuid.UUID | None,
    now: datetime,
    store: Store,
) -> Completion:
    """Reserve, call ``settings.summary_model``, then charge (``uso_tokens.tipo`` = ``kind``) and
    ``store`` the completion in one transaction. Raises ``quota.QuotaRefused`` (nothing called,
    nothing charged), ``quota.QuotaBusy`` or the LLM's errors."""
    key = choose_key(openai_key, settings.openai_api_key)
    tokens = prompt_tokens(messages)
    output = settings.summary_max_output_tokens
    reservation = await quota.reserve(
        database, account, tokens + output, platform_key=key.owner is KeyOwner.PLATFORM, now=now
    )
    try:
        completion = await llm.complete(
            key,
            model=settings.summary_model,
            messages=messages,
            max_tokens=output,
            input_tokens=tokens,
        )
        async with database.session() as session:
            usage = quota.Usage(completion.model, completion.input_tokens, completion.output_tokens)
            await quota.charge(
                session,
                reservation,
                usage,
                key_owner=key.owner.value,
                summary_id=summary_id,
                kind=kind,
            )
            await store(session, completion)
            await quota.settle(session, reservation)
    except BaseException:
        await quota.release(database, reservation)
        raise
    return completion
