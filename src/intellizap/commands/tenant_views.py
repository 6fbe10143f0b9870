"""How tenants, their groups, usage and summaries are printed: plain aligned text, so the output
reads the same in a terminal, a log and a pipe to ``grep``."""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

import typer

from intellizap.summaries.history import SummaryRecord
from intellizap.tenants.quota import QuotaStatus
from intellizap.tenants.repository import GroupSettings, TenantPlan


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces."""
    cells = [[str(cell) for cell in row] for row in [headers, *rows]]
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def _on(value: bool) -> str:
    return "on" if value else "off"


def _limit(value: int | None) -> str:
    return "no limit" if value is None else f"{value:,}"


def print_plan(tenant: TenantPlan) -> None:
    lines = [
        ("summary time", f"{tenant.summary_time or '(not set: no daily summary)'}"),
        ("time zone", tenant.timezone or "(default)"),
        ("tokens per cycle", _limit(tenant.monthly_token_quota)),
        ("quota renews on day", str(tenant.quota_renewal_day or 1)),
        ("max groups", _limit(tenant.max_groups)),
        ("groups", f"{tenant.active_groups} active of {tenant.groups} known"),
        ("transcription", _on(tenant.transcription_enabled)),
        ("/resumo by members", _on(tenant.members_can_summarize)),
        ("own OpenAI key", "set" if tenant.has_openai_key else "not set (platform key)"),
        ("Evolution token", "set" if tenant.has_evolution_token else "not set (global key)"),
        ("Supabase user", str(tenant.auth_id) if tenant.auth_id else "none"),
    ]
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        typer.echo(f"  {label.ljust(width)}  {value}")


def print_plans(tenants: Sequence[TenantPlan]) -> None:
    typer.echo(
        table(
            ("instance", "summary", "time zone", "tokens/cycle", "groups", "transcription"),
            [
                (
                    tenant.instance,
                    tenant.summary_time or "-",
                    tenant.timezone or "(default)",
                    _limit(tenant.monthly_token_quota),
                    f"{tenant.active_groups}/{_limit(tenant.max_groups)}",
                    _on(tenant.transcription_enabled),
                )
                for tenant in tenants
            ],
        )
    )


def print_usage(usage: QuotaStatus) -> None:
    typer.echo(f"usage since {usage.cycle_start.date().isoformat()} ({usage.zone.key})")
    typer.echo(f"  platform key: {usage.used:,} tokens of {_limit(usage.limit)}")
    typer.echo(f"  own key:      {usage.used_own_key:,} tokens (not counted in the quota)")
    typer.echo(f"  voice notes:  {usage.audio_seconds / 60:,.1f} minutes transcribed")
    if usage.exceeded:
        typer.echo("  quota exceeded: summaries on the platform key are refused")


def print_groups(groups: Sequence[GroupSettings]) -> None:
    if not groups:
        typer.echo("no groups yet: `intellizap grupos sync INSTANCE` or `grupos enable`")
        return
    typer.echo(
        table(
            ("group", "name", "active", "summary", "transcription", "stored"),
            [
                (
                    group.jid,
                    group.name or "-",
                    "yes" if group.active else "no",
                    _on(group.summary_enabled),
                    _on(group.transcription_enabled),
                    "yes"
                    if group.within_limit
                    else ("no: over max_grupos" if group.active else "no"),
                )
                for group in groups
            ],
        )
    )


def print_summaries(summaries: Sequence[SummaryRecord], zone: ZoneInfo) -> None:
    if not summaries:
        typer.echo("no summaries yet")
        return
    typer.echo("last summaries")
    typer.echo(
        table(
            ("created", "group", "origin", "status", "messages", "tokens", "reason"),
            [
                (
                    summary.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                    summary.group_name or summary.group_jid,
                    summary.origin,
                    summary.status,
                    "-" if summary.message_count is None else summary.message_count,
                    summary.tokens_used or 0,
                    (summary.error or "")[:80],
                )
                for summary in summaries
            ],
        )
    )
