"""``/api/…``: what the frontend asks of the backend on behalf of a signed-in user.

Authentication is the user's Supabase access token (``Authorization: Bearer …``); a user sees
and acts on the accounts (``usuarios`` rows) whose ``auth_id`` is the token's subject, and
nothing else — another tenant's group or summary is answered exactly like one that does not
exist (404).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, NoReturn

import procrastinate
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from intellizap.db.engine import Database
from intellizap.frontend.auth import InvalidToken, SupabaseTokens, TokenVerificationUnavailable
from intellizap.frontend.repository import (
    Account,
    accounts_of,
    owned_group,
    owned_summary,
)
from intellizap.frontend.schemas import AccountUsage, GroupSyncOut, SummaryOut, UsageOut
from intellizap.logging import get_logger
from intellizap.settings import Settings
from intellizap.summaries.on_demand import on_demand_available_at, request_on_demand
from intellizap.tenants.directory import TenantDirectory
from intellizap.tenants.group_sync import request_group_sync
from intellizap.tenants.quota import account_usage

log = get_logger(__name__)

router = APIRouter(prefix="/api", tags=["frontend"])


@dataclass(frozen=True, slots=True)
class Caller:
    auth_id: uuid.UUID
    accounts: list[Account]


def _refuse(status: int, detail: str, headers: dict[str, str] | None = None) -> NoReturn:
    log.info("frontend API request refused", status=status, reason=detail)
    raise HTTPException(status_code=status, detail=detail, headers=headers)


#: Declares the scheme in the OpenAPI document (the "Authorize" button of /docs); the checks and
#: their messages are ours.
_bearer = HTTPBearer(auto_error=False, description="The signed-in user's Supabase access token")


async def current_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The signed-in user behind the request and their accounts (401/403/503 otherwise)."""
    tokens: SupabaseTokens = request.app.state.supabase_tokens
    if not tokens.configured:
        _refuse(
            503,
            "the frontend API is not configured on this server: set SUPABASE_JWT_SECRET "
            "(legacy JWT secret) and/or SUPABASE_URL (signing keys)",
        )
    token = credentials.credentials.strip() if credentials is not None else ""
    if not token:
        _refuse(
            401,
            "send the user's Supabase access token as `Authorization: Bearer <token>`",
            {"WWW-Authenticate": "Bearer"},
        )
    try:
        auth_id = await tokens.user_id(token)
    except InvalidToken as exc:
        _refuse(401, str(exc), {"WWW-Authenticate": 'Bearer error="invalid_token"'})
    except TokenVerificationUnavailable as exc:
        _refuse(503, str(exc), {"Retry-After": "30"})
    database: Database = request.app.state.database
    accounts = await accounts_of(database, auth_id)
    if not accounts:
        _refuse(403, "this user has no IntelliZap account with a connected WhatsApp instance")
    return Caller(auth_id=auth_id, accounts=accounts)


CurrentCaller = Annotated[Caller, Depends(current_caller)]


@router.post(
    "/grupos/{grupo_id}/resumos",
    status_code=202,
    response_model=SummaryOut,
    responses={
        404: {"description": "No such group among the caller's accounts"},
        409: {"description": "The group's messages are not being stored"},
        429: {"description": "A summary of this group was requested moments ago"},
    },
)
async def request_summary(
    grupo_id: uuid.UUID, caller: CurrentCaller, request: Request, response: Response
) -> SummaryOut:
    """Summarise the group since its last summary now (like `/resumo` typed in the group). The
    summary is written and sent by a worker; poll `GET /api/resumos/{id}` for its status."""
    state = request.app.state
    database: Database = state.database
    settings: Settings = state.settings
    group = await owned_group(database, caller.auth_id, grupo_id)
    if group is None:
        _refuse(404, "no group with this id in your accounts")
    directory: TenantDirectory = state.directory
    tenant = await directory.get(group.instance, max_age=0)  # the user may have just enabled it
    info = tenant.groups.get(group.jid) if tenant is not None else None
    if info is None or not info.ingested:
        _refuse(
            409,
            "this group's messages are not being stored (the group is not active, or it is "
            "beyond your plan's group limit): activate it first",
        )
    queue: procrastinate.App = state.queue
    summary_id = await request_on_demand(
        database, queue, settings, tenant_id=group.tenant_id, group_id=group.id
    )
    if summary_id is None:
        available_at = await on_demand_available_at(database, settings, group.id)
        wait = max(1, math.ceil((available_at - datetime.now(UTC)).total_seconds()))
        _refuse(
            429,
            f"a summary of this group was requested moments ago; try again in {wait} s",
            {"Retry-After": str(wait)},
        )
    log.info("on-demand summary requested", grupo_id=str(group.id), instancia=group.instance)
    summary = await owned_summary(database, caller.auth_id, summary_id)
    assert summary is not None
    response.headers["Location"] = f"/api/resumos/{summary_id}"
    return SummaryOut.model_validate(summary)


@router.get(
    "/resumos/{resumo_id}",
    response_model=SummaryOut,
    responses={404: {"description": "No such summary among the caller's accounts"}},
)
async def get_summary(resumo_id: uuid.UUID, caller: CurrentCaller, request: Request) -> SummaryOut:
    """One summary and its delivery status (`pendente` → `enviado`, or `erro` with the reason)."""
    summary = await owned_summary(request.app.state.database, caller.auth_id, resumo_id)
    if summary is None:
        _refuse(404, "no summary with this id in your accounts")
    return SummaryOut.model_validate(summary)


@router.get("/uso", response_model=UsageOut)
async def get_usage(caller: CurrentCaller, request: Request) -> UsageOut:
    """Token and audio usage of each of the caller's accounts in its current quota cycle."""
    settings: Settings = request.app.state.settings
    now = datetime.now(UTC)
    accounts = []
    for account in caller.accounts:
        status = await account_usage(
            request.app.state.database,
            tenant_id=account.id,
            default_zone=settings.default_timezone,
            now=now,
        )
        accounts.append(
            AccountUsage(
                usuario_id=account.id,
                instancia=account.instance,
                fuso_horario=status.zone.key,
                ciclo_inicio=status.cycle_start,
                tokens_mes=status.limit,
                tokens_plataforma=status.used,
                tokens_chave_propria=status.used_own_key,
                segundos_audio=status.audio_seconds,
                cota_excedida=status.exceeded,
            )
        )
    return UsageOut(contas=accounts)


@router.post("/grupos/sincronizar", status_code=202, response_model=GroupSyncOut)
async def sync_groups(caller: CurrentCaller, request: Request) -> GroupSyncOut:
    """Refresh the caller's group lists (names, new groups) from Evolution, in the background."""
    queue: procrastinate.App = request.app.state.queue
    for account in caller.accounts:
        await request_group_sync(queue, account.id)
    return GroupSyncOut(instancias=[account.instance for account in caller.accounts])
