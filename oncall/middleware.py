"""Project-wide request hygiene that no single view should have to remember."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest


class RefuseNulInQuery:
    """400 for a query string holding a NUL byte (`?state=%00`).

    PostgreSQL cannot compare text with NUL in it and raises; any admin list filter or search that passes the
    value to a query would answer 500. Forms already refuse NUL (Django's ProhibitNullCharactersValidator);
    the query string is the one input nothing checked.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if any("\x00" in key or "\x00" in value for key, values in request.GET.lists() for value in values):
            return HttpResponseBadRequest("The address holds a NUL character.", content_type="text/plain")
        return self.get_response(request)
