"""Issue 13 §1: a provider fault is not a person's fault. The escalation holds at its step, retries with
capped backoff, raises the banner and logs the fault once; it pages its person when Vonage recovers.

Time is explicit: every worker pass gets its `now` (controlled seconds), the emulator injects the faults,
and a hanging Vonage costs only VONAGE_READ_TIMEOUT of real time per request.
"""

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from escalation.engine.heartbeat import Heartbeat
from escalation.engine.hold import provider_faults
from escalation.engine.worker import run_due
from escalation.models import Escalation, Event, Message, Page, WorkerHeartbeat
from escalation.services.alarms import current_alarms
from escalation.services.escalations import escalation_fire
from escalation.vonage.errors import FAILURE_CLASSES, Blame, classify_status
from tests.personas import MICHAEL, TONY, make_roster

pytestmark = pytest.mark.django_db

# The outage of the issue: 30 s of each kind, back to back, then Vonage recovers at 90 s.
OUTAGE = [("401", 0, "Vonage refuses our credentials (401)"), ("503", 30, "Vonage is failing (503)"),
          ("hang", 60, "Vonage does not answer in time")]
RECOVERY = 90


# Controlled time starts when each test does: the banner, rendered by the web app, reads the real clock.
_start = [timezone.now()]


def at(seconds: float):
    return _start[0] + timedelta(seconds=seconds)


@pytest.fixture(autouse=True)
def _fresh_start():
    _start[0] = timezone.now().replace(microsecond=0)
    provider_faults.reset()  # the log's memory of faults is per process; each test starts with none
    yield
    provider_faults.reset()


@pytest.fixture
def hanging_briefly(settings):
    # A hung request costs its read timeout in real time: keep it short, and the hang longer than it.
    settings.VONAGE_READ_TIMEOUT = 0.2
    settings.VONAGE_CONNECT_TIMEOUT = 0.2


def fire_at(roster, seconds: float) -> Escalation:
    return escalation_fire(roster=roster, message="Main server down", fired_by_name="test", now=at(seconds))


def first_page_sent_at(escalation: Escalation):
    """When Vonage accepted the first send to the escalation's first person (None if never)."""
    page = Page.objects.get(escalation=escalation, round=1, index=0)
    if escalation.api == "dispatch":
        return page.dispatch_requested_at if page.dispatch_uuid else None
    first = Message.objects.filter(page=page, channel_index=0).exclude(message_uuid=None).first()
    return first.sent_at if first else None


def banner(admin_client) -> str:
    html = admin_client.get("/admin/").content.decode()
    if 'id="alarms"' not in html:
        return ""
    return html.split('id="alarms"', 1)[1].split("</div>", 1)[0]


@pytest.mark.parametrize("api", ["messages", "dispatch"])
def test_it_holds_through_401_then_503_then_a_hang_and_pages_everyone_after_recovery(
        api, settings, emulator, hanging_briefly, admin_client, caplog):
    settings.ESCALATION_API = api
    settings.ESCALATION_RETRY_BASE_SECONDS = 2
    settings.ESCALATION_RETRY_CAP_SECONDS = 60
    emulator.configure(hang_seconds=5)
    caplog.set_level(logging.INFO, logger="escalation.engine.hold")
    roster = make_roster(TONY, MICHAEL)
    heartbeat = Heartbeat("test-worker")
    fired, banners = {}, {}
    phases = {start: (mode, text) for mode, start, text in OUTAGE}
    for second in range(0, 181):
        if second in phases:
            emulator.clear_faults()
            emulator.fault(phases[second][0], count=10_000)
        if second == RECOVERY:
            emulator.clear_faults()
        if second % 10 == 0 and second < RECOVERY:
            fired[second] = fire_at(roster, second)  # 9 escalations, 3 in each kind of fault
        run_due(now=at(second), heartbeat=heartbeat)
        if second % 30 == 29:
            banners[second] = banner(admin_client)

    for mode, start, text in OUTAGE:
        assert text in banners[start + 29], (mode, banners[start + 29])
    assert "escalations are waiting to page" in banners[29]
    assert banners[179] == ""
    for second, escalation in fired.items():
        escalation.refresh_from_db()
        assert escalation.state == "active", (second, escalation.outcome)
        paged = first_page_sent_at(escalation)
        assert paged is not None and paged >= at(RECOVERY), (second, paged)
        tony = Page.objects.get(escalation=escalation, index=0)
        assert tony.state == "active"  # never passed over for Vonage's fault
        # Tony's wait starts over at the send that went out: his full expiry (Dispatch: both channels).
        if api == "messages":
            assert Message.objects.get(page=tony, channel_index=0).deadline == paged + timedelta(seconds=60)
        else:
            assert tony.deadline == paged + timedelta(seconds=120)
        assert (escalation.held_since, escalation.held_by) == (None, "")
    assert Escalation.objects.count() == 9
    assert not Escalation.objects.filter(state__in=["exhausted", "failed"]).exists()
    ours = [r for r in caplog.records if r.name.startswith("escalation.")]  # not the emulator's broken pipes
    errors = [r.getMessage() for r in ours if r.levelno >= logging.ERROR]
    cleared = [r.getMessage() for r in ours if r.getMessage().startswith("Cleared")]
    assert [text for _, _, text in OUTAGE] == [e.split(" since ")[0] for e in errors]
    assert sorted(c.split(": ", 1)[1].split(" from ")[0] for c in cleared) == sorted(t for _, _, t in OUTAGE)


