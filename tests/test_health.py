"""/healthz and /readyz: plain, fast, no login, answered before the rest of the middleware."""

import time
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.test import Client
from django.utils import timezone

from escalation.engine.heartbeat import Heartbeat
from escalation.models import Escalation, WorkerHeartbeat
from tests.conftest import requires_postgres

pytestmark = pytest.mark.django_db


def test_it_answers_liveness_without_touching_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert response["Content-Type"].startswith("text/plain")
    assert response["Cache-Control"] == "no-store"


def test_it_answers_readiness_with_one_look_at_the_database(client):
    response = client.get("/readyz")
    assert (response.status_code, response.content) == (200, b"ok\n")


def test_it_answers_a_probe_from_any_host_over_plain_http_without_a_session(settings):
    # A kubelet or load balancer probes the pod's address: ALLOWED_HOSTS would refuse it with 400 and
    # SECURE_SSL_REDIRECT would answer 301. The probes are answered before either, and set no cookie.
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["oncall.example.com"]
    client = Client(HTTP_HOST="10.1.2.3:8000")
    for path in ("/healthz", "/readyz", "/healthz/", "/readyz/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert not response.cookies
    assert client.get("/admin/").status_code == 400  # everything else still goes through the checks


def test_it_answers_head_and_refuses_other_methods(client):
    assert client.head("/healthz").status_code == 200
    response = client.post("/readyz")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


@pytest.mark.django_db(transaction=True)
def test_it_answers_503_with_a_one_line_reason_when_the_database_does_not_answer(client, monkeypatch, caplog):
    database = connections["default"]

    def refuse(*args, **kwargs):
        raise database.Database.OperationalError("connection refused")

    # As when the database is down: the next request has to connect, and connecting fails.
    monkeypatch.setattr(database, "connection", None)
    monkeypatch.setattr(database, "get_new_connection", refuse)
    for _ in range(3):
        response = client.get("/readyz")
        assert (response.status_code, response.content) == (503, b"database unavailable\n")
    monkeypatch.undo()
    assert client.get("/readyz").status_code == 200
    # One line when it stops being ready and one when it is back, not one per probe.
    lines = [r.getMessage() for r in caplog.records if r.name == "escalation.ops.health"]
    assert lines == ["not ready: the database does not answer: connection refused",
                     "ready again: the database answers"]
    assert client.get("/healthz").status_code == 200  # liveness never depended on it


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_it_bounds_the_readiness_query_with_a_statement_timeout(settings, monkeypatch):
    # A database that takes longer than READINESS_TIMEOUT is not ready: PostgreSQL cancels the statement
    # itself instead of leaving the probe (and a gunicorn worker) waiting.
    settings.READINESS_TIMEOUT = 0.05
    real_execute = connection.cursor().__class__.execute

    def slow(self, sql, params=None):
        if sql == "SELECT 1":
            sql = "SELECT pg_sleep(1)"
        return real_execute(self, sql, params)

    monkeypatch.setattr(connection.cursor().__class__, "execute", slow)
    started = time.monotonic()
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert time.monotonic() - started < 0.5  # cancelled by the timeout, not waited out
    monkeypatch.undo()
    assert Client().get("/readyz").status_code == 200
    with connection.cursor() as cursor:  # the timeout ended with the probe's transaction
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "0"


def test_it_reports_the_worker_unhealthy_until_one_has_run_and_again_when_it_falls_silent(client):
    assert client.get("/healthz/worker").content == b"No escalation worker has ever run.\n"
    started = timezone.now()
    Heartbeat("worker-a").beat(started)
    response = client.get("/healthz/worker")
    assert (response.status_code, response.content) == (200, b"ok\n")
    WorkerHeartbeat.objects.update(last_pass_at=started - timedelta(seconds=45))
    response = client.get("/healthz/worker")
    assert response.status_code == 503
    assert response.content.startswith(b"No escalation worker has run since ")


def test_it_reports_the_worker_unhealthy_while_a_timer_is_overdue(client):
    now = timezone.now()
    Heartbeat("worker-a").beat(now)
    Escalation.objects.create(roster_name="Primary", message="disk full", api="messages", plan={"people": []},
                              created_at=now, next_action_at=now - timedelta(seconds=40))
    response = client.get("/healthz/worker")
    assert response.status_code == 503
    assert b"overdue" in response.content and response.content.count(b"\n") == 1
