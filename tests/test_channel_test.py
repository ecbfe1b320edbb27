"""The Person page's "Send test message": one Messages API message per channel, results as they come in.

The sends go over real HTTP to the local Vonage emulator; in the end-to-end test the emulator's status
webhooks come back over real HTTP to the app (live_server) and move each test up the ladder.
"""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from escalation.admin.channel_tests import waiting
from escalation.models import ChannelTest, Person, Sender
from escalation.services.integrations import channel_test_send
from tests.applying import apply_stored_webhooks
from tests.personas import MICHAEL, TONY, make_person, make_senders

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0)


def results_page(client, person: Person) -> str:
    response = client.get(f"/admin/escalation/person/{person.pk}/test-message/results/")
    assert response.status_code == 200
    return response.content.decode()


def test_a_channel_without_a_sender_fails_without_a_request():
    # VONAGE_API_URL points at a closed port (conftest): a request would fail with a different error.
    person = make_person(*TONY)
    tests = channel_test_send(person=person, now=T0)
    assert [(t.channel_type, t.status, t.error) for t in tests] == [
        ("messenger", "failed", "No sender is configured for Facebook Messenger: add one under Senders."),
        ("sms", "failed", "No sender is configured for SMS: add one under Senders."),
    ]
    assert all(t.message_uuid is None for t in tests)


def test_a_refused_request_is_recorded_with_vonages_reason():
    # Nothing listens on the configured port: the client's error is the test's result, not a 500.
    make_senders()
    person = make_person(*TONY)
    tests = channel_test_send(person=person, now=T0)
    assert [t.status for t in tests] == ["failed", "failed"]
    assert all(t.error.startswith("Vonage") for t in tests)


def test_the_send_page_asks_first_and_warns_of_missing_senders(admin_client):
    person = make_person(*TONY)
    Sender.objects.create(channel_type="sms", sender_id="OnCall")
    page = admin_client.get(f"/admin/escalation/person/{person.pk}/test-message/").content.decode()
    assert "Facebook Messenger 23037543461244470 <strong>(no Facebook Messenger sender is configured" in page
    assert "SMS 447700900001</li>" in page
    assert ChannelTest.objects.count() == 0


def test_the_person_page_has_the_button(admin_client):
    person = make_person(*TONY)
    page = admin_client.get(f"/admin/escalation/person/{person.pk}/change/").content.decode()
    assert f'href="/admin/escalation/person/{person.pk}/test-message/"' in page
    assert "Send test message" in page


def test_sending_needs_permission_to_change_the_person(client):
    person = make_person(*TONY)
    viewer = User.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_person"))
    client.force_login(viewer)
    assert client.get(f"/admin/escalation/person/{person.pk}/test-message/").status_code == 403
    assert client.post(f"/admin/escalation/person/{person.pk}/test-message/").status_code == 403
    assert ChannelTest.objects.count() == 0


def make_test(person: Person, channel_type: str, status: str, *, created_at=T0) -> ChannelTest:
    return ChannelTest.objects.create(person=person, channel_type=channel_type, to_address="447700900001",
                                      client_ref=f"{channel_type}-{status}-{created_at:%s}", status=status,
                                      created_at=created_at, updated_at=created_at)


@pytest.mark.parametrize(("channel_type", "status", "expected"), [
    ("whatsapp", "queued", True),
    ("whatsapp", "submitted", True),
    ("whatsapp", "delivered", True),  # read may still come
    ("sms", "delivered", False),  # SMS never reports read
    ("whatsapp", "read", False),
    ("whatsapp", "rejected", False),
    ("sms", "failed", False),
])
def test_it_waits_only_while_a_status_can_still_come(channel_type, status, expected):
    person = make_person(*TONY)
    test = make_test(person, channel_type, status)
    assert waiting(test, T0 + timedelta(seconds=30)) is expected
    assert waiting(test, T0 + timedelta(minutes=11)) is False


def test_the_results_page_reloads_until_every_answer_is_in(admin_client):
    person = make_person(*MICHAEL)
    now = timezone.now()
    make_test(person, "viber_service_msg", "read", created_at=now - timedelta(hours=1))  # an older batch
    viber = make_test(person, "viber_service_msg", "submitted", created_at=now)
    make_test(person, "sms", "delivered", created_at=now)
    page = results_page(admin_client, person)
    assert '<meta http-equiv="refresh" content="2">' in page
    assert page.count("<tr class=\"status-") == 2
    assert "accepted by Vonage" in page

    ChannelTest.objects.filter(pk=viber.pk).update(status="read", status_rank=3)
    page = results_page(admin_client, person)
    assert "http-equiv" not in page
    assert "No further answers are expected." in page


# --- Through the emulator ---

def test_it_sends_one_message_per_channel_through_the_emulator(emulator, admin_client):
    make_senders()
    person = make_person(*MICHAEL)
    response = admin_client.post(f"/admin/escalation/person/{person.pk}/test-message/")
    assert response.status_code == 302
    assert response["Location"] == f"/admin/escalation/person/{person.pk}/test-message/results/"

    tests = list(ChannelTest.objects.order_by("id"))
    assert [(t.channel_type, t.to_address, t.status) for t in tests] == [
        ("viber_service_msg", "447700900002", "submitted"),
        ("whatsapp", "447700900003", "submitted"),
        ("sms", "447700900004", "submitted"),
    ]
    for test in tests:
        [sent] = emulator.messages(client_ref=test.client_ref)
        assert sent["message_uuid"] == str(test.message_uuid)
        assert sent["to"] == test.to_address
        assert sent["channel"] == test.channel_type
        assert "test message" in sent["text"] and "Michael" in sent["text"]
    assert "accepted by Vonage" in results_page(admin_client, person)


def test_a_channel_vonage_refuses_shows_why_and_the_others_still_go(emulator):
    make_senders()
    person = make_person(*MICHAEL)
    emulator.fault("422")
    viber, whatsapp, sms = channel_test_send(person=person, now=T0)
    assert viber.status == "failed"
    assert viber.error.startswith("Vonage 422:")
    assert "injected by the emulator" in viber.error
    assert (whatsapp.status, sms.status) == ("submitted", "submitted")


@pytest.mark.django_db(transaction=True)
def test_the_answers_arrive_over_real_webhooks(app_emulator, admin_client):
    make_senders()
    person = make_person(*MICHAEL)
    emulator = app_emulator
    emulator.scenario("447700900002", "read", after=2)
    emulator.scenario("447700900003", "reject")
    emulator.scenario("447700900004", "deliver")
    admin_client.post(f"/admin/escalation/person/{person.pk}/test-message/")

    def statuses() -> list[str]:
        apply_stored_webhooks()  # as the worker does
        return list(ChannelTest.objects.order_by("id").values_list("status", flat=True))

    emulator.wait_for(statuses, lambda s: s == ["read", "rejected", "delivered"], timeout=10)
    page = results_page(admin_client, person)
    assert "http-equiv" not in page
    for status in ("read", "rejected", "delivered"):
        assert f'<tr class="status-{status}">' in page
