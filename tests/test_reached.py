"""Issue 15 §1: "acknowledged" only when someone acknowledged; a delivery that meets a channel's condition is
"reached", named apart everywhere; and a roster may choose to stop only on an acknowledgement."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from escalation.admin.escalations import EscalationAdmin
from escalation.engine.apply import apply_status
from escalation.engine.worker import run_due
from escalation.models import Escalation, Event, EventKind, Message, Page, Roster, StopRule
from escalation.services.escalations import escalation_fire
from escalation.timeline import build_timeline
from escalation.vonage.payloads import StatusUpdate
from tests.personas import MICHAEL, TONY, make_roster

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0)


def at(seconds: float):
    return T0 + timedelta(seconds=seconds)


def status(message: Message, value: str, seconds: float):
    message.refresh_from_db()
    apply_status(StatusUpdate(message_uuid=str(message.message_uuid or ""), status=value, timestamp=at(seconds),
                              to_address=message.to_address, channel_type=message.channel_type,
                              client_ref=message.client_ref), now=at(seconds))


def tony_sms_delivered(roster: Roster) -> Escalation:
    """Fired in Messages mode; Tony's Messenger is ignored, his SMS (condition `delivered`) is delivered."""
    escalation = escalation_fire(roster=roster, message="disk full", fired_by_name="test", now=T0)
    run_due(now=at(0))
    run_due(now=at(60))
    status(Message.objects.get(page__escalation=escalation, channel_type="sms"), "delivered", 62)
    escalation.refresh_from_db()
    return escalation


def test_it_records_a_delivered_sms_as_reached_and_stops_under_the_default_rule(messages_mode):
    escalation = tony_sms_delivered(make_roster(TONY, MICHAEL))
    assert escalation.plan["stop_on"] == StopRule.CONDITION
    assert escalation.state == "reached"
    assert escalation.outcome.startswith("Tony: SMS delivered at ")
    [event] = Event.objects.filter(escalation=escalation, kind=EventKind.REACHED)
    assert event.text.startswith("Reached Tony: SMS delivered at ") and "nobody has acknowledged" in event.text
    assert not Event.objects.filter(escalation=escalation, kind=EventKind.ACKNOWLEDGED).exists()


def test_it_goes_on_after_a_delivered_sms_when_the_roster_stops_only_on_an_acknowledgement(messages_mode):
    roster = make_roster(TONY, MICHAEL)
    roster.stop_on = StopRule.ACKNOWLEDGEMENT
    roster.save()
    escalation = tony_sms_delivered(roster)
    assert escalation.state == "active"
    sms = Message.objects.get(page__escalation=escalation, channel_type="sms")
    assert (sms.status, sms.delivered_at) == ("delivered", at(62))
    run_due(now=at(120))  # Tony's SMS wait runs out: Michael is paged
    assert list(Page.objects.filter(escalation=escalation).values_list("person_name", "state")) == [
        ("Tony", "passed_over"), ("Michael", "active")]
    viber = Message.objects.get(page__escalation=escalation, channel_type="viber_service_msg")
    status(viber, "read", 130)
    escalation.refresh_from_db()
    assert (escalation.state, escalation.acknowledged_by_name) == ("acknowledged", "Michael")
    assert escalation.outcome.startswith("Michael: read on Viber at ")


def test_the_list_the_timeline_and_the_page_name_reached_apart_from_acknowledged(messages_mode, admin_client):
    escalation = tony_sms_delivered(make_roster(TONY, MICHAEL))
    column = EscalationAdmin(Escalation, None).acknowledged_by_display(escalation)
    assert column == "reached Tony, not acknowledged"
    listing = admin_client.get(reverse("admin:escalation_escalation_changelist")).content.decode()
    assert "reached Tony, not acknowledged" in listing and "acknowledged by" not in listing
    timeline = build_timeline(escalation=escalation, pages=list(Page.objects.filter(escalation=escalation)),
                              messages=list(Message.objects.filter(page__escalation=escalation)), events=[],
                              now=at(100))
    assert [(line.kind, line.label) for line in timeline.lines] == [("reached", "reached Tony +1:02")]
    page = admin_client.get(reverse("admin:escalation_escalation_change", args=[escalation.pk])).content.decode()
    assert 'esc-state-reached">reached</span>' in page
    assert "Tony: SMS delivered at " in page


def test_the_fire_page_states_which_rule_stops_the_escalation(admin_client):
    roster = make_roster(TONY, MICHAEL)
    url = reverse("admin:escalation_roster_fire", args=[roster.pk])
    assert "Stops when a channel’s condition is met" in admin_client.get(url).content.decode()
    roster.stop_on = StopRule.ACKNOWLEDGEMENT
    roster.save()
    page = admin_client.get(url).content.decode()
    assert "Stops only on an acknowledgement" in page and "A delivered SMS is recorded" in page


def test_the_roster_page_offers_the_rule(admin_client):
    roster = make_roster(TONY, MICHAEL)
    page = admin_client.get(reverse("admin:escalation_roster_change", args=[roster.pk])).content.decode()
    assert 'name="stop_on"' in page and "only on an acknowledgement" in page
