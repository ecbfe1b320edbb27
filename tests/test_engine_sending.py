"""A send's outcome and the escalation's timer: what `perform()` leaves behind, and when `advance()` decides again.

The outcome record moves the timer on itself (to the deadline, or to the retry) as long as it still holds
the send's claim lease; whatever was put there since the claim (a failed status poking it to now, an
acknowledgement clearing it) wins, and the worker decides again at once. Time is explicit, as in test_engine.
"""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from escalation.engine.sending import SendPool, perform
from escalation.engine.step import PENDING_WEBHOOKS_GRACE, decide_due
from escalation.engine.worker import GATHER_SECONDS, advance, idle_wait, run_due
from escalation.models import Escalation, Message, Page, Person
from escalation.services.escalations import escalation_cancel
from escalation.services.webhooks import webhook_receive
from tests.personas import MICHAEL, TONY, make_roster
from tests.test_engine import at, fire, refreshed, sent, status
from tests.test_webhooks import v1_status

pytestmark = pytest.mark.django_db


def claimed_send(escalation: Escalation, seconds: float):
    """What the worker's first half of a step does: decide under the row lock and commit the claim."""
    [send] = decide_due([escalation.pk], at(seconds))
    return send


def test_an_accepted_message_sets_the_timer_to_its_deadline_with_no_second_decision(messages_mode):
    escalation = fire(make_roster(TONY, MICHAEL))
    action = claimed_send(escalation, 0)
    assert refreshed(escalation).next_action_at == at(30)  # the claim's lease, while the send is in flight
    assert perform([action], lambda: at(0)) == set()
    assert refreshed(escalation).next_action_at == at(60)
    assert Message.objects.get(pk=action.message.pk).status == "submitted"


def test_an_accepted_workflow_sets_the_timer_to_the_persons_deadline(dispatch_mode):
    escalation = fire(make_roster(TONY, MICHAEL))
    action = claimed_send(escalation, 0)
    assert perform([action], lambda: at(1)) == set()
    assert refreshed(escalation).next_action_at == at(121)  # Vonage's clock starts at the acceptance
    assert Page.objects.get(pk=action.page.pk).deadline == at(121)


def test_a_failed_status_that_beat_the_outcome_record_keeps_its_poke_and_is_acted_on_at_once(messages_mode):
    escalation = fire(make_roster(TONY, MICHAEL))
    action = claimed_send(escalation, 0)
    message = Message.objects.get(pk=action.message.pk)
    # Vonage's webhook (matched by client_ref) is applied between the request and the record of its 202.
    status(message, "rejected", 0, error="1300: not a user")
    assert perform([action], lambda: at(0)) == {escalation.pk}
    assert refreshed(escalation).next_action_at == at(0)  # not moved back to the message's deadline
    message.refresh_from_db()
    assert (message.status, message.message_uuid is not None) == ("rejected", True)
    run_due(now=at(0))
    assert sent(escalation) == [("Tony", 0, "messenger"), ("Tony", 1, "sms")]


def test_a_refused_channel_is_followed_by_the_next_in_the_same_advance(messages_mode):
    messages_mode.fault("422", count=1)
    escalation = fire(make_roster(TONY, MICHAEL))
    advance([escalation.pk], clock=lambda: at(0))
    assert sent(escalation) == [("Tony", 1, "sms")]
    assert refreshed(escalation).next_action_at == at(60)


def test_a_send_claimed_before_a_cancel_is_not_made(messages_mode):
    escalation = fire(make_roster(TONY, MICHAEL))
    action = claimed_send(escalation, 0)
    assert escalation_cancel(escalation=escalation, by_name="ann", now=at(0))
    assert perform([action], lambda: at(0)) == set()
    assert messages_mode.requests() == []
    assert Message.objects.get(pk=action.message.pk).claimed_until is None
    assert refreshed(escalation).next_action_at is None


