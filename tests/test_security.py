"""Who may do what: every admin page behind the login, firing, cancelling and acknowledging behind their
permission, CSRF on every form, the only CSRF-exempt views signed or secret, the private key never
served, no secret in any log line, replayed signed webhooks harmless, secrets compared in constant time.

The admin's URLs are walked from the URL configuration itself, so a page added later is covered (and a
public view added later fails `test_the_only_public_urls_are_the_signed_or_secret_endpoints` until it is
reviewed).
"""

import hmac
import json
import logging
import re
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.contrib.staticfiles import finders
from django.core.exceptions import SuspiciousFileOperation
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from escalation.engine.provider import get_client
from escalation.models import (
    ChannelTest,
    Escalation,
    EscalationState,
    Event,
    HandoffNotice,
    Integration,
    Message,
    Override,
    Person,
    Roster,
    Sender,
    WebhookEvent,
)
from escalation.services.alerts import alert_digest
from escalation.services.escalations import escalation_fire
from tests.applying import apply_stored_webhooks
from tests.conftest import TEST_SIGNATURE_SECRET
from tests.history_rows import active_escalation
from tests.personas import MICHAEL, TONY, make_roster
from tests.schedule_personas import make_schedule
from tests.signing import vonage_signature
from tests.test_webhooks import T0, paged, sent, v1_status

pytestmark = pytest.mark.django_db

# The demo's phones lookup is answered only when DEMO_PHONES_URL is set (404 otherwise) and only for message uuids,
# which are random: it says which escalation a message belongs to and its state (test_phones_escalations.py).
# PagerDuty's Events API v2 is public like an integration's URL: the routing key in its body (or the token in
# its URL) is the integration's secret token (test_pagerduty_events.py).
PUBLIC = {"webhook-status", "webhook-inbound", "integration-receive", "demo-phones-escalations",
          "pagerduty-enqueue", "integration-pagerduty-enqueue"}
CALENDAR_FEEDS = {"schedule-feed", "person-feed"}  # secret URLs too, but GET only: nothing for CSRF to guard
OPEN_ADMIN_PAGES = {"login", "logout"}  # logging in, and logging out (a POST that ends a session if there is one)


# --- the URL map ------------------------------------------------------------------------------------------------

def patterns(resolver: URLResolver | None = None, namespace: str = "") -> list[tuple[str, URLPattern]]:
    """Every (namespace, pattern) in the URL configuration."""
    found = []
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            found += patterns(entry, entry.namespace or namespace)
        else:
            found.append((namespace, entry))
    return found


@pytest.fixture
def objects() -> dict[str, object]:
    """One row of every model an admin URL can point at."""
    roster = make_roster(TONY, MICHAEL)
    escalation = active_escalation(roster=roster)
    integration = Integration.objects.create(name="prometheus", roster=roster, format="alertmanager")
    Escalation.objects.filter(pk=escalation.pk).update(integration=integration, dedup_key="disk")
    person = Person.objects.get(name="Tony")
    schedule = make_schedule("Primary", [person])
    return {
        "schedule": schedule, "layer": schedule.layers.get(),
        "override": Override.objects.create(schedule=schedule, person=person, start=T0, end=T0 + timedelta(hours=1)),
        "person": person, "roster": roster, "sender": Sender.objects.first(), "escalation": escalation,
        "integration": integration, "user": User.objects.create(username="someone"),
        "group": Group.objects.create(name="on-call"),
        "webhookevent": WebhookEvent.objects.create(received_at=T0, kind="status", dedup_key="status:x:read",
                                                    body={"status": "read"}),
        "channeltest": ChannelTest.objects.create(person=person, channel_type="sms", to_address="447700900001",
                                                  created_at=T0, updated_at=T0),
        "handoffnotice": HandoffNotice.objects.create(schedule=schedule, person=person, shift_start=T0, due_at=T0,
                                                      channel_type="messenger", to_address="23037543461244470",
                                                      created_at=T0),
    }


