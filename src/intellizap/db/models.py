"""ORM models: the frontend's tables, with their legacy column names mapped to Python names here only.

The table and column names are a contract with the frontend (Supabase): keep them exactly, including
the hyphenated and camelCase ones. Everything else in the code base uses the Python attribute names.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from datetime import time as dt_time

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


def _uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(Uuid, primary_key=True, server_default=text("gen_random_uuid()"))


def _created_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


class Tenant(Base):
    """A customer: one WhatsApp number connected through one Evolution instance."""

    __tablename__ = "usuarios"

    id: Mapped[uuid.UUID] = _uuid_pk()
    auth_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    instance: Mapped[str | None] = mapped_column("instancia", String, unique=True)
    summary_time: Mapped[str | None] = mapped_column("horaResumo", String)
    transcription_enabled: Mapped[bool | None] = mapped_column("transcricao_ativa", Boolean)
    openai_key: Mapped[str | None] = mapped_column("key-openai", String)
    monthly_token_quota: Mapped[int | None] = mapped_column("tokens_mes", Integer)
    max_groups: Mapped[int | None] = mapped_column("max_grupos", Integer)
    quota_renewal_day: Mapped[int | None] = mapped_column("dia-renovacao-tokens", Integer)
    timezone: Mapped[str | None] = mapped_column("fuso_horario", String)
    evolution_token: Mapped[str | None] = mapped_column(String)
    members_can_summarize: Mapped[bool] = mapped_column(
        "resumo_membros", Boolean, server_default="false"
    )
    language: Mapped[str | None] = mapped_column("idioma", String)
    mentions_enabled: Mapped[bool] = mapped_column(
        "mencoes_ativas", Boolean, server_default="false"
    )
    owner_digest_enabled: Mapped[bool] = mapped_column(
        "resumo_diario_dono", Boolean, server_default="false"
    )
    owner_number: Mapped[str | None] = mapped_column("numero_dono", String)
    # Kept by a trigger from "horaResumo" and fuso_horario (migration 0005): the tick reads these.
    summary_time_local: Mapped[dt_time | None] = mapped_column("hora_resumo_local", Time)
    effective_timezone: Mapped[str | None] = mapped_column("fuso_efetivo", String)
    created_at: Mapped[datetime] = _created_at()


class Group(Base):
    """A WhatsApp group seen on a tenant's number; ``active`` when the tenant opted in."""

    __tablename__ = "grupos"

    id: Mapped[uuid.UUID] = _uuid_pk()
    jid: Mapped[str] = mapped_column("grupo_id_externo", String)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        "usuario_id", Uuid, ForeignKey("usuarios.id", ondelete="CASCADE")
    )
    active: Mapped[bool | None] = mapped_column("ativo", Boolean)
    summary_enabled: Mapped[bool | None] = mapped_column("resumo_ativo", Boolean)
    transcription_enabled: Mapped[bool | None] = mapped_column("transcricao_ativa", Boolean)
    name: Mapped[str | None] = mapped_column("nome", String)
    summary_destination: Mapped[str] = mapped_column(
        "resumo_destino", String, server_default="grupo"
    )
    language: Mapped[str | None] = mapped_column("idioma", String)
    summary_instructions: Mapped[str | None] = mapped_column("instrucoes_resumo", Text)
    weekly_recap_day: Mapped[int | None] = mapped_column("resumo_semanal_dia", SmallInteger)
    weekly_recap_time: Mapped[dt_time | None] = mapped_column("resumo_semanal_hora", Time)
    created_at: Mapped[datetime] = _created_at()


