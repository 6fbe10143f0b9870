"""Group metadata sync: Evolution's ``fetchAllGroups`` → ``grupos`` (names; new groups inactive).

Triggered by ``connection.update`` (open), the group events, once a day for every tenant, and by
``intellizap grupos sync INSTANCE``. ``groups.update`` is rarely delivered by Evolution (its event
name mismatch, reference §1.3), so re-fetching is the reliable way to learn a renamed group.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import procrastinate

from intellizap import jobs
from intellizap.db.engine import Database
from intellizap.evolution.client import EvolutionClient, GroupMetadata
from intellizap.evolution.payloads import is_group_jid, normalise_jid
from intellizap.logging import get_logger
from intellizap.tenants import directory_repository as repository
from intellizap.tenants import repository as tenant_repository
from intellizap.tenants.repository import TenantAccount, tenant_by_id

log = get_logger(__name__)

SYNC_TASK = "sync_groups"
_BATCH = 500


@dataclass(frozen=True, slots=True)
class SyncResult:
    groups: int
    new: int


def valid_groups(groups: Sequence[GroupMetadata]) -> list[GroupMetadata]:
    """The groups whose id is a group JID (normalised, each once); the others are logged and
    left out, so no ``grupos`` row is ever made of whatever else Evolution returned."""
    valid: dict[str, GroupMetadata] = {}
    for group in groups:
        jid = normalise_jid(group.jid)
        if is_group_jid(jid) and (jid not in valid or valid[jid].subject is None):
            valid[jid] = GroupMetadata(jid=jid, subject=group.subject)
    if len(valid) < len(groups):
        log.warning(
            "fetchAllGroups returned ids that are not group JIDs (digits[-digits]@g.us) or "
            "repeated ones: left out",
            ignorados=len(groups) - len(valid),
        )
    return list(valid.values())


async def store_groups(
    database: Database,
    tenant_id: uuid.UUID,
    groups: Sequence[GroupMetadata],
    progress: Callable[[int], None] | None = None,
) -> SyncResult:
    """Upsert ``groups`` (valid group JIDs only) into ``grupos``, new ones inactive."""
    groups = valid_groups(groups)
    new = 0
    for start in range(0, len(groups), _BATCH):
        batch = groups[start : start + _BATCH]
        async with database.session() as session:
            new += await repository.upsert_groups(
                session,
                tenant_id,
                jids=[group.jid for group in batch],
                names=[group.subject for group in batch],
            )
        if progress:
            progress(len(batch))
    return SyncResult(groups=len(groups), new=new)


async def sync_tenant_groups(
    database: Database,
    evolution: EvolutionClient,
    tenant: TenantAccount,
    progress: Callable[[int], None] | None = None,
) -> SyncResult:
    groups = await evolution.fetch_all_groups(tenant.instance, token=tenant.evolution_token)
    result = await store_groups(database, tenant.id, groups, progress)
    log.info("groups synced", instancia=tenant.instance, grupos=result.groups, novos=result.new)
    return result


async def request_group_sync(queue: procrastinate.App, tenant_id: uuid.UUID) -> None:
    """Queue a sync of the tenant's groups (a no-op while one is already waiting)."""
    await jobs.defer(
        queue,
        SYNC_TASK,
        queueing_lock=f"group-sync:{tenant_id}",
        args={"tenant_id": str(tenant_id)},
    )


@jobs.blueprint.task(
    name=SYNC_TASK, queue="sync", retry=jobs.Backoff(max_attempts=5), pass_context=True
)
async def sync_groups(job_context: procrastinate.JobContext, *, tenant_id: str) -> int:
    context = jobs.context_of(job_context)
    tenant = await tenant_by_id(context.database, uuid.UUID(tenant_id))
    result = await sync_tenant_groups(context.database, context.evolution, tenant)
    return result.new


@jobs.blueprint.periodic(cron="17 4 * * *", periodic_id="daily-group-sync")
@jobs.blueprint.task(name="sync_all_groups", queue="sync", pass_context=True)
async def sync_all_groups(job_context: procrastinate.JobContext, timestamp: int) -> int:
    """Once a day (04:17 UTC, a quiet hour in Brazil): one sync job per tenant with an instance."""
    context = jobs.context_of(job_context)
    async with context.database.session() as session:
        tenant_ids = await tenant_repository.tenant_ids_with_instance(session)
    for tenant_id in tenant_ids:
        await request_group_sync(job_context.app, tenant_id)
    return len(tenant_ids)
