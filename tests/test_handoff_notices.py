"""Hand-off notices (issue 16): "You are on call in Primary from Sun 09:00 until Mon 09:00 (Europe/London)."
the schedule's minutes before a shift, through the Vonage client against the emulator, time injected.

The schedule: a daily 09:00 (London) rotation Tony, Michael, Tony... from Mon 23 March 2026, so Sunday 29
March, the spring change, is Tony's (09:00 BST = 08:00 UTC) and Monday 30 March Michael's.
"""

import json
import threading
from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.db import connection
from django.urls import reverse

from escalation.engine.handoff import LOOKAHEAD, plan_handoff_notices, run_handoff_notices
from escalation.engine.worker import run_due
from escalation.models import (
    Escalation,
    HandoffNotice,
    NoticeState,
    Person,
    Roster,
    RosterMember,
    Schedule,
    WebhookEvent,
)
from escalation.schedules.handoffs import Handoff, handoffs
from escalation.schedules.shifts import Override, OverrideMode, Rotation, Rules, Unit, shifts_between
from escalation.services.config import ConfigError, config_dumps, config_export, config_import
from escalation.services.escalations import escalation_fire
from escalation.services.schedules import override_create
from tests.applying import apply_stored_webhooks
from tests.conftest import requires_postgres
from tests.personas import ANNA, MICHAEL, TONY, make_person, make_senders
from tests.schedule_personas import make_schedule
from tests.test_schedule_config import SCHEDULED

SUNDAY_HANDOFF = datetime(2026, 3, 29, 8, 0, tzinfo=UTC)  # 09:00 BST, the first day of summer time
SUNDAY_NOTICE = SUNDAY_HANDOFF - timedelta(minutes=15)  # 08:45 local
MONDAY_HANDOFF = datetime(2026, 3, 30, 8, 0, tzinfo=UTC)


def make_primary(*, minutes: int | None = 15) -> Schedule:
    make_senders()
    tony, michael = make_person(*TONY), make_person(*MICHAEL)
    make_person(*ANNA)
    schedule = make_schedule("Primary", [tony, michael], handoff=date(2026, 3, 23), at=time(9), unit="days")
    schedule.handoff_notice_minutes = minutes
    schedule.save()
    return schedule


def sent_texts(emulator) -> list[tuple[str, str, str]]:
    """(path, channel, text) of each request the emulator accepted."""
    return [(r["path"], r["body"]["channel"], r["body"]["text"]) for r in emulator.requests() if r["status"] == 202]


def notices() -> list[tuple[str, datetime, str]]:
    return list(HandoffNotice.objects.order_by("shift_start", "person__name").values_list(
        "person__name", "shift_start", "state"))


# The pure part: hand-offs read from the one function's shifts.

def test_it_reads_a_hand_off_only_where_someone_goes_on_call():
    rotation = Rotation(participants=("tony", "michael"), shift_length=1, unit=Unit.DAYS,
                        first_handoff=datetime(2026, 3, 23, 9))
    add = Override(datetime(2026, 3, 28, 12, tzinfo=UTC), datetime(2026, 3, 28, 14, tzinfo=UTC), "anna",
                   OverrideMode.ADD, key=1)
    rules = Rules("Europe/London", (rotation,), (add,))
    found = handoffs(shifts_between(rules, datetime(2026, 3, 28, 10, tzinfo=UTC), SUNDAY_HANDOFF + timedelta(hours=1)))
    # Michael is on call from Saturday 09:00 already (no hand-off to him at the start, nor when Anna joins
    # him), Anna from 12:00 to 14:00, Tony from Sunday 09:00 BST, on call past the end of what was read.
    assert found == [Handoff("anna", add.start, add.end), Handoff("tony", SUNDAY_HANDOFF, None)]


# Through the worker's step, against the emulator.

