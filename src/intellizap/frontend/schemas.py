"""What the frontend API returns. Field names follow the database columns the frontend already
knows (``resumos``, ``uso_tokens``), so one vocabulary serves both."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel


class SummaryOut(BaseModel):
    id: uuid.UUID
    grupo_id: uuid.UUID
    status: Literal["pendente", "enviado", "erro"]
    origem: Literal["agendado", "sob_demanda"] | None
    conteudo: str | None
    total_mensagens: int | None
    tokens_usados: int | None
    erro: str | None
    periodo_inicio: datetime | None
    periodo_fim: datetime | None
    data_envio: datetime | None
    created_at: datetime


class AccountUsage(BaseModel):
    usuario_id: uuid.UUID
    instancia: str
    fuso_horario: str
    ciclo_inicio: datetime
    """Start of the current quota cycle (``dia-renovacao-tokens``, local midnight)."""
    tokens_mes: int | None
    """The monthly quota on the platform key; null means no limit."""
    tokens_plataforma: int
    tokens_chave_propria: int
    """Tokens spent on the customer's own OpenAI key (not counted in the quota)."""
    segundos_audio: float
    cota_excedida: bool


class UsageOut(BaseModel):
    contas: list[AccountUsage]


class GroupSyncOut(BaseModel):
    instancias: list[str]
    """The instances whose group lists will be refreshed from Evolution."""
