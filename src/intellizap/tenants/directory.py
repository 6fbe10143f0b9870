"""Tenant and group lookup with a small cache of bounded staleness.

Every webhook needs "which tenant is this instance, and is this group enabled?". Asking the
database on each request would double the ingest cost, so entries are cached per instance for at
most ``ttl`` seconds: a change the frontend writes directly into the database (a group enabled,
an instance renamed) takes effect within that time, without a restart or a notification.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import RowMapping

from intellizap.db.engine import Database
from intellizap.tenants import directory_repository as repository


@dataclass(frozen=True, slots=True)
class GroupInfo:
    id: uuid.UUID
    jid: str
    active: bool
    """The tenant enabled the group (``grupos.ativo``)."""
    within_limit: bool
    """Among the tenant's oldest ``max_grupos`` active groups; only these are ingested."""
    summary_enabled: bool
    transcription_enabled: bool

    @property
    def ingested(self) -> bool:
        return self.active and self.within_limit


@dataclass(frozen=True, slots=True)
class TenantInfo:
    id: uuid.UUID
    instance: str
    evolution_token: str | None
    transcription_enabled: bool
    max_groups: int | None
    members_can_summarize: bool = False
    """Group members other than the account owner may ask for ``/resumo``."""
    groups: dict[str, GroupInfo] = field(default_factory=dict)


def _build_tenant(instance: str, rows: Sequence[RowMapping]) -> TenantInfo | None:
    if not rows:
        return None
    tenant = rows[0]
    groups = [row for row in rows if row["group_id"] is not None]
    # When a tenant is over its limit, its oldest active groups are the ones ingested.
    active = sorted(
        (row for row in groups if row["active"]),
        key=lambda row: (
            row["created_at"] or datetime.min.replace(tzinfo=UTC),
            str(row["group_id"]),
        ),
    )
    max_groups: int | None = tenant["max_groups"]
    allowed = {
        row["group_id"] for row in (active if max_groups is None else active[: max(max_groups, 0)])
    }
    # Not registered with the log redaction one by one (that would not scale to every tenant):
    # the token only travels in fields whose names (apikey, evolution_token) are redacted.
    token: str | None = tenant["evolution_token"] or None
    return TenantInfo(
        id=tenant["id"],
        instance=instance,
        evolution_token=token,
        transcription_enabled=bool(tenant["transcription_enabled"]),
        max_groups=max_groups,
        members_can_summarize=bool(tenant["members_can_summarize"]),
        groups={
            row["jid"]: GroupInfo(
                id=row["group_id"],
                jid=row["jid"],
                active=bool(row["active"]),
                within_limit=row["group_id"] in allowed,
                summary_enabled=bool(row["summary_enabled"]),
                transcription_enabled=bool(row["group_transcription"]),
            )
            for row in groups
        },
    )


class TenantDirectory:
    """Cached ``instance → tenant and groups`` lookups; at most ``ttl`` seconds stale."""

    def __init__(self, database: Database, *, ttl: float, max_entries: int = 50_000) -> None:
        self._database = database
        self._ttl = ttl
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, TenantInfo | None]] = OrderedDict()
        self._loading: dict[str, asyncio.Future[TenantInfo | None]] = {}

    async def get(self, instance: str, *, max_age: float | None = None) -> TenantInfo | None:
        """The tenant that owns ``instance``, or None when no tenant has it; at most ``max_age``
        seconds old (default: the directory's ``ttl``)."""
        entry = self._entries.get(instance)
        ttl = self._ttl if max_age is None else max_age
        if entry is not None and time.monotonic() - entry[0] < ttl:
            return entry[1]
        # One query per instance at a time, however many requests are waiting for it.
        pending = self._loading.get(instance)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[TenantInfo | None] = asyncio.get_running_loop().create_future()
        self._loading[instance] = future
        try:
            tenant = await self._load(instance)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters, if any, re-raise it themselves
            raise
        finally:
            self._loading.pop(instance, None)
        future.set_result(tenant)
        self._store(instance, tenant)
        return tenant

    async def register_group(self, tenant: TenantInfo, jid: str, name: str | None = None) -> None:
        """Record a group seen for the first time (inactive, so the frontend can offer it), or
        refresh its name. The tenant's cache entry is dropped so the next lookup sees it."""
        async with self._database.session() as session:
            await repository.register_group(session, tenant.id, jid, name)
        self.invalidate(tenant.instance)

    def invalidate(self, instance: str) -> None:
        self._entries.pop(instance, None)

    async def _load(self, instance: str) -> TenantInfo | None:
        async with self._database.session() as session:
            rows = await repository.tenant_with_groups(session, instance)
        return _build_tenant(instance, rows)

    def _store(self, instance: str, tenant: TenantInfo | None) -> None:
        self._entries[instance] = (time.monotonic(), tenant)
        self._entries.move_to_end(instance)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