@pytest.mark.django_db
def test_a_0900_hand_off_on_the_spring_change_gets_its_notice_at_0845_local(messages_mode):
    make_primary()
    run_handoff_notices(SUNDAY_NOTICE - timedelta(seconds=1))
    assert sent_texts(messages_mode) == []
    assert ("Tony", SUNDAY_HANDOFF, NoticeState.PENDING) in notices()
    run_handoff_notices(SUNDAY_NOTICE)
    # Tony's Messenger window is closed (he never wrote to us): his first channel that takes it is SMS.
    assert sent_texts(messages_mode) == [
        ("/v1/messages", "sms", "You are on call in Primary from Sun 09:00 until Mon 09:00 (Europe/London).")]
    notice = HandoffNotice.objects.get(person__name="Tony", shift_start=SUNDAY_HANDOFF)
    assert (notice.state, notice.to_address, notice.attempts) == (NoticeState.SENT, "447700900001", 1)
    assert notice.message_uuid is not None
    run_handoff_notices(SUNDAY_NOTICE + timedelta(minutes=1))
    assert len(sent_texts(messages_mode)) == 1


@pytest.mark.django_db
def test_it_sends_nothing_when_the_setting_is_off(messages_mode):
    make_primary(minutes=None)
    for minutes in range(0, 60, 5):
        run_due(now=SUNDAY_NOTICE + timedelta(minutes=minutes))
    assert (sent_texts(messages_mode), notices()) == ([], [])


@pytest.mark.django_db
def test_an_override_made_before_the_notice_changes_who_gets_it(messages_mode):
    schedule = make_primary()
    plan_handoff_notices(SUNDAY_NOTICE - LOOKAHEAD)
    assert notices() == [("Tony", SUNDAY_HANDOFF, NoticeState.PENDING)]
    # Anna covers Tony's Sunday, decided after Tony's notice was planned.
    override_create(schedule=schedule, person=Person.objects.get(name="Anna"), start=SUNDAY_HANDOFF,
                    end=MONDAY_HANDOFF)
    run_handoff_notices(SUNDAY_NOTICE)
    assert sent_texts(messages_mode) == [
        ("/v1/messages", "sms", "You are on call in Primary from Sun 09:00 until Mon 09:00 (Europe/London).")]
    assert messages_mode.requests()[0]["body"]["to"] == "447700900006"  # Anna's SMS: her WhatsApp window is shut
    tony = HandoffNotice.objects.get(person__name="Tony")
    assert tony.state == NoticeState.NOT_SENT
    assert tony.outcome == ("not sent: this shift is no longer theirs (an override or a change to the schedule "
                            "since)")
    assert HandoffNotice.objects.get(person__name="Anna").state == NoticeState.SENT


@pytest.mark.django_db
def test_a_hand_off_given_away_and_back_before_its_notice_is_due_is_told_after_all(messages_mode):
    schedule = make_primary()
    cover = override_create(schedule=schedule, person=Person.objects.get(name="Anna"), start=SUNDAY_HANDOFF,
                            end=MONDAY_HANDOFF)
    plan_handoff_notices(SUNDAY_NOTICE - LOOKAHEAD)
    tony = HandoffNotice.objects.create(schedule=schedule, person=Person.objects.get(name="Tony"),
                                        shift_start=SUNDAY_HANDOFF, due_at=SUNDAY_NOTICE,
                                        next_attempt_at=SUNDAY_NOTICE - LOOKAHEAD, created_at=SUNDAY_NOTICE - LOOKAHEAD)
    run_handoff_notices(SUNDAY_NOTICE - LOOKAHEAD)  # planned before the override, claimed after it
    tony.refresh_from_db()
    assert tony.state == NoticeState.NOT_SENT
    cover.delete()
    run_handoff_notices(SUNDAY_NOTICE)
    assert [text for _, _, text in sent_texts(messages_mode)] == [
        "You are on call in Primary from Sun 09:00 until Mon 09:00 (Europe/London)."]
    assert messages_mode.requests()[0]["body"]["to"] == "447700900001"
    assert HandoffNotice.objects.get(person__name="Anna").state == NoticeState.NOT_SENT


@pytest.mark.django_db
def test_dispatch_mode_sends_the_notice_with_the_messages_api_single_send(dispatch_mode):
    make_primary()
    run_handoff_notices(SUNDAY_NOTICE)
    assert [path for path, _, _ in sent_texts(dispatch_mode)] == ["/v1/messages"]


