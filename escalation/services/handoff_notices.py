"""Hand-off notices as a schedule's admin page shows them: the last ones settled and the next ones coming."""

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from escalation.engine.handoff import coming_handoffs
from escalation.models import HandoffNotice, NoticeState, Person, Schedule


@dataclass(frozen=True)
class ComingNotice:
    person_name: str
    shift_start: datetime
    due_at: datetime
    until: datetime | None


@dataclass(frozen=True)
class ScheduleNotices:
    last: list[HandoffNotice]  # settled, newest first
    coming: list[ComingNotice]  # in order, from who is on call as it stands now


def schedule_handoff_notices(schedule: Schedule, *, now: datetime | None = None, count: int = 3) -> ScheduleNotices:
    now = now or timezone.now()
    last = list(HandoffNotice.objects.filter(schedule=schedule).exclude(state=NoticeState.PENDING)
                .select_related("person").order_by("-due_at", "-id")[:count])
    coming = coming_handoffs(schedule, now, count)
    names = dict(Person.objects.filter(pk__in={h.person for h, _ in coming}).values_list("pk", "name"))
    return ScheduleNotices(last, [ComingNotice(names.get(h.person, f"person #{h.person}"), h.start, due, h.until)
                                  for h, due in coming])