def test_a_retry_sets_the_timer_and_dispatch_requested_at_follows_each_attempt(dispatch_mode):
    dispatch_mode.fault("500", count=1)
    escalation = fire(make_roster(TONY, MICHAEL))
    action = claimed_send(escalation, 0)
    page = Page.objects.get(pk=action.page.pk)
    # Written with the claim, before the request goes out.
    assert (page.dispatch_requested_at, page.send_attempts) == (at(0), 1)
    assert perform([action], lambda: at(0)) == set()
    assert refreshed(escalation).next_action_at == at(2)
    run_due(now=at(2))
    page.refresh_from_db()
    assert (page.dispatch_requested_at, page.send_attempts, page.dispatch_uuid is not None) == (at(2), 2, True)
    assert refreshed(escalation).next_action_at == at(122)


def test_a_person_deleted_after_the_fire_is_still_paged_linked_to_nobody(dispatch_mode):
    roster = make_roster(TONY, MICHAEL)
    escalation = fire(roster)
    roster.members.filter(person__name="Michael").delete()
    Person.objects.get(name="Michael").delete()
    run_due(now=at(0))
    run_due(now=at(120))
    tony, michael = Page.objects.filter(escalation=escalation).order_by("index")
    assert tony.person == Person.objects.get(name="Tony")
    assert (michael.person_name, michael.person, michael.dispatch_uuid is not None) == ("Michael", None, True)


def test_a_pass_over_many_escalations_costs_the_statements_of_one(dispatch_mode):
    roster = make_roster(TONY, MICHAEL)
    escalations = [fire(roster) for _ in range(11)]
    run_due(now=at(0))
    with SendPool(10) as pool:
        with CaptureQueriesContext(connection) as alone:
            advance([escalations[0].pk], clock=lambda: at(120), pool=pool)
        with CaptureQueriesContext(connection) as together:
            advance([e.pk for e in escalations[1:]], clock=lambda: at(120), pool=pool)
    # Pass Tony over and page Michael: one decision (lock, reads, writes), the requests side by side in the
    # pool's threads (after one look at the 24-hour windows of them all), one outcome record, the look for
    # webhooks that came early; here each transaction's savepoint too.
    assert len(together) == len(alone) <= 21
    for escalation in escalations:
        assert list(Page.objects.filter(escalation=escalation).values_list("person_name", "state")) == [
            ("Tony", "passed_over"), ("Michael", "active")]
        assert refreshed(escalation).next_action_at == at(300)  # Michael's three channels: 180 s
    assert len(dispatch_mode.requests()) == 22


# --- A deadline waits, briefly, for webhooks received before it ---

def stored_read(message: Message, seconds: float):
    """Vonage's `read` as the web process stores it at `seconds`, not applied yet."""
    message.refresh_from_db()
    raw = json.dumps(v1_status(message, "read")).encode()
    return webhook_receive(kind_hint="status", raw_body=raw, authorization=None, now=at(seconds)).event


def test_a_read_stored_before_the_deadline_wins_over_it_even_if_not_applied_yet(messages_mode):
    escalation = fire(make_roster(TONY, MICHAEL))
    advance([escalation.pk], clock=lambda: at(0))
    stored_read(Message.objects.get(), 59.9)
    advance([escalation.pk], clock=lambda: at(60))
    assert sent(escalation) == [("Tony", 0, "messenger")]  # Tony's SMS is not sent: his read is pending
    assert refreshed(escalation).next_action_at == at(60.1)
    run_due(now=at(60.1))  # applies the read first, then nothing is due
    escalation = refreshed(escalation)
    assert (escalation.state, escalation.acknowledged_by_name) == ("acknowledged", "Tony")
    assert sent(escalation) == [("Tony", 0, "messenger")]


def test_a_webhook_stored_after_the_deadline_does_not_hold_it(messages_mode):
    escalation = fire(make_roster(TONY, MICHAEL))
    advance([escalation.pk], clock=lambda: at(0))
    stored_read(Message.objects.get(), 60.5)
    advance([escalation.pk], clock=lambda: at(61))
    assert sent(escalation) == [("Tony", 0, "messenger"), ("Tony", 1, "sms")]