@pytest.mark.django_db
def test_a_provider_fault_is_retried_with_backoff_and_a_refusal_is_final(messages_mode):
    make_primary()
    messages_mode.fault("503")
    run_handoff_notices(SUNDAY_NOTICE)
    notice = HandoffNotice.objects.get(person__name="Tony")
    assert (notice.state, notice.next_attempt_at) == (NoticeState.PENDING, SUNDAY_NOTICE + timedelta(seconds=2))
    assert notice.outcome.startswith("retrying at 07:45:02 UTC")
    run_handoff_notices(SUNDAY_NOTICE + timedelta(seconds=1))  # not yet
    assert HandoffNotice.objects.get(pk=notice.pk).attempts == 1
    run_handoff_notices(SUNDAY_NOTICE + timedelta(seconds=2))
    notice.refresh_from_db()
    assert (notice.state, notice.attempts) == (NoticeState.SENT, 2)

    messages_mode.fault("422")
    run_handoff_notices(MONDAY_HANDOFF - timedelta(minutes=15))
    michael = HandoffNotice.objects.get(person__name="Michael", shift_start=MONDAY_HANDOFF)
    assert (michael.state, michael.next_attempt_at) == (NoticeState.FAILED, None)
    assert michael.outcome.startswith("Vonage refused it")


@pytest.mark.django_db
def test_the_worker_pass_sends_it_but_waits_while_an_escalation_is_held_by_vonage(messages_mode):
    schedule = make_primary()
    roster = Roster.objects.create(name="primary")
    RosterMember.objects.create(roster=roster, schedule=schedule)
    escalation = escalation_fire(roster=roster, message="disk full", now=SUNDAY_NOTICE - timedelta(hours=1))
    Escalation.objects.filter(pk=escalation.pk).update(held_since=SUNDAY_NOTICE, held_by="outage",
                                                       next_action_at=SUNDAY_NOTICE + timedelta(hours=1))
    run_due(now=SUNDAY_NOTICE)
    notice = HandoffNotice.objects.get(person__name="Tony")
    # Not even tried: its request would only wait on Vonage beside the pages.
    assert (notice.state, notice.attempts, notice.next_attempt_at) == (
        NoticeState.PENDING, 0, SUNDAY_NOTICE + timedelta(seconds=2))
    Escalation.objects.filter(pk=escalation.pk).update(held_since=None, held_by="")
    run_due(now=SUNDAY_NOTICE + timedelta(seconds=2))
    assert [text for path, _, text in sent_texts(messages_mode) if "on call in Primary" in text] == [
        "You are on call in Primary from Sun 09:00 until Mon 09:00 (Europe/London)."]


@pytest.mark.django_db
def test_a_fault_that_outlasts_the_time_before_the_shift_fails_the_notice(messages_mode):
    make_primary()
    messages_mode.fault("503", count=100)
    now = SUNDAY_NOTICE
    while now < SUNDAY_HANDOFF + timedelta(minutes=2):
        run_handoff_notices(now)
        now += timedelta(seconds=30)
    notice = HandoffNotice.objects.get(person__name="Tony")
    assert notice.state == NoticeState.FAILED
    assert notice.outcome.startswith("failed: the shift began before the notice could be sent; last retrying")
    assert notice.attempts <= 18  # passes 30 s apart, retries 2, 4, ... 60 s apart, and the claim that gives up