def admin_urls(objects: dict[str, object]) -> dict[str, str]:
    """name -> a concrete URL, for every named admin URL."""
    urls = {}
    for namespace, pattern in patterns():
        if namespace != "admin" or not pattern.name:
            continue
        kwargs = {}
        for key in pattern.pattern.converters or re.findall(r"\(\?P<(\w+)>", str(pattern.pattern)):
            kwargs[key] = "?"
        model = next((m for m in objects if pattern.name.startswith(f"escalation_{m}_")
                      or pattern.name.startswith(f"auth_{m}_")), "person")  # view_on_site: a person
        if "object_id" in kwargs or "id" in kwargs:
            key = "object_id" if "object_id" in kwargs else "id"
            kwargs[key] = objects[model].pk
        if "person_id" in kwargs:
            kwargs["person_id"] = objects["person"].pk
        if "app_label" in kwargs:
            kwargs["app_label"] = "escalation"
        if "digest" in kwargs:
            kwargs["digest"] = alert_digest("disk")
        if "content_type_id" in kwargs:
            kwargs["content_type_id"] = ContentType.objects.get_for_model(Person).pk
        urls[pattern.name] = reverse(f"admin:{pattern.name}", kwargs=kwargs)
    return urls


def test_the_walk_finds_the_custom_admin_pages(objects):
    urls = admin_urls(objects)
    for name in ("escalation_roster_fire", "escalation_escalation_cancel", "escalation_escalation_acknowledge",
                 "escalation_integration_rotate", "escalation_person_test_message",
                 "escalation_webhookevent_changelist", "escalation_escalation_change"):
        assert name in urls
    assert len(urls) > 50


def test_the_only_public_urls_are_the_signed_or_secret_endpoints():
    outside_admin = {pattern.name for namespace, pattern in patterns() if namespace != "admin"}
    # The root only redirects to the admin.
    assert outside_admin == PUBLIC | CALENDAR_FEEDS | {None}
    assert Client().get("/").url == "/admin/"


def test_only_the_signed_or_secret_endpoints_skip_csrf():
    exempt = {pattern.name for _, pattern in patterns() if getattr(pattern.callback, "csrf_exempt", False)}
    assert exempt == PUBLIC


# --- login ---------------------------------------------------------------------------------------------------------

def test_every_admin_and_history_page_needs_a_login(objects):
    anonymous = Client()
    for name, url in admin_urls(objects).items():
        if name in OPEN_ADMIN_PAGES:
            continue
        for method in ("get", "post"):
            response = getattr(anonymous, method)(url)
            assert response.status_code == 302, (name, method, response.status_code)
            assert response.url.startswith(reverse("admin:login")), (name, response.url)


def test_a_logged_in_user_who_is_not_staff_gets_no_page_either(objects, client):
    client.force_login(User.objects.create(username="visitor", is_staff=False))
    for name, url in admin_urls(objects).items():
        if name not in OPEN_ADMIN_PAGES:
            response = client.get(url)
            assert response.status_code == 302 and response.url.startswith(reverse("admin:login")), name


def test_staff_without_permissions_see_no_data(objects, client):
    client.force_login(User.objects.create(username="trainee", is_staff=True))
    secrets = [objects["integration"].token, "23037543461244470", "Disk full on db-1",
               objects["schedule"].feed_token]
    for name, url in admin_urls(objects).items():
        response = client.get(url)
        assert response.status_code in (200, 302, 403, 404, 405), (name, response.status_code)
        if response.status_code == 302:
            # Only to the login page, the logout page or an escalation page that is itself refused.
            assert client.get(response.url).status_code in (200, 403), name
        body = response.content.decode(errors="replace")
        for secret in secrets:
            assert secret not in body, (name, secret)


# --- the fire permission --------------------------------------------------------------------------------------------

def staff(username: str, *codenames: str) -> User:
    user = User.objects.create(username=username, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="escalation", codename__in=codenames))
    return user


EVERYTHING_BUT_FIRE = ("view_roster", "change_roster", "view_escalation", "change_escalation", "view_person",
                       "change_person")


