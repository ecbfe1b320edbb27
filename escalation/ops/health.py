"""Liveness and readiness, for a load balancer or Kubernetes' probes.

/healthz: the process answers (no database: a slow database must not get healthy processes restarted).
/healthz/worker: an escalation worker completed a pass in the last 30 s and no timer is overdue by more than 30 s
(the admin banner's facts); 503 with the reason otherwise, so an outside monitor can page someone when our own
paging is down.
/readyz: the database answers `SELECT 1` within READINESS_TIMEOUT (on PostgreSQL a statement timeout, so a
stuck server cannot hold the probe longer than that); 503 with a one-line reason otherwise, so a load
balancer stops sending requests this process could not serve.
"""

import logging

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from escalation.services.alarms import worker_problem

log = logging.getLogger(__name__)

# Per process: the probe runs every second or so, and only a change is worth a log line.
_was_ready = True


def healthz(request: HttpRequest) -> HttpResponse:
    return _plain(200, "ok")


def healthz_worker(request: HttpRequest) -> HttpResponse:
    try:
        problem = worker_problem(now=timezone.now())
    except DatabaseError:
        return _plain(503, "database unavailable")
    return _plain(503, problem) if problem else _plain(200, "ok")


def readyz(request: HttpRequest) -> HttpResponse:
    global _was_ready
    try:
        database_answers()
    except DatabaseError as e:
        if _was_ready:
            log.warning("not ready: the database does not answer: %s", e)
        _was_ready = False
        return _plain(503, "database unavailable")
    if not _was_ready:
        log.warning("ready again: the database answers")
    _was_ready = True
    return _plain(200, "ok")


def database_answers() -> None:
    """`SELECT 1`, bounded by READINESS_TIMEOUT where the database can bound it; raises DatabaseError."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return
    with transaction.atomic(), connection.cursor() as cursor:
        # LOCAL: it ends with this transaction, so the reused connection keeps its usual settings.
        timeout_ms = str(int(settings.READINESS_TIMEOUT * 1000))
        cursor.execute("SELECT set_config('statement_timeout', %s, true)", [timeout_ms])
        cursor.execute("SELECT 1")


def _plain(status: int, text: str) -> HttpResponse:
    response = HttpResponse(text + "\n", status=status, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response
