"""Slow clients cannot stall the webhooks (issue 13 §7).

Reproduced: two connections that send their headers with `Content-Length: 1000` and one byte of body hold
both sync gunicorn workers, and a valid signed webhook waited 31.6 s (gunicorn's 30 s worker timeout).
The production recipe puts nginx in front (docs/deploy/nginx.conf), which reads each request whole before
gunicorn sees it. Both halves run here against real processes: gunicorn with 2 sync workers alone stalls;
the same gunicorn behind the shipped nginx config answers a signed webhook and an admin page at once with
50 slow clients open.

No sleeping: the stall is shown by a request that gets no answer within ANSWER_SECONDS while the slow
clients are connected (gunicorn would hold it until its 30 s timeout), and the fix by the same request
answered within it.
"""

import json
import os
import socket
import ssl
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.utils import timezone

from escalation.models import WebhookEvent
from tests.conftest import TEST_SIGNATURE_SECRET
from tests.serving import NGINX, database_url, free_port, gunicorn, nginx
from tests.signing import vonage_signature

# Far above what an answer takes on this (shared, 2-core) machine, far below gunicorn's 30 s stall.
ANSWER_SECONDS = 5.0
SLOW_CLIENTS_BEHIND_NGINX = 50

pytestmark = pytest.mark.django_db(transaction=True)  # gunicorn writes to the test database: flushed after

requires_nginx = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (Debian: apt-get install nginx; .ci/run installs it)")


@pytest.fixture
def app(tmp_path, vonage_keys) -> Iterator[str]:
    """gunicorn, 2 sync workers, on the test database, checking Vonage's signatures."""
    env = {**os.environ, "DATABASE_URL": database_url(settings.DATABASES["default"]),
           "VONAGE_SIGNATURE_SECRET": TEST_SIGNATURE_SECRET, "VONAGE_PRIVATE_KEY_PATH": vonage_keys["private_path"],
           "VONAGE_APPLICATION_ID": "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", "LOG_LEVEL": "WARNING"}
    port = free_port()
    with gunicorn(port, tmp_path, env, workers=2) as url:
        yield url


def signed_webhook() -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"message_uuid": str(uuid.uuid4()), "to": "447700900009", "from": "OnCall",
                       "timestamp": "2026-03-01T10:00:05Z", "status": "delivered", "channel": "sms"}).encode()
    return body, {"Content-Type": "application/json", "Authorization": vonage_signature(body, now=timezone.now())}


def timed(method: str, url: str, **kwargs) -> tuple[int | None, float]:
    """(status, seconds), or (None, seconds) when no answer came within ANSWER_SECONDS."""
    started = time.monotonic()
    try:
        status = requests.request(method, url, timeout=ANSWER_SECONDS, allow_redirects=False, **kwargs).status_code
    except requests.Timeout:
        status = None
    return status, time.monotonic() - started


@contextmanager
def slow_clients(url: str, count: int, certificate: Path | None = None) -> Iterator[None]:
    """`count` connections that send a webhook's headers promising 1000 bytes, then one byte, then nothing."""
    host, port = url.split("://")[1].split(":")
    context = ssl.create_default_context(cafile=str(certificate)) if certificate else None
    connections = []
    try:
        for _ in range(count):
            connection = socket.create_connection((host, int(port)), timeout=ANSWER_SECONDS)
            if context is not None:
                connection = context.wrap_socket(connection, server_hostname=host)
            connection.sendall(f"POST /webhooks/status HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                               "Content-Length: 1000\r\n\r\n{".encode())
            connections.append(connection)
        yield
    finally:
        for connection in connections:
            connection.close()


def warm_up(url: str) -> None:
    # Each worker's first request loads what Django loads lazily; not part of what is measured.
    for _ in range(4):
        requests.get(f"{url}/admin/login/", timeout=30)


def test_without_a_proxy_two_slow_clients_stall_a_signed_webhook(app):
    warm_up(app)
    body, headers = signed_webhook()

    # Connected first, so the workers accept them first (the listen queue is FIFO).
    with slow_clients(app, 2):
        status, seconds = timed("POST", f"{app}/webhooks/status", data=body, headers=headers)

    assert status is None, f"answered {status} in {seconds:.2f} s: the slow clients did not hold the workers"
    print(f"\nwithout a proxy, 2 slow clients: the signed webhook had no answer after {seconds:.2f} s")


@requires_nginx
def test_behind_nginx_fifty_slow_clients_stall_neither_webhooks_nor_the_admin(app, tmp_path):
    proxy_folder = tmp_path / "nginx"
    proxy_folder.mkdir()
    with nginx(proxy_folder, upstream_port=int(app.rsplit(":", 1)[1])) as proxy:
        certificate = proxy_folder / "cert.pem"
        warm_up_through = requests.get(f"{proxy}/admin/login/", verify=certificate, timeout=30)
        assert warm_up_through.status_code == 200
        warm_up(app)
        body, headers = signed_webhook()

        with slow_clients(proxy, SLOW_CLIENTS_BEHIND_NGINX, certificate):
            webhook, webhook_seconds = timed("POST", f"{proxy}/webhooks/status", data=body, headers=headers,
                                             verify=certificate)
            admin, admin_seconds = timed("GET", f"{proxy}/admin/login/", verify=certificate)
            refused, refused_seconds = timed("POST", f"{proxy}/webhooks/status", data=body, verify=certificate)

    assert (webhook, admin, refused) == (204, 200, 401), (webhook_seconds, admin_seconds, refused_seconds)
    assert WebhookEvent.objects.count() == 1  # the signed one reached the app and was stored, once
    print(f"\nbehind nginx, {SLOW_CLIENTS_BEHIND_NGINX} slow clients: signed webhook 204 in {webhook_seconds:.3f} s, "
          f"admin login page 200 in {admin_seconds:.3f} s, unsigned webhook 401 in {refused_seconds:.3f} s")
