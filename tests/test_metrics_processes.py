"""/metrics under real processes: gunicorn with two workers and an escalation worker sharing one
PROMETHEUS_MULTIPROC_DIR, as the README's production set-up runs them.

Whichever gunicorn worker answers the scrape, it reports the refusals counted by both gunicorn workers and
the Vonage requests made by the escalation worker (another process); the database's figures are the same
from any of them.
"""

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from bench.harness import Stack
from tests.conftest import requires_postgres

pytestmark = [pytest.mark.postgres, requires_postgres, pytest.mark.django_db(transaction=True)]

REFUSED = 24


def scrape(url: str) -> dict[tuple, float]:
    response = requests.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    return {(s.name, *sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def test_it_adds_up_every_gunicorn_worker_and_the_escalation_worker(tmp_path):
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "METRICS_ACCESS": "open", "LOG_LEVEL": "ERROR"}
    with Stack(database_url=database_url, web_workers=2, workers=1, env=env) as stack:
        roster = stack.make_roster("metrics", people=1)
        stack.fire(roster, "metrics across processes")
        stack.wait_for(stack.emulator_requests, lambda found: len(found) >= 1, timeout=20)

        def refused(_: int) -> int:
            # Unsigned: refused with 401. New connections, so both gunicorn workers take some.
            return requests.post(f"{stack.url}/webhooks/status", data=b"{}", timeout=10).status_code

        with ThreadPoolExecutor(4) as pool:
            assert set(pool.map(refused, range(REFUSED))) == {401}

        key = ("oncall_vonage_request_duration_seconds_count", ("path", "/v0.1/dispatch"), ("status", "202"))
        stack.wait_for(lambda: scrape(stack.url).get(key, 0), lambda n: n >= 1, timeout=20)
        for _ in range(8):  # several scrapes, answered by either gunicorn worker
            found = scrape(stack.url)
            assert found[("oncall_webhooks_refused_total", ("endpoint", "status"), ("status", "401"))] == REFUSED
            assert found[key] == 1  # the escalation worker's request, seen from the web processes
            assert found[("oncall_worker_passes_total", ("outcome", "completed"))] > 0
            assert found[("oncall_escalations", ("state", "active"))] == 1
            assert found[("oncall_escalations_fired_total", ("source", "admin"))] == 1
        writers = {path.stem.rsplit("_", 1)[-1] for path in tmp_path.glob("counter_*.db")}
        assert str(stack.workers[0].pid) in writers
        assert writers & {str(pid) for pid in stack.web_worker_pids()}
