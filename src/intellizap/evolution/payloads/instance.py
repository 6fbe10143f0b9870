"""What Evolution says about the instance itself: its groups and its connection."""

from __future__ import annotations

from intellizap.evolution.payloads.events import ConnectionChanged, GroupsSeen
from intellizap.evolution.payloads.keys import is_group_jid, normalise_jid
from intellizap.evolution.payloads.values import (
    MAX_STATE_LENGTH,
    MISSING,
    name,
    require_object,
    require_text,
)


def groups_event(data: object) -> GroupsSeen:
    """``groups.upsert``/``groups.update`` (arrays) and ``group-participants.update`` (an
    object with ``id``). Items without a group id are skipped; ids ending in ``@g.us`` that are
    not group JIDs are counted in ``invalid``."""
    items = data if isinstance(data, list) else [data]
    seen: dict[str, str | None] = {}
    invalid = 0
    for item in items:
        if not isinstance(item, dict):
            continue
        group_id = item.get("id")
        if not isinstance(group_id, str):
            continue
        jid = normalise_jid(group_id)
        if not is_group_jid(jid):
            invalid += jid.endswith("@g.us")
            continue
        if seen.get(jid) is None:
            seen[jid] = name(item.get("subject"))
    return GroupsSeen(tuple(seen.items()), invalid)


def connection_event(data: object) -> ConnectionChanged:
    connection = require_object(data, "data")
    state = require_text(connection.get("state", MISSING), "data.state", MAX_STATE_LENGTH)
    return ConnectionChanged(state.lower())
