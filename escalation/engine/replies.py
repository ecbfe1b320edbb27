"""Which escalation a person's reply answers.

A person may be paged by several unrelated escalations at once; one reply must acknowledge one of them, never
all. The rule, in order:

1. A reply that is just a number ("7", "#7", "ack 7") names escalation #7, if #7 is active and paging this
   person: the pages say so when several escalations are paging the person (`personal_text`).
2. Otherwise it answers the latest message sent to that address on that channel before the reply reached
   us, like a reply on a phone answers the conversation's last message. If that escalation has ended, the
   reply acknowledges no other that was paging the person then: acknowledging an incident the person did
   not mean would stop its paging, when an unanswered page only pages on.
3. With no such message (Dispatch items report their first status only after they are sent, and a person
   may answer on a channel we did not use), or only one of an escalation that had ended before the person
   was paged again, it answers the person's latest page among the escalations running when it arrived.

Only reads here; applying the reply (apply.py) locks and acknowledges.
"""

import re
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from escalation.models import Channel, Escalation, EscalationState, Message, Page

# "7", "#7", "ack 7", "ACK #7", "acknowledge 7.", surrounded by spaces: the whole reply names the number.
NAMED_NUMBER = re.compile(r"\s*(?:ack(?:nowledge)?\s*)?#?\s*(\d{1,18})\s*[.!]?\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Answered:
    page: Page  # the person's page in the escalation the reply answers (its escalation selected with it)
    not_before: datetime  # when what the reply answers was sent: no reply can precede it
    note: str = ""  # why a number the reply named was not followed


def named_number(text: str) -> int | None:
    match = NAMED_NUMBER.fullmatch(text)
    return int(match.group(1)) if match else None


def answered_page(*, channel_type: str, address: str, text: str, received_at: datetime) -> Answered | None:
    """The page whose escalation a reply from (channel_type, address) answers; None when it answers none."""
    people = set(Channel.objects.filter(type=channel_type, address=address).values_list("person_id", flat=True))
    number, note = named_number(text), ""
    if number is not None:
        named = (Page.objects.filter(escalation_id=number, escalation__state=EscalationState.ACTIVE)
                 .filter(Q(person_id__in=people) | Q(messages__channel_type=channel_type, messages__to_address=address))
                 .select_related("escalation").order_by("-round", "-pk").first())
        if named is not None:
            return Answered(named, named.started_at)
        note = f"#{number} is not an active escalation paging this sender, so the reply answers the latest page"
    latest = (Message.objects.filter(channel_type=channel_type, to_address=address, sent_at__lte=received_at)
              .select_related("page__escalation").order_by("-sent_at", "-pk").first())
    if latest is not None and latest.page.person_id is not None:
        people.add(latest.page.person_id)
    # Pages of escalations still running when the reply reached us (one acknowledged since, while the reply
    # waited for a worker, is still the one it answers).
    paged_since = (Page.objects.filter(person_id__in=people, started_at__lte=received_at)
                   .filter(Q(escalation__ended_at__isnull=True) | Q(escalation__ended_at__gte=received_at))
                   .select_related("escalation").order_by("-started_at", "-pk").first())
    if paged_since is not None and (latest is None or (_ended_before(latest.page.escalation, received_at)
                                                        and paged_since.started_at > latest.sent_at)):
        return Answered(paged_since, paged_since.started_at, note)
    if latest is not None:
        return Answered(latest.page, latest.sent_at, note)
    return None


def _ended_before(escalation: Escalation, moment: datetime) -> bool:
    return escalation.ended_at is not None and escalation.ended_at < moment