def test_firing_cancelling_and_acknowledging_need_the_fire_permission(client):
    roster = make_roster(TONY, MICHAEL)
    escalation = active_escalation(roster=roster)
    client.force_login(staff("eddie", *EVERYTHING_BUT_FIRE))
    rosters = reverse("admin:escalation_roster_changelist")
    escalations = reverse("admin:escalation_escalation_changelist")
    refused = [
        client.post(reverse("admin:escalation_roster_fire", args=[roster.pk]), {"post": "yes", "message": "x"}),
        client.post(rosters, {"action": "fire_escalation", ACTION_CHECKBOX_NAME: [roster.pk], "post": "yes",
                              "message": "x"}),
        client.post(reverse("admin:escalation_escalation_cancel", args=[escalation.pk]), {"post": "yes"}),
        client.post(reverse("admin:escalation_escalation_acknowledge", args=[escalation.pk]), {"post": "yes"}),
        client.post(escalations, {"action": "cancel_escalations", ACTION_CHECKBOX_NAME: [escalation.pk],
                                  "post": "yes"}),
        client.post(escalations, {"action": "acknowledge_escalations", ACTION_CHECKBOX_NAME: [escalation.pk],
                                  "post": "yes"}),
    ]
    assert [r.status_code for r in refused] == [403] * 6
    assert Escalation.objects.count() == 1
    escalation.refresh_from_db()
    assert escalation.state == EscalationState.ACTIVE

    client.force_login(staff("fiona", *EVERYTHING_BUT_FIRE, "fire_escalation"))
    assert client.post(reverse("admin:escalation_escalation_cancel", args=[escalation.pk]),
                       {"post": "yes"}).status_code == 302
    escalation.refresh_from_db()
    assert escalation.state == EscalationState.CANCELLED


# --- CSRF ----------------------------------------------------------------------------------------------------------

def snapshot() -> tuple:
    return tuple(model.objects.count() for model in (Escalation, Event, Person, Roster, Integration, User, Group,
                                                       ChannelTest, WebhookEvent)) + (
        tuple(Escalation.objects.values_list("state", flat=True)), tuple(Integration.objects.values_list("token")))


def test_every_admin_form_refuses_a_post_without_the_csrf_token(objects):
    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    before = snapshot()
    for name, url in admin_urls(objects).items():
        response = client.post(url, {"post": "yes", "message": "x", "action": "delete_selected",
                                     ACTION_CHECKBOX_NAME: ["1"], "name": "Mallory"})
        assert response.status_code == 403, (name, response.status_code)
        assert b"CSRF" in response.content, name
    assert snapshot() == before


def test_with_the_token_the_same_form_works(objects):
    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    url = reverse("admin:escalation_escalation_cancel", args=[objects["escalation"].pk])
    page = client.get(url)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    assert client.post(url, {"post": "yes", "csrfmiddlewaretoken": token}).status_code == 302
    assert Escalation.objects.get(pk=objects["escalation"].pk).state == EscalationState.CANCELLED


def test_the_csrf_exempt_endpoints_refuse_anything_unsigned_or_without_the_secret(settings, objects):
    settings.VONAGE_SIGNATURE_SECRET = TEST_SIGNATURE_SECRET
    client = Client(enforce_csrf_checks=True)
    body = json.dumps({"message_uuid": str(uuid.uuid4()), "to": "447700900001", "from": "x", "status": "read",
                       "timestamp": "2026-03-01T10:00:00Z", "channel": "sms"})
    for url in ("/webhooks/status", "/webhooks/inbound"):
        assert client.post(url, body, content_type="application/json").status_code == 401
        forged = vonage_signature(body.encode(), now=timezone.now(), secret="not-the-signature-secret-0123456789abcdef")
        assert client.post(url, body, content_type="application/json",
                           headers={"Authorization": forged}).status_code == 401
    token = objects["integration"].token
    guess = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert client.post(f"/integrations/{guess}/", "{}", content_type="application/json").status_code == 404
    assert not WebhookEvent.objects.exclude(pk=objects["webhookevent"].pk).exists()


# --- the private key --------------------------------------------------------------------------------------------

def test_no_url_serves_files():
    from django.contrib.staticfiles.views import serve as staticfiles_serve
    from django.views.static import serve

    for _, pattern in patterns():
        assert pattern.callback not in (serve, staticfiles_serve), pattern
    assert "django.contrib.staticfiles.handlers" not in str(django_settings.WSGI_APPLICATION)


