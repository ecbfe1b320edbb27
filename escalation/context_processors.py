"""Template context for every page."""

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from escalation.services.alarms import current_alarms


def demo(request: HttpRequest) -> dict[str, str]:
    # Set only by `make run`: the admin then links to the emulator's phones page.
    return {"demo_phones_url": settings.DEMO_PHONES_URL}


def alarms(request: HttpRequest) -> dict[str, object]:
    """The red banner's alarms, for staff only, and queried only if a template shows them."""
    user = getattr(request, "user", None)
    if user is None or not (user.is_authenticated and user.is_staff):
        return {}
    return {"escalation_alarms": SimpleLazyObject(lambda: current_alarms(now=timezone.now()))}
