"""What the frontend API returns. Field names follow the database columns the frontend already
knows (``resumos``, ``uso_tokens``), so one vocabulary serves both."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SummaryOut(BaseModel):
    id: uuid.UUID
    grupo_id: uuid.UUID
    status: Literal["pendente", "enviado", "erro"]
    origem: Literal["agendado", "sob_demanda", "semanal"] | None
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


class PreviewIn(BaseModel):
    """Settings to try on the preview instead of the group's saved ones (omitted: the saved
    value). Nothing is saved: the frontend writes the columns once the user is happy."""

    model_config = ConfigDict(extra="forbid")

    idioma: str | None = Field(default=None, max_length=16, examples=["en", "auto"])
    instrucoes_resumo: str | None = Field(default=None, max_length=500)
    resumo_destino: Literal["grupo", "dono", "ambos"] | None = None
    mencoes_ativas: bool | None = None


class PreviewOut(BaseModel):
    conteudo: str
    """The summary's text as the model wrote it (``@Nome`` where a person would be mentioned)."""
    idioma: str
    """The language it was written in (chosen, or detected from the chat)."""
    resumo_destino: Literal["grupo", "dono", "ambos"]
    mencionados: list[str]
    """The numbers the group's message would notify (mentions on and sent to the group)."""
    total_mensagens: int
    periodo_inicio: datetime
    periodo_fim: datetime
    chamadas: int
    tokens_entrada: int
    tokens_saida: int
