"""/metrics: access, the exposition's format (prometheus_client's parser and Prometheus' own promtool), and
the figures moving as one escalation is fired, paged and read against the emulator."""

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from escalation.engine.worker import run_forever
from escalation.models import Escalation, Integration, IntegrationFormat
from tests.personas import TONY, make_roster

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "metrics-token-0123456789abcdef"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian package "
                                    "`prometheus`; .ci/run installs it)")


@pytest.fixture
def open_metrics(settings):
    settings.METRICS_ACCESS = "open"


def scrape(client: Client | None = None, **headers) -> str:
    response = (client or Client()).get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return response.content.decode()


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, (label, value), ...): value}, parsed by prometheus_client's own parser."""
    return {(s.name, *sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, *sorted(labels.items())), 0.0)


# --- access ---------------------------------------------------------------------------------------------

def test_it_is_off_by_default(client):
    assert client.get("/metrics").status_code == 404


def test_it_asks_for_the_bearer_token_and_never_takes_the_admin_session(settings, admin_client):
    settings.METRICS_ACCESS, settings.METRICS_TOKEN = "token", TOKEN
    refused = admin_client.get("/metrics")  # a logged-in superuser's session is not the token
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}x").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401
    assert "oncall_escalations" in scrape(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")


@pytest.mark.parametrize(("environment", "error"), [
    ({"METRICS_ACCESS": "public"}, "METRICS_ACCESS='public' is not one of off, open, token."),
    ({"METRICS_ACCESS": "token"}, "METRICS_ACCESS=token needs METRICS_TOKEN of at least 16 characters (it has 0)"),
    ({"METRICS_ACCESS": "token", "METRICS_TOKEN": "short"}, "(it has 5)"),
    ({"METRICS_ACCESS": "open", "METRICS_TOKEN": TOKEN}, "METRICS_TOKEN is set but METRICS_ACCESS=open would"),
    ({"LOG_FORMAT": "xml"}, "LOG_FORMAT='xml' is not one of text, json."),
])
def test_it_refuses_to_start_with_a_wrong_setting_and_says_which(environment, error, tmp_path):
    result = _load_settings(environment, tmp_path)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and error in result.stderr, result.stderr


@pytest.mark.parametrize(("environment", "access"), [
    ({}, "off"), ({"METRICS_TOKEN": TOKEN}, "token"), ({"METRICS_ACCESS": " Open "}, "open"),
])
def test_it_reads_the_access_setting(environment, access, tmp_path):
    result = _load_settings(environment, tmp_path)
    assert result.stdout.strip() == access, result.stderr


def _load_settings(environment: dict, folder: Path) -> subprocess.CompletedProcess:
    """Import the settings in a fresh process with this environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METRICS_", "LOG_FORMAT"))}
    return subprocess.run(
        [sys.executable, "-c", "from oncall import settings; print(settings.METRICS_ACCESS)"],
        env={**env, **environment, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60,
        cwd=folder,
    )


# --- format ---------------------------------------------------------------------------------------------

EXPECTED_FAMILIES = {
    "oncall_escalations", "oncall_escalations_fired", "oncall_escalation_time_to_acknowledge_seconds",
    "oncall_escalation_time_to_first_page_seconds", "oncall_messages", "oncall_webhooks_received",
    "oncall_webhooks_applied", "oncall_webhook_apply_lag_seconds", "oncall_webhooks_pending",
    "oncall_webhooks_pending_oldest_seconds", "oncall_timers_overdue", "oncall_timers_overdue_oldest_seconds",
    "oncall_vonage_request_duration_seconds", "oncall_vonage_request_errors", "oncall_worker_passes",
    "oncall_worker_pass_duration_seconds", "oncall_webhooks_refused", "oncall_alerts_received",
    "oncall_metrics_database_ok",
}


def test_it_exposes_every_metric_in_a_format_prometheus_client_parses(open_metrics):
    families = {f.name: f for f in text_string_to_metric_families(scrape())}
    assert EXPECTED_FAMILIES <= set(families)
    assert families["oncall_escalations"].type == "gauge"
    assert families["oncall_escalations_fired"].type == "counter"
    assert families["oncall_escalation_time_to_acknowledge_seconds"].type == "histogram"
    assert all(families[name].documentation for name in EXPECTED_FAMILIES)


def test_it_reads_the_database_in_seven_queries_however_much_history_there_is(open_metrics, settings,
                                                                             django_assert_num_queries):
    from escalation.services.escalations import escalation_fire

    with django_assert_num_queries(7):
        scrape()
    roster = make_roster(TONY)
    for n in range(5):
        escalation_fire(roster=roster, message=f"alert {n}")
    with django_assert_num_queries(7):
        scrape()


@needs_promtool
def test_it_passes_promtools_own_check(open_metrics, emulator, settings):
    _one_acknowledged_escalation_and_some_of_everything(emulator, settings)
    checked = subprocess.run([PROMTOOL, "check", "metrics"], input=scrape(), capture_output=True, text=True,
                             timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


# --- values ---------------------------------------------------------------------------------------------

@pytest.fixture
def worker() -> Iterator[None]:
    """The real worker loop (run_forever, as run_escalations runs it) in a thread."""
    stop = threading.Event()

    def loop() -> None:
        try:
            run_forever(stop, threads=1)
        finally:
            connection.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=10)


def wait_for(predicate, what: str, timeout: float = 15.0) -> None:
    from emulator.control import wait_for as poll

    try:
        poll(predicate, timeout=timeout)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


@pytest.mark.django_db(transaction=True)
def test_it_follows_one_escalation_from_fire_to_page_to_read(open_metrics, messages_mode, app_emulator, worker):
    roster = make_roster(TONY)
    app_emulator.scenario(TONY[1][0][1], "read", channel="messenger", after=1)
    before = samples(scrape())

    call_command("escalate", roster.name, "Disk full on db1", stdout=open("/dev/null", "w"))
    escalation = Escalation.objects.get()
    wait_for(lambda: Escalation.objects.get(pk=escalation.pk).state != "active", "the read")
    escalation.refresh_from_db()
    assert escalation.state == "acknowledged"
    wait_for(lambda: value(samples(scrape()), "oncall_webhooks_pending") == 0, "every webhook applied")
    after = samples(scrape())

    def moved(name: str, **labels) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert value(after, "oncall_escalations", state="acknowledged") == 1
    assert value(after, "oncall_escalations", state="active") == 0
    assert moved("oncall_escalations_fired_total", source="cli") == 1
    assert moved("oncall_escalations_fired_total", source="admin") == 0
    assert moved("oncall_escalation_time_to_acknowledge_seconds_count") == 1
    assert moved("oncall_escalation_time_to_first_page_seconds_count") == 1
    assert 0 < value(after, "oncall_escalation_time_to_first_page_seconds_sum") < 15
    assert value(after, "oncall_escalation_time_to_acknowledge_seconds_sum") > 0
    messenger = {"api": "messages", "channel": "messenger"}
    assert moved("oncall_messages_total", **messenger, outcome="accepted") == 1
    assert moved("oncall_messages_total", **messenger, outcome="read") == 1
    assert moved("oncall_messages_total", **messenger, outcome="failed") == 0
    assert moved("oncall_vonage_request_duration_seconds_count", path="/v1/messages", status="202") == 1
    assert moved("oncall_vonage_request_errors_total", path="/v1/messages", status="202") == 0
    received = value(after, "oncall_webhooks_received_total", kind="status")
    assert received >= 2  # submitted/delivered/read, as the emulator sends them
    assert value(after, "oncall_webhooks_applied_total", kind="status") == received
    assert value(after, "oncall_webhook_apply_lag_seconds_count") == received
    assert moved("oncall_worker_passes_total", outcome="completed") >= 2
    assert moved("oncall_worker_pass_duration_seconds_count") == moved("oncall_worker_passes_total",
                                                                      outcome="completed")
    assert value(after, "oncall_timers_overdue") == 0


def test_it_reports_overdue_timers_and_pending_webhooks_with_the_oldest_age(open_metrics, settings):
    from datetime import timedelta

    from django.utils import timezone

    from escalation.services.escalations import escalation_fire
    from escalation.services.webhooks import webhook_receive

    roster = make_roster(TONY)
    for age in (5, 90):
        escalation_fire(roster=roster, message="no worker is running", now=timezone.now() - timedelta(seconds=age))
    webhook_receive(kind_hint="status", raw_body=json.dumps(_status_body()).encode(), authorization=None,
                    now=timezone.now() - timedelta(seconds=30))
    found = samples(scrape())
    assert value(found, "oncall_timers_overdue") == 2
    assert 90 <= value(found, "oncall_timers_overdue_oldest_seconds") < 100
    assert value(found, "oncall_webhooks_pending") == 1
    assert 30 <= value(found, "oncall_webhooks_pending_oldest_seconds") < 40


def test_it_counts_refused_webhooks_and_alerts_by_outcome(open_metrics, client):
    before = samples(scrape())
    assert client.post("/webhooks/status", "not json", content_type="application/json").status_code == 400
    assert client.post("/webhooks/inbound", "{}", content_type="application/json").status_code == 400
    integration = Integration.objects.create(name="prometheus", roster=make_roster(TONY),
                                             format=IntegrationFormat.GENERIC)
    url = f"/integrations/{integration.token}/"
    alert = {"status": "firing", "summary": "Disk full", "dedup_key": "disk"}
    for body in (alert, alert, {**alert, "status": "resolved"}, {"nonsense": 1}):
        client.post(url, json.dumps(body), content_type="application/json")
    after = samples(scrape())

    def moved(name: str, **labels) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("oncall_webhooks_refused_total", endpoint="status", status="400") == 1
    assert moved("oncall_webhooks_refused_total", endpoint="inbound", status="400") == 1
    alerts = {outcome: moved("oncall_alerts_received_total", integration="prometheus", outcome=outcome)
              for outcome in ("fired", "noted", "resolved", "refused_400")}
    assert alerts == {"fired": 1, "noted": 1, "resolved": 1, "refused_400": 1}
    assert value(after, "oncall_escalations_fired_total", source="integration") == 1


@pytest.mark.django_db(transaction=True)
def test_it_still_answers_without_the_database_and_says_so(open_metrics, monkeypatch):
    from django.db import connections

    from escalation.ops.recorded import vonage_request_observed

    vonage_request_observed("/v1/messages", 202, 0.0)
    database = connections["default"]

    def refuse(*args, **kwargs):
        raise database.Database.OperationalError("connection refused")

    monkeypatch.setattr(database, "connection", None)
    monkeypatch.setattr(database, "get_new_connection", refuse)
    found = samples(scrape())
    monkeypatch.undo()
    assert value(found, "oncall_metrics_database_ok") == 0
    assert ("oncall_escalations", ("state", "active")) not in found  # no made-up zeros
    assert value(found, "oncall_vonage_request_duration_seconds_count", path="/v1/messages", status="202") >= 1
    assert value(samples(scrape()), "oncall_metrics_database_ok") == 1


def _status_body() -> dict:
    return {"message_uuid": "aaaaaaaa-bbbb-4ccc-8ddd-000000000001", "to": "447700900001", "from": "OnCall",
            "timestamp": "2026-01-01T00:00:00Z", "status": "delivered", "channel": "sms"}


def _one_acknowledged_escalation_and_some_of_everything(emulator, settings) -> None:
    """Rows for every labelled series, so promtool sees buckets, labels and values, not only empty families."""
    from escalation.engine.worker import run_due
    from escalation.ops.recorded import vonage_request_observed
    from escalation.services.escalations import escalation_acknowledge, escalation_fire
    from escalation.services.webhooks import webhook_receive

    settings.ESCALATION_API = "messages"
    escalation = escalation_fire(roster=make_roster(TONY), message="promtool")
    run_due()
    escalation_acknowledge(escalation=escalation, person_index=0, by_name="Tony", how="read")
    webhook_receive(kind_hint="status", raw_body=json.dumps(_status_body()).encode(), authorization=None,
                    now=escalation.created_at)
    run_due()
    vonage_request_observed("/v1/messages", "timeout", 0.0)
    Client().post("/webhooks/status", "not json", content_type="application/json")


def test_it_buckets_durations_as_prometheus_does(open_metrics):
    from datetime import timedelta

    from django.utils import timezone

    from escalation.models import Event, WebhookEvent

    fired = timezone.now() - timedelta(hours=1)
    for n, seconds in enumerate((10, 14.9, 40, 4000)):
        escalation = Escalation.objects.create(roster_name="r", message="m", api="messages", plan={}, state=
                                               "acknowledged", created_at=fired, ended_at=fired + timedelta(
                                                   seconds=seconds))
        Event.objects.create(escalation=escalation, kind="sent", at=fired + timedelta(seconds=0.2 * (n + 1)), text="")
        Event.objects.create(escalation=escalation, kind="sent", at=fired + timedelta(seconds=50), text="")
    for n, lag in enumerate((0.03, 0.3, None)):
        WebhookEvent.objects.create(received_at=fired, kind="status", dedup_key=f"k{n}", body={},
                                    applied_at=fired + timedelta(seconds=lag) if lag is not None else None)
    found = samples(scrape())

    def buckets(name: str, *bounds: str) -> list[float]:
        return [value(found, f"{name}_bucket", le=bound) for bound in bounds]

    ack = "oncall_escalation_time_to_acknowledge_seconds"
    assert buckets(ack, "15.0", "30.0", "60.0", "3600.0", "+Inf") == [2, 2, 3, 3, 4]
    assert value(found, f"{ack}_sum") == pytest.approx(4064.9, abs=0.01)
    first = "oncall_escalation_time_to_first_page_seconds"
    assert buckets(first, "0.25", "0.5", "1.0", "+Inf") == [1, 2, 4, 4]
    assert value(found, f"{first}_sum") == pytest.approx(2.0, abs=0.01)
    lag = "oncall_webhook_apply_lag_seconds"
    assert buckets(lag, "0.05", "0.25", "0.5", "+Inf") == [1, 1, 2, 2]
    assert value(found, f"{lag}_count") == 2
    assert value(found, "oncall_webhooks_received_total", kind="status") == 3
    assert value(found, "oncall_webhooks_applied_total", kind="status") == 2
    assert value(found, "oncall_webhooks_pending") == 1