def test_a_webhook_that_stays_pending_holds_a_deadline_only_for_the_grace(messages_mode):
    escalation = fire(make_roster(TONY, MICHAEL))
    advance([escalation.pk], clock=lambda: at(0))
    stored_read(Message.objects.get(), 59)  # say no worker manages to apply it
    advance([escalation.pk], clock=lambda: at(60))
    assert sent(escalation) == [("Tony", 0, "messenger")]
    advance([escalation.pk], clock=lambda: at(60 + PENDING_WEBHOOKS_GRACE.total_seconds()))
    assert sent(escalation) == [("Tony", 0, "messenger"), ("Tony", 1, "sms")]


def test_one_broken_escalation_is_logged_and_the_rest_of_the_pass_goes_on(messages_mode, caplog):
    roster = make_roster(TONY, MICHAEL)
    broken, healthy = fire(roster), fire(roster)
    Escalation.objects.filter(pk=broken.pk).update(plan={"rounds": 1, "people": []})  # a plan nobody can follow
    run_due(now=at(0))
    assert sent(healthy) == [("Tony", 0, "messenger")]
    assert sent(broken) == []
    assert f"advancing escalation {broken.pk} failed; it will be retried after its lease" in caplog.text
    assert refreshed(broken).next_action_at == at(30)  # its claim lease: due again then, not lost


def test_one_group_of_sends_records_each_outcome_on_its_own_terms(messages_mode):
    # Three sends side by side: one refused, one failing for now, one accepted (which is which is up to the
    # threads). Each outcome is recorded as it would be alone.
    messages_mode.fault("422", count=1)
    messages_mode.fault("500", count=1)
    roster = make_roster(TONY, MICHAEL)
    escalations = [fire(roster) for _ in range(3)]
    with SendPool(3) as pool:
        advance([e.pk for e in escalations], clock=lambda: at(0), pool=pool)
    outcomes = sorted((sent(e), refreshed(e).next_action_at) for e in escalations)
    assert outcomes == sorted([
        ([("Tony", 0, "messenger")], at(60)),  # accepted: waits for its expiry
        ([("Tony", 1, "sms")], at(60)),  # refused: the next channel went in the same advance
        ([], at(2)),  # failed for now: tried again after the backoff
    ])


def test_a_claim_that_would_run_out_before_its_request_is_given_back_not_sent(messages_mode):
    # A pass slowed down by a slow provider reaches this send at 25 s: its 30 s lease could run out during
    # the request (up to 13 s), and another worker would then send it too.
    escalation = fire(make_roster(TONY, MICHAEL))
    action = claimed_send(escalation, 0)
    assert perform([action], lambda: at(25)) == {escalation.pk}  # decide again at once
    assert messages_mode.requests() == []
    message = Message.objects.get(pk=action.message.pk)
    assert (message.claimed_until, message.send_attempts) == (None, 0)  # no attempt was made
    assert refreshed(escalation).next_action_at == at(25)
    run_due(now=at(25))
    message.refresh_from_db()
    assert (message.status, message.send_attempts) == ("submitted", 1)
    assert refreshed(escalation).next_action_at == at(85)


def test_with_a_lease_too_short_for_any_request_sends_are_still_made(messages_mode, settings):
    # A misconfiguration (check E005 reports it); giving every claim back would stall every escalation.
    settings.ESCALATION_SEND_LEASE_SECONDS = 10
    escalation = fire(make_roster(TONY, MICHAEL))
    action = claimed_send(escalation, 0)
    assert perform([action], lambda: at(0)) == set()
    assert Message.objects.get(pk=action.message.pk).status == "submitted"


def test_an_idle_worker_sleeps_until_the_next_timer_when_it_comes_before_the_next_poll(messages_mode):
    assert idle_wait(at(0), 0.1) == 0.1  # nothing active: the poll
    escalation = fire(make_roster(TONY, MICHAEL))
    run_due(now=at(0))
    assert refreshed(escalation).next_action_at == at(60)
    assert idle_wait(at(0), 0.1) == 0.1
    assert idle_wait(at(59.9), 0.1) == pytest.approx(0.1)
    assert idle_wait(at(59.93), 0.1) == pytest.approx(0.07)
    assert idle_wait(at(59.97), 0.1) == GATHER_SECONDS  # soon: wait a little longer, so timers share a pass
    assert idle_wait(at(61), 0.1) == GATHER_SECONDS  # due, yet not claimed: another worker holds it