def test_static_and_media_cannot_reach_the_private_key_or_var(vonage_keys):
    key = Path(vonage_keys["private_path"]).resolve()
    var = (Path(django_settings.BASE_DIR) / "var").resolve()
    roots = [Path(django_settings.STATIC_ROOT).resolve()]
    dirs = getattr(django_settings, "STATICFILES_DIRS", [])
    roots += [Path(p if isinstance(p, str) else p[1]).resolve() for p in dirs]
    media = getattr(django_settings, "MEDIA_ROOT", "")
    if media:
        roots.append(Path(media).resolve())
    for root in roots:
        assert not key.is_relative_to(root) and not var.is_relative_to(root) and not root.is_relative_to(var), root
        assert root != Path(django_settings.BASE_DIR).resolve(), "the project folder itself is served"
    assert finders.find(key.name) is None
    with pytest.raises(SuspiciousFileOperation):
        finders.find("../../../../../../var")


@pytest.mark.parametrize("path", [
    "/private.key", "/var/private.key", "/static/private.key", "/static/../private.key", "/static/%2e%2e/manage.py",
    "/media/private.key", "/.env", "/admin/../private.key", "/static/../../etc/passwd",
])
def test_probing_for_files_finds_nothing(path, vonage_keys, client):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    pem = Path(vonage_keys["private_path"]).read_text().splitlines()[1]
    for url in (path, vonage_keys["private_path"], "/static/" + vonage_keys["private_path"].lstrip("/")):
        response = client.get(url, follow=True)
        assert response.status_code == 404, (url, response.status_code)
        assert pem not in response.content.decode(errors="replace")


# --- secrets in logs ---------------------------------------------------------------------------------------------

JWT = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.")


def test_no_secret_reaches_a_log_line(settings, caplog, capfd, vonage_keys, emulator):
    settings.VONAGE_SIGNATURE_SECRET = TEST_SIGNATURE_SECRET
    settings.ESCALATION_API = "messages"
    caplog.set_level(logging.DEBUG)
    client = Client()
    escalation = escalation_fire(roster=make_roster(TONY, MICHAEL), message="Main server down", now=T0)
    message = sent(paged(escalation, 1), 0)
    raw = json.dumps(v1_status(message, "read")).encode()
    signature = vonage_signature(raw, now=timezone.now())
    # A signed webhook, a forged one, and a refused alert on a real integration URL.
    assert client.post("/webhooks/status", raw, content_type="application/json",
                       headers={"Authorization": signature}).status_code == 204
    forged = vonage_signature(raw, now=timezone.now(), secret=TEST_SIGNATURE_SECRET[::-1])
    assert client.post("/webhooks/inbound", raw, content_type="application/json",
                       headers={"Authorization": forged}).status_code == 401
    integration = Integration.objects.create(name="am", roster=escalation.roster, format="alertmanager")
    assert client.post(f"/integrations/{integration.token}/", "[", content_type="application/json").status_code == 400
    # Sends through the Vonage client, both APIs, and one refused by the provider.
    channel = escalation.plan["people"][0]["channels"][0]
    get_client().send_message(channel=channel, text="test", client_ref="ref-1")
    get_client().dispatch_failover(person_name="Tony", channels=escalation.plan["people"][0]["channels"], text="test")
    emulator.fault("401")
    with pytest.raises(Exception):  # noqa: B017 - VonageError; its text is logged by the worker
        get_client().send_message(channel=channel, text="test", client_ref="ref-2")

    out, err = capfd.readouterr()
    logged = "\n".join([caplog.text, out, err])
    # The capture works: the refusal and the requests to Vonage were logged.
    assert "Refused a webhook" in caplog.text and "POST /v1/messages" in caplog.text
    private = Path(vonage_keys["private_path"]).read_text().splitlines()[1:-1]
    for secret in [TEST_SIGNATURE_SECRET, django_settings.SECRET_KEY, integration.token, *private]:
        assert secret not in logged
    assert not JWT.search(logged), JWT.search(logged).group(0)


# --- replays -------------------------------------------------------------------------------------------------------

