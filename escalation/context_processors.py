"""Template context for every page."""

from django.conf import settings
from django.http import HttpRequest


def demo(request: HttpRequest) -> dict[str, str]:
    # Set only by `make run`: the admin then links to the emulator's phones page.
    return {"demo_phones_url": settings.DEMO_PHONES_URL}
