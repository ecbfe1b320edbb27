"""`{% person_recent_pages person %}`: on a person's admin page, their recent pages and how they responded."""

from django import template

from escalation.models import Page, PageState, Person
from escalation.timeline import format_duration

register = template.Library()

RECENT_PAGES = 20


@register.inclusion_tag("admin/escalation/escalation/person_pages.html")
def person_recent_pages(person: Person | None) -> dict:
    if person is None or person.pk is None:
        return {"person": None, "rows": []}
    pages = (
        Page.objects.filter(person=person).select_related("escalation")
        # The escalation's frozen plan can be large; the table needs only a few of its columns.
        .only("round", "state", "started_at", "ended_at", "outcome", "escalation__roster_name",
              "escalation__state", "escalation__message", "escalation__created_at")
        .order_by("-started_at", "-id")[:RECENT_PAGES]
    )
    rows = [
        {
            "page": page,
            "escalation": page.escalation,
            "took": format_duration(page.ended_at - page.started_at)
            if page.state in (PageState.REACHED, PageState.ACKNOWLEDGED) and page.ended_at else "",
        }
        for page in pages
    ]
    return {"person": person, "rows": rows, "limit": RECENT_PAGES}