def test_a_replayed_signed_webhook_changes_nothing_more(settings):
    settings.VONAGE_SIGNATURE_SECRET = TEST_SIGNATURE_SECRET
    settings.ESCALATION_API = "messages"
    escalation = escalation_fire(roster=make_roster(TONY, MICHAEL), message="Main server down", now=T0)
    message = sent(paged(escalation, 0), 0)
    client = Client()

    def delivery(status: str) -> tuple[bytes, str]:
        raw = json.dumps(v1_status(message, status)).encode()
        return raw, vonage_signature(raw, now=timezone.now())

    def replay(raw: bytes, signature: str) -> int:
        status = client.post("/webhooks/status", raw, content_type="application/json",
                             headers={"Authorization": signature}).status_code
        apply_stored_webhooks()
        return status

    delivered, read = delivery("delivered"), delivery("read")
    assert replay(*delivered) == 204
    assert replay(*read) == 204
    escalation.refresh_from_db()
    assert escalation.state == EscalationState.ACKNOWLEDGED
    after = (WebhookEvent.objects.count(), Event.objects.count(), escalation.ended_at, escalation.outcome)

    # An attacker (or Vonage's retry) sends both captured deliveries again, many times, in any order.
    assert [replay(*d) for d in [read, delivered, read, delivered] * 5] == [204] * 20
    escalation.refresh_from_db()
    message.refresh_from_db()
    assert (WebhookEvent.objects.count(), Event.objects.count(), escalation.ended_at, escalation.outcome) == after
    assert message.status == "read"

    # The captured signature does not carry another body.
    other = json.dumps(v1_status(message, "rejected")).encode()
    assert client.post("/webhooks/status", other, content_type="application/json",
                       headers={"Authorization": read[1]}).status_code == 401
    assert WebhookEvent.objects.count() == after[0]


def test_a_replayed_reply_does_not_acknowledge_a_later_escalation(settings):
    settings.VONAGE_SIGNATURE_SECRET = TEST_SIGNATURE_SECRET
    roster = make_roster(TONY, MICHAEL)
    first = escalation_fire(roster=roster, message="Disk full", now=T0)
    paged(first, 0)
    reply = {"channel": "sms", "message_uuid": str(uuid.uuid4()), "to": "447700900000", "from": "447700900001",
             "timestamp": "2026-03-01T10:01:00Z", "message_type": "text", "text": "on it"}
    raw = json.dumps(reply).encode()
    signature = vonage_signature(raw, now=timezone.now())
    client = Client()
    assert client.post("/webhooks/inbound", raw, content_type="application/json",
                       headers={"Authorization": signature}).status_code == 204
    apply_stored_webhooks()
    first.refresh_from_db()
    assert first.state == EscalationState.ACKNOWLEDGED

    second = escalation_fire(roster=roster, message="Disk full again", now=T0)
    paged(second, 0)
    assert client.post("/webhooks/inbound", raw, content_type="application/json",
                       headers={"Authorization": signature}).status_code == 204
    apply_stored_webhooks()
    second.refresh_from_db()
    assert second.state == EscalationState.ACTIVE  # the old reply is the same event: stored once, applied once


# --- constant-time comparisons -------------------------------------------------------------------------------------

def test_tokens_and_signatures_are_compared_in_constant_time(settings, monkeypatch):
    settings.VONAGE_SIGNATURE_SECRET = TEST_SIGNATURE_SECRET
    compared = []
    real = hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    integration = Integration.objects.create(name="am", roster=make_roster(TONY, MICHAEL), format="generic")
    Client().post(f"/integrations/{integration.token}/", "{}", content_type="application/json")
    assert (integration.token.encode(), integration.token.encode()) in compared

    compared.clear()
    raw = json.dumps({"message_uuid": str(uuid.uuid4()), "to": "447700900009", "from": "x", "status": "read",
                      "timestamp": "2026-03-01T10:00:00Z", "channel": "sms"}).encode()
    assert Client().post("/webhooks/status", raw, content_type="application/json",
                         headers={"Authorization": vonage_signature(raw, now=timezone.now())}).status_code == 204
    # The JWT's HMAC (inside PyJWT) and the body's payload_hash.
    assert len(compared) >= 2
    assert any(isinstance(a, bytes) and len(a) == 32 for a, _ in compared)  # the HS256 MAC
    assert Message.objects.count() == 0