@pytest.mark.django_db(transaction=True)
def test_the_notices_delivery_comes_back_over_real_webhooks_to_its_row(messages_mode, app_emulator, admin_client):
    make_primary()
    app_emulator.scenario("447700900002", "read", after=2)  # Michael opens his Viber notice
    run_handoff_notices(SUNDAY_NOTICE)  # Tony's, on SMS: delivered, and SMS never reports a read
    run_handoff_notices(MONDAY_HANDOFF - timedelta(minutes=15))  # Michael's, on Viber

    def statuses() -> dict[str, str]:
        apply_stored_webhooks()  # as the worker does
        return dict(HandoffNotice.objects.values_list("person__name", "status"))

    app_emulator.wait_for(statuses, lambda s: s == {"Tony": "delivered", "Michael": "read"}, timeout=10)
    tony, michael = (HandoffNotice.objects.get(person__name=name) for name in ("Tony", "Michael"))
    assert tony.status_at is not None and michael.status_at is not None
    assert sorted(WebhookEvent.objects.values_list("result", flat=True)) == sorted(
        [f"hand-off notice #{tony.pk}: {status}" for status in ("submitted", "delivered")]
        + [f"hand-off notice #{michael.pk}: {status}" for status in ("submitted", "delivered", "read")])
    listing = admin_client.get(reverse("admin:escalation_handoffnotice_changelist")).content.decode()
    assert "delivered" in listing and "read" in listing
    detail = admin_client.get(reverse("admin:escalation_handoffnotice_change", args=[michael.pk])).content.decode()
    assert "You are on call in Primary from Mon 09:00 until Tue 09:00 (Europe/London)." in detail
    assert "read" in detail
    page = admin_client.get(reverse("admin:escalation_schedule_change", args=[tony.schedule_id])).content.decode()
    assert "; delivered at " in page and "; read at " in page


@pytest.mark.django_db
def test_the_schedule_page_shows_the_setting_and_the_last_and_next_notices(admin_client, messages_mode):
    schedule = make_primary()
    run_handoff_notices(SUNDAY_NOTICE)
    page = admin_client.get(reverse("admin:escalation_schedule_change", args=[schedule.pk])).content.decode()
    assert 'name="handoff_notice_minutes" value="15"' in page
    assert "sent at Sun 29 Mar 08:45: Tony, sent on sms 447700900001" in page
    assert "due at " in page and "'s shift from " in page
    schedule.handoff_notice_minutes = None
    schedule.save()
    page = admin_client.get(reverse("admin:escalation_schedule_change", args=[schedule.pk])).content.decode()
    assert "Off: set the minutes above" in page


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_send_each_notice_once(messages_mode):
    make_primary()
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            for minutes in range(0, 60 * (48 + 5), 15):  # two days of passes, both workers at each instant
                barrier.wait(timeout=30)
                run_handoff_notices(SUNDAY_NOTICE - timedelta(hours=4) + timedelta(minutes=minutes))
        except BaseException as error:  # noqa: BLE001 - reported by the test's thread
            failures.append(error)
            barrier.abort()
        finally:
            connection.close()  # the thread's own connection, or the test database cannot be dropped

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    texts = [text for _, _, text in sent_texts(messages_mode)]
    assert texts == [
        "You are on call in Primary from Sun 09:00 until Mon 09:00 (Europe/London).",
        "You are on call in Primary from Mon 09:00 until Tue 09:00 (Europe/London).",
        "You are on call in Primary from Tue 09:00 until Wed 09:00 (Europe/London).",
    ]
    assert HandoffNotice.objects.filter(state=NoticeState.SENT).count() == 3


@pytest.mark.django_db
def test_the_setting_is_part_of_the_config_file_and_comes_back_unchanged():
    config = json.loads(json.dumps(SCHEDULED))
    config["SCHEDULES"][0]["handoff_notice_minutes"] = 15
    config_import(raw=json.dumps(config).encode(), roster_name="ops")
    assert Schedule.objects.get(name="Primary").handoff_notice_minutes == 15
    exported = config_export(roster=Roster.objects.get(name="ops"))
    assert exported["SCHEDULES"][0]["handoff_notice_minutes"] == 15
    config_import(raw=config_dumps(exported).encode(), roster_name="ops")
    assert config_export(roster=Roster.objects.get(name="ops")) == exported
    config["SCHEDULES"][0]["handoff_notice_minutes"] = 0
    with pytest.raises(ConfigError, match="handoff_notice_minutes 0 is not a whole number from 1 to 1440"):
        config_import(raw=json.dumps(config).encode(), roster_name="ops")
