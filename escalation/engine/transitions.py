"""The ways an escalation ends: acknowledged, reached, cancelled. Each is one compare-and-set on the
escalation's state, so of two that race (a read webhook and an admin's cancel) exactly one wins.

The engine calls these when a webhook meets a condition (engine/apply.py); the services
`escalation_acknowledge` and `escalation_cancel` are their public names for the admin, the CLI and the
integrations.
"""

from datetime import datetime
from typing import Any

from django.db import transaction

from escalation.engine.events import record_event
from escalation.models import Alert, Escalation, EscalationState, EventKind, Page, PageState, Person


def end(escalation_id: int, state: str, *, now: datetime, outcome: str, **fields: Any) -> bool:
    """Compare-and-set an active escalation into a final state; False if it had already ended."""
    # savepoint=False here and below: inside a caller's transaction these writes stand or fall with it,
    # so a savepoint would only cost two more round trips on the webhook path.
    with transaction.atomic(savepoint=False):
        ended = Escalation.objects.filter(pk=escalation_id, state=EscalationState.ACTIVE).update(
            state=state, ended_at=now, next_action_at=None, outcome=outcome[:300], **fields
        )
        if ended:
            Page.objects.filter(escalation_id=escalation_id, state=PageState.ACTIVE).update(
                state=PageState.STOPPED, ended_at=now, outcome=outcome[:300]
            )
    return bool(ended)


def acknowledge(*, escalation: Escalation | int, person_index: int | None, by_name: str, how: str, now: datetime,
                reached: bool = False) -> bool:
    """Stop paging anyone for this escalation, for good: acknowledged by a person (a read, a reply, an admin on
    their behalf) or, with `reached`, only a message that arrived on a phone (a `delivered` condition met).

    `person_index` is the person's position in the plan (None for someone outside it). False when the
    escalation had already ended.
    """
    escalation = escalation if isinstance(escalation, Escalation) else Escalation.objects.get(pk=escalation)
    person_id = None
    if person_index is not None:
        person_id = escalation.plan["people"][person_index]["person_id"]
    state, page_state, kind = ((EscalationState.REACHED, PageState.REACHED, EventKind.REACHED) if reached else
                               (EscalationState.ACKNOWLEDGED, PageState.ACKNOWLEDGED, EventKind.ACKNOWLEDGED))
    with transaction.atomic(savepoint=False):
        credited_page = None
        if person_index is not None:
            credited_page = (Page.objects.filter(escalation=escalation, index=person_index)
                             .order_by("-round").first())
        ended = end(
            escalation.pk, state, now=now, outcome=f"{by_name}: {how}",
            acknowledged_by_id=person_id if Person.objects.filter(pk=person_id).exists() else None,
            acknowledged_by_name=by_name,
        )
        if not ended:
            return False
        if not reached:
            # Someone owns the alert now. A delivery alone owns nothing: a repeat of the alert pages again.
            Alert.objects.owned_through(escalation.pk, by_name=by_name, now=now)
        if credited_page is not None:
            Page.objects.filter(pk=credited_page.pk).update(state=page_state, ended_at=now, outcome=how[:300])
        text = f"Reached {by_name}: {how}; nobody has acknowledged." if reached else f"Acknowledged: {by_name} {how}."
        record_event(escalation, kind, text, at=now, page=credited_page)
    return True


def cancel(*, escalation: Escalation | int, by_name: str, reason: str, now: datetime) -> bool:
    """Stop an active escalation like an acknowledgement, but credit nobody. False if it had ended."""
    escalation_id = escalation if isinstance(escalation, int) else escalation.pk
    why = f"cancelled by {by_name}" + (f": {reason}" if reason else "")
    with transaction.atomic(savepoint=False):
        if not end(escalation_id, EscalationState.CANCELLED, now=now, outcome=why):
            return False
        # Whoever stopped the paging owns the alert it paged for (a resolve marks it resolved first).
        Alert.objects.owned_through(escalation_id, by_name=by_name, now=now)
        record_event(escalation_id, EventKind.CANCELLED, why[0].upper() + why[1:] + ".", at=now)
    return True
