"""The demo's phones page asks which escalation each message it shows belongs to, and whether it has ended."""

import uuid

from escalation.models import Message

MAX_LOOKUP = 1000


def message_escalations(message_uuids: list[str]) -> dict[str, dict]:
    """{message_uuid: {"escalation": id, "state": state}} for the messages of ours among these uuids."""
    wanted = [u for u in message_uuids[:MAX_LOOKUP] if isinstance(u, str) and len(u) <= 36]
    rows = (Message.objects.filter(message_uuid__in=_valid_uuids(wanted)).order_by()
            .values_list("message_uuid", "page__escalation_id", "page__escalation__state"))
    return {str(uuid): {"escalation": escalation_id, "state": state} for uuid, escalation_id, state in rows}


def _valid_uuids(values: list[str]) -> list[str]:
    valid = []
    for value in values:
        try:
            valid.append(str(uuid.UUID(value)))
        except ValueError:
            continue  # not one of ours; a bad uuid must not make the whole lookup fail
    return valid
