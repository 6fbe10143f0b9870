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
from intellizap.frontend.schemas import (
    AccountUsage,
    GroupSyncOut,
    PreviewIn,
    PreviewOut,
    SummaryOut,
    UsageOut,
)
from intellizap.llm import (
    InvalidApiKey,
    KeyOwner,
    Llm,
    LlmError,
    LlmUnavailable,
    OutOfCredit,
    RateLimited,
)
from intellizap.logging import get_logger
from intellizap.settings import Settings
from intellizap.summaries.mentions import apply_mentions
from intellizap.summaries.on_demand import on_demand_available_at, request_on_demand
from intellizap.summaries.preview import (
    InvalidPreviewSettings,
    NothingToSummarize,
    Trial,
    group_row,
    preview,
)
from intellizap.tenants.directory import TenantDirectory
from intellizap.tenants.group_sync import request_group_sync
from intellizap.tenants.quota import QuotaBusy, QuotaRefused, account_usage

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


@router.post(
    "/grupos/{grupo_id}/resumos/previa",
    response_model=PreviewOut,
    responses={
        402: {"description": "The account's monthly token quota does not cover the preview"},
        404: {"description": "No such group among the caller's accounts"},
        409: {"description": "Too few messages since the last summary"},
        422: {"description": "A setting to try is invalid, or the account's own key was refused"},
        502: {"description": "The platform's AI provider refused the call"},
        503: {"description": "The AI provider is busy or unavailable: retry later"},
    },
)
async def preview_summary(
    grupo_id: uuid.UUID, body: PreviewIn, caller: CurrentCaller, request: Request
) -> PreviewOut:
    """The summary the group would get now, with the settings in the body tried instead of its
    saved ones (`idioma`, `instrucoes_resumo`, `resumo_destino`, `mencoes_ativas`). Nothing is
    stored or sent; the LLM calls are metered and count against the account's quota."""
    state = request.app.state
    database: Database = state.database
    group = await owned_group(database, caller.auth_id, grupo_id)
    if group is None:
        _refuse(404, "no group with this id in your accounts")
    try:
        trial = Trial(
            language=body.idioma,
            instructions=body.instrucoes_resumo,
            destination=body.resumo_destino,
            mentions=body.mencoes_ativas,
        ).checked()
    except InvalidPreviewSettings as exc:
        _refuse(422, str(exc))
    row = await group_row(database, group.id, trial)
    assert row is not None  # owned just above
    llm: Llm = state.llm
    try:
        result = await preview(database, llm, state.settings, row, now=datetime.now(UTC))
    except NothingToSummarize as exc:
        _refuse(409, str(exc))
    except QuotaRefused:
        _refuse(402, "the account's monthly token quota does not cover this preview")
    except QuotaBusy:
        _refuse(
            503, "the account's quota is held by summaries being written", {"Retry-After": "30"}
        )
    except LlmError as exc:
        _refuse_llm(exc)
    options = result.plan.options
    participants = options.participants
    mentioned = apply_mentions(result.text, participants).numbers if participants else []
    log.info("summary preview written", grupo_id=str(group.id), chamadas=result.calls)
    return PreviewOut(
        conteudo=result.text,
        idioma=options.style.language,
        resumo_destino=options.destination.kind,
        mencionados=mentioned,
        total_mensagens=len(result.plan.lines),
        periodo_inicio=result.plan.start,
        periodo_fim=result.plan.end,
        chamadas=result.calls,
        tokens_entrada=result.input_tokens,
        tokens_saida=result.output_tokens,
    )


def _refuse_llm(exc: LlmError) -> NoReturn:
    """An LLM failure as the frontend should show it: who has to act, and when to retry."""
    if isinstance(exc, RateLimited | LlmUnavailable):
        wait = max(1, math.ceil(getattr(exc, "retry_after", None) or 30))
        _refuse(
            503,
            "the AI provider is busy or unavailable; try again later",
            {"Retry-After": str(wait)},
        )
    if exc.owner is KeyOwner.OWN and isinstance(exc, InvalidApiKey | OutOfCredit):
        _refuse(422, "the account's own OpenAI key was refused or has no credit: update it")
    log.error("the platform's AI key cannot be used", error=type(exc).__name__)
    _refuse(502, "the platform's AI provider refused the call; the operator has to fix it")
