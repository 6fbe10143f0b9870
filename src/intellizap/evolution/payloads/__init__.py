"""Evolution webhook bodies → typed events. Pure: no I/O, no logging, no state.

Accepts every shape of the Evolution API reference: v1 (1.8.x) and v2 (2.0 – 2.3.6) envelopes and
message data, the three encodings of 64-bit numbers (number, decimal string, ``{low, high}``) in
seconds or milliseconds, PN and LID JIDs with or without a ``:device`` suffix, every content type
of WhatsApp's ``proto.Message`` (docs/message-types.md) through its wrappers, and the
edit/delete events of each version.

Malformed data of a supported event raises :class:`PayloadError`, whose message names the field
and never echoes its value. Unknown events and unknown message types are never errors.

Read in this order: ``events`` (what comes out), ``envelope`` (the body, and which parser each
event goes to), ``messages`` (new messages), ``content`` (which content a message holds and what
each kind is) with ``text`` (what a person reads in it), ``changes`` (edits, deletes, updates),
``instance`` (groups, connection), ``keys`` (chats, ids, authors) and ``values`` (encodings).
"""

from intellizap.evolution.payloads.content import announced_duration
from intellizap.evolution.payloads.envelope import (
    normalise_event_name,
    parse_envelope,
    parse_events,
)
from intellizap.evolution.payloads.events import (
    INVALID_GROUP_JID,
    ChatMessage,
    ConnectionChanged,
    Envelope,
    Event,
    GroupsSeen,
    Ignored,
    MessageDeleted,
    MessageEdited,
    PayloadError,
    Reaction,
)
from intellizap.evolution.payloads.keys import MAX_GROUP_JID_LENGTH, is_group_jid, normalise_jid
from intellizap.evolution.payloads.values import (
    MAX_ID_LENGTH,
    MAX_INSTANCE_LENGTH,
    MAX_TEXT_LENGTH,
)

__all__ = [
    "INVALID_GROUP_JID",
    "MAX_GROUP_JID_LENGTH",
    "MAX_ID_LENGTH",
    "MAX_INSTANCE_LENGTH",
    "MAX_TEXT_LENGTH",
    "ChatMessage",
    "ConnectionChanged",
    "Envelope",
    "Event",
    "GroupsSeen",
    "Ignored",
    "MessageDeleted",
    "MessageEdited",
    "PayloadError",
    "Reaction",
    "announced_duration",
    "is_group_jid",
    "normalise_event_name",
    "normalise_jid",
    "parse_envelope",
    "parse_events",
]
