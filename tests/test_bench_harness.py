"""The benchmark harness still starts a real stack and pages through it (so `make bench` cannot rot).

The stack's processes (emulator, gunicorn, one worker) share pytest-django's test database with this
process, so the roster is made through the ORM here and the pages are seen in the emulator's records.
"""

import pytest
from django.db import connection

from bench.harness import Stack
from escalation.models import Escalation, Page
from tests.conftest import requires_postgres

pytestmark = [pytest.mark.postgres, requires_postgres, pytest.mark.django_db(transaction=True)]


def test_it_fires_three_escalations_through_real_processes():
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    with Stack(database_url=database_url, web_workers=1, workers=1) as stack:
        roster = stack.make_roster("smoke", people=2)
        fired = [stack.fire(roster, f"harness smoke {n}") for n in range(3)]

        requests = stack.wait_for(stack.emulator_requests, lambda found: len(found) >= 3, timeout=20)
        assert sorted(r["status"] for r in requests) == [202, 202, 202]
        # The SMS item, the last: the WhatsApp item before it is a template, as the person never wrote to us.
        texts = {r["body"]["workflow"][-1]["message"]["content"]["text"] for r in requests}
        assert all(any(f"harness smoke {n}" in t for t in texts) for n in range(3))

        # The emulator's status webhooks reach gunicorn, which matches them to the first person's page.
        stack.wait_for(lambda: Page.objects.filter(escalation__in=fired, index=0).exclude(messages=None).count(),
                       lambda n: n == 3, timeout=20)
        assert Escalation.objects.filter(pk__in=[e.pk for e in fired], state="active").count() == 3
        assert stack.workers[0].alive()