class Message(Base):
    """One chat line of an active group."""

    __tablename__ = "mensagens"

    id: Mapped[uuid.UUID] = _uuid_pk()
    group_id: Mapped[uuid.UUID] = mapped_column(
        "grupo_id", Uuid, ForeignKey("grupos.id", ondelete="CASCADE")
    )
    text: Mapped[str | None] = mapped_column("mensagem", Text)
    author_name: Mapped[str | None] = mapped_column("nome-autor", String)
    author_number: Mapped[str | None] = mapped_column("numero-autor", String)
    sent_at: Mapped[datetime | None] = mapped_column("data_mensagem", DateTime(timezone=True))
    external_id: Mapped[str | None] = mapped_column("id_externo", String)
    kind: Mapped[str | None] = mapped_column("tipo", String)
    from_me: Mapped[bool] = mapped_column("enviada_por_mim", Boolean, server_default="false")
    edited_at: Mapped[datetime | None] = mapped_column("editada_em", DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column("apagada_em", DateTime(timezone=True))
    transcription_error: Mapped[str | None] = mapped_column("transcricao_erro", Text)
    created_at: Mapped[datetime] = _created_at()


class PendingAudio(Base):
    """A voice note waiting for its transcription job; deleted by the job."""

    __tablename__ = "audios_pendentes"

    message_id: Mapped[uuid.UUID] = mapped_column(
        "mensagem_id", Uuid, ForeignKey("mensagens.id", ondelete="CASCADE"), primary_key=True
    )
    media: Mapped[dict[str, object]] = mapped_column("midia", JSONB)
    data_base64: Mapped[str | None] = mapped_column("base64", Text)
    created_at: Mapped[datetime] = _created_at()


class PendingChange(Base):
    """An edit or delete that arrived before its message (webhooks are not ordered).

    Applied and removed as soon as the message is stored, so out-of-order delivery converges to
    the same final state as in-order delivery.
    """

    __tablename__ = "alteracoes_pendentes"

    group_id: Mapped[uuid.UUID] = mapped_column(
        "grupo_id", Uuid, ForeignKey("grupos.id", ondelete="CASCADE"), primary_key=True
    )
    external_id: Mapped[str] = mapped_column("id_externo", String, primary_key=True)
    text: Mapped[str | None] = mapped_column("mensagem", Text)
    edited_at: Mapped[datetime | None] = mapped_column("editada_em", DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column("apagada_em", DateTime(timezone=True))
    created_at: Mapped[datetime] = _created_at()


class Summary(Base):
    """A group summary, scheduled (once per local day) or on demand."""

    __tablename__ = "resumos"
    # A group of its own account (migrations 0007 and 0011): the one key from a summary to its
    # group, so that PostgREST finds one relationship between the two tables.
    __table_args__ = (
        ForeignKeyConstraint(
            ["grupo_id", "usuario_id"],
            ["grupos.id", "grupos.usuario_id"],
            name="resumos_grupo_da_conta_fkey",
            ondelete="CASCADE",
        ),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    group_id: Mapped[uuid.UUID] = mapped_column("grupo_id", Uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        "usuario_id", Uuid, ForeignKey("usuarios.id", ondelete="CASCADE")
    )
    content: Mapped[str | None] = mapped_column("conteudo", Text)
    message_count: Mapped[int | None] = mapped_column("total_mensagens", Integer)
    # A PostgreSQL enum (status_resumo) in the database; kept as a string here so the code also
    # works on a pre-existing database whose column type differs.
    status: Mapped[str] = mapped_column(String)
    sent_at: Mapped[datetime | None] = mapped_column("data_envio", DateTime(timezone=True))
    period_start: Mapped[datetime | None] = mapped_column("periodo_inicio", DateTime(timezone=True))
    period_end: Mapped[datetime | None] = mapped_column("periodo_fim", DateTime(timezone=True))
    origin: Mapped[str | None] = mapped_column("origem", String)
    local_day: Mapped[date | None] = mapped_column("data_referencia", Date)
    tokens_used: Mapped[int | None] = mapped_column("tokens_usados", Integer)
    error: Mapped[str | None] = mapped_column("erro", Text)
    created_at: Mapped[datetime] = _created_at()


class OwnerDigest(Base):
    """The owner's daily digest across their groups, built from the day's summaries."""

    __tablename__ = "resumos_dono"

    id: Mapped[uuid.UUID] = _uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        "usuario_id", Uuid, ForeignKey("usuarios.id", ondelete="CASCADE")
    )
    local_day: Mapped[date] = mapped_column("data_referencia", Date)
    status: Mapped[str] = mapped_column(String)  # the status_resumo enum, as in ``resumos``
    content: Mapped[str | None] = mapped_column("conteudo", Text)
    group_count: Mapped[int | None] = mapped_column("total_grupos", Integer)
    tokens_used: Mapped[int | None] = mapped_column("tokens_usados", Integer)
    error: Mapped[str | None] = mapped_column("erro", Text)
    sent_at: Mapped[datetime | None] = mapped_column("data_envio", DateTime(timezone=True))
    created_at: Mapped[datetime] = _created_at()


class SentMessage(Base):
    """A message the backend sent (summary, transcript): excluded from later summaries."""

    __tablename__ = "mensagens_enviadas"

    external_id: Mapped[str] = mapped_column("id_externo", String, primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        "usuario_id", Uuid, ForeignKey("usuarios.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = _created_at()


class TokenUsage(Base):
    """One LLM or Whisper call, for metering and quotas."""

    __tablename__ = "uso_tokens"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        "usuario_id", Uuid, ForeignKey("usuarios.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column("tipo", String)
    model: Mapped[str] = mapped_column("modelo", String)
    input_tokens: Mapped[int] = mapped_column("tokens_entrada", Integer, server_default="0")
    output_tokens: Mapped[int] = mapped_column("tokens_saida", Integer, server_default="0")
    audio_seconds: Mapped[float | None] = mapped_column("segundos_audio", Float)
    key_owner: Mapped[str] = mapped_column("chave", String)
    summary_id: Mapped[uuid.UUID | None] = mapped_column(
        "resumo_id", Uuid, ForeignKey("resumos.id", ondelete="SET NULL")
    )
    message_id: Mapped[uuid.UUID | None] = mapped_column(
        "mensagem_id", Uuid, ForeignKey("mensagens.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = _created_at()


class Send(Base):
    """One part of a message the backend sends to WhatsApp, and what became of it (the send
    ledger, ``evolution/send_ledger.py``)."""

    __tablename__ = "envios"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column("chave", String, unique=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        "usuario_id", Uuid, ForeignKey("usuarios.id", ondelete="CASCADE")
    )
    batch: Mapped[str] = mapped_column("lote", String)
    part: Mapped[int] = mapped_column("parte", Integer)
    parts: Mapped[int] = mapped_column("partes", Integer)
    number: Mapped[str] = mapped_column("numero", String)
    chat_jid: Mapped[str] = mapped_column("destino_jid", String)
    text: Mapped[str | None] = mapped_column("texto", Text)
    text_hash: Mapped[str] = mapped_column("texto_hash", String(64))
    quote: Mapped[dict[str, object] | None] = mapped_column("citacao", JSONB)
    on_done: Mapped[dict[str, object] | None] = mapped_column("ao_concluir", JSONB)
    status: Mapped[str] = mapped_column(String, server_default="pendente")
    attempts: Mapped[int] = mapped_column("tentativas", Integer, server_default="0")
    posted_at: Mapped[datetime | None] = mapped_column("postado_em", DateTime(timezone=True))
    answered_at: Mapped[datetime | None] = mapped_column("respondido_em", DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column("concluido_em", DateTime(timezone=True))
    external_id: Mapped[str | None] = mapped_column("id_externo", String)
    error: Mapped[str | None] = mapped_column("erro", Text)
    mentions: Mapped[list[str] | None] = mapped_column("mencoes", ARRAY(Text))
    created_at: Mapped[datetime] = _created_at()


class TokenReservation(Base):
    """Tokens a running LLM call may still spend of its tenant's monthly quota."""

    __tablename__ = "reservas_tokens"

    id: Mapped[uuid.UUID] = _uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        "usuario_id", Uuid, ForeignKey("usuarios.id", ondelete="CASCADE")
    )
    tokens: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column("expira_em", DateTime(timezone=True))
    created_at: Mapped[datetime] = _created_at()