def test_it_ends_failed_not_exhausted_when_the_fault_outlasts_the_horizon(messages_mode, settings, admin_client):
    settings.ESCALATION_HOLD_HORIZON_SECONDS = 60
    messages_mode.fault("401", count=1000)
    escalation = fire_at(make_roster(TONY, MICHAEL), 0)
    for second in range(0, 121):
        run_due(now=at(second))
    escalation.refresh_from_db()
    assert escalation.state == "failed"
    assert escalation.ended_at == at(60)  # the last retry is made at the horizon, then it gives up
    assert "Vonage refuses our credentials (401) for 60 s: nobody could be paged" in escalation.outcome
    assert list(Page.objects.filter(escalation=escalation).values_list("person_name", "state")) == [("Tony", "stopped")]
    assert Event.objects.filter(escalation=escalation, kind="failed").count() == 1
    assert escalation.next_action_at is None


def test_a_refusal_of_the_recipient_still_moves_on_at_once(messages_mode):
    messages_mode.fault("422", count=1)  # Vonage's 422 on `to`: this channel, not Vonage, is the problem
    escalation = fire_at(make_roster(TONY, MICHAEL), 0)
    run_due(now=at(0))
    assert list(Message.objects.filter(page__escalation=escalation).order_by("channel_index")
                .values_list("channel_index", "status")) == [(0, "failed"), (1, "submitted")]
    escalation.refresh_from_db()
    assert escalation.held_since is None


def test_it_raises_the_alarm_when_no_worker_has_run_lately(dispatch_mode):
    fire_at(make_roster(TONY, MICHAEL), 0)
    assert [a.key for a in current_alarms(now=at(0))] == ["worker:silent"]  # never ran, and one is waiting
    heartbeat = Heartbeat("worker-a")
    run_due(now=at(0), heartbeat=heartbeat)
    assert current_alarms(now=at(30)) == []
    [alarm] = current_alarms(now=at(31))
    assert (alarm.key, alarm.since) == ("worker:silent", at(0))
    assert alarm.text == f"No escalation worker has run since {at(0):%H:%M:%S} UTC."
    run_due(now=at(31), heartbeat=heartbeat)
    assert current_alarms(now=at(31)) == []


def test_it_raises_the_alarm_for_a_timer_overdue_by_more_than_30_seconds(dispatch_mode):
    escalation = fire_at(make_roster(TONY, MICHAEL), 0)
    run_due(now=at(0), heartbeat=Heartbeat("worker-a"))
    deadline = Escalation.objects.get(pk=escalation.pk).next_action_at
    WorkerHeartbeat.objects.update(last_pass_at=deadline + timedelta(seconds=31))  # a worker runs, yet...
    [alarm] = current_alarms(now=deadline + timedelta(seconds=31))
    assert (alarm.key, alarm.since) == ("timers:overdue", deadline)
    assert alarm.text.startswith("1 escalation is overdue: the oldest timer fell due at ")
    assert current_alarms(now=deadline + timedelta(seconds=30)) == []


def test_it_beats_at_most_once_a_second(dispatch_mode, django_assert_num_queries):
    heartbeat = Heartbeat("worker-a")
    heartbeat.beat(at(0))
    with django_assert_num_queries(0):
        heartbeat.beat(at(0.5))
    with django_assert_num_queries(1):
        heartbeat.beat(at(1))
    assert WorkerHeartbeat.objects.get(name="worker-a").last_pass_at == at(1)


def test_the_banner_costs_a_few_queries_and_shows_nothing_to_anonymous_visitors(client, admin_client,
                                                                                 django_assert_max_num_queries):
    assert "alarms" not in client.get("/admin/login/").content.decode()
    admin_client.get("/admin/")  # warm the session
    with django_assert_max_num_queries(9):  # session, user, and the alarm sources' four (with refused alerts)
        admin_client.get("/admin/")


@pytest.mark.parametrize("status, blame", [(400, "recipient"), (401, "provider"), (403, "provider"),
                                           (404, "provider"), (408, "provider"), (415, "provider"),
                                           (422, "recipient"), (429, "provider"), (500, "provider"),
                                           (502, "provider"), (503, "provider")])
def test_it_blames_each_status_on_whoever_it_is_about(status, blame):
    assert classify_status(status, {}).blame == blame


def test_the_classification_table_has_one_row_per_code():
    codes = [failure.code for failure in FAILURE_CLASSES]
    assert len(codes) == len(set(codes))
    assert {failure.blame for failure in FAILURE_CLASSES} == set(Blame)


def test_the_readme_lists_every_failure_class():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for failure in FAILURE_CLASSES:
        action = "moves on" if failure.blame == Blame.RECIPIENT else "holds"
        assert f"| `{failure.code}` |" in readme and f"| {action} |" in readme, failure.code
        row = readme.split(f"| `{failure.code}` |", 1)[1].split("\n", 1)[0]
        assert row.rstrip().endswith(f"| {action} |"), (failure.code, row)
