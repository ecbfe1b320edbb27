from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

TABLE = "bench_bare_webhook"
CREATE_TABLE = f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigserial PRIMARY KEY, received_at timestamptz NOT NULL, " \
               "body jsonb NOT NULL)"


@csrf_exempt
def store_raw(request: HttpRequest) -> HttpResponse:
    """No signature check, no parsing, no matching: one INSERT of the body as it came, then 204."""
    with connection.cursor() as cursor:
        # The time from Python, as the app's intake takes it: SQLite has no now().
        cursor.execute(f"INSERT INTO {TABLE} (received_at, body) VALUES (%s, %s)", [timezone.now(),
                                                                                  request.body.decode()])
    return HttpResponse(status=204)
