"""The thin management commands: escalate (the tutorial's `python3 app.py`), run_escalations --once, and the
project's own health: system checks and migrations in step with the models."""

import io
import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError

from escalation.models import Escalation, Message
from tests.personas import MICHAEL, TONY, make_roster


@pytest.mark.django_db
def test_escalate_fires_and_prints_the_id(emulator, settings):
    settings.ESCALATION_API = "messages"
    make_roster(TONY, MICHAEL)
    out = io.StringIO()
    call_command("escalate", "primary", "Main server down", stdout=out)
    escalation = Escalation.objects.get()
    assert out.getvalue().strip() == str(escalation.pk)
    assert escalation.fired_by_name == "command line"
    assert escalation.message == "Main server down"


@pytest.mark.django_db
def test_escalate_refuses_with_the_reason(emulator):
    make_roster(TONY, ("Solo", [("sms", "447700900010", 60, "delivered")]))
    with pytest.raises(CommandError, match="Solo has 1 channel"):
        call_command("escalate", "primary", "x")
    with pytest.raises(CommandError, match="No roster named 'nope'"):
        call_command("escalate", "nope", "x")
    assert not Escalation.objects.exists()


@pytest.mark.django_db
def test_run_escalations_once_sends_what_is_due(emulator, settings):
    settings.ESCALATION_API = "messages"
    make_roster(TONY, MICHAEL)
    call_command("escalate", "primary", "Disk full", stdout=io.StringIO())
    out = io.StringIO()
    call_command("run_escalations", "--once", stdout=out)
    assert out.getvalue().strip() == "advanced 1 escalation(s)"
    assert Message.objects.exclude(message_uuid=None).count() == 1
    assert emulator.requests()[0]["body"]["to"] == "23037543461244470"


@pytest.mark.django_db(transaction=True)
def test_escalate_follow_prints_events_until_the_end(emulator, settings):
    settings.ESCALATION_API = "messages"
    make_roster(TONY, MICHAEL)
    out = io.StringIO()

    def cancel_once_paged() -> None:
        from escalation.engine.worker import run_due
        from escalation.services.escalations import escalation_cancel

        while not Escalation.objects.exists():
            threading.Event().wait(0.02)
        run_due()
        # Cancel once the follower has said who is next (or after 5 s, and the assertion below fails).
        for _ in range(250):
            if "next:" in out.getvalue():
                break
            threading.Event().wait(0.02)
        escalation_cancel(escalation=Escalation.objects.get(), by_name="ops", reason="fixed")

    helper = threading.Thread(target=cancel_once_paged)
    helper.start()
    call_command("escalate", "primary", "API down", "--follow", "--poll", "0.05", stdout=out)
    helper.join()
    lines = out.getvalue().splitlines()
    events = [line for line in lines if not line.lstrip().startswith("next:")]
    assert [line.split()[1] for line in events[1:4]] == ["fired", "paged", "sent"]
    # Issue 15 §3: while it runs, who is next and when, from the frozen plan.
    assert any(line.strip().startswith("next: Tony on SMS at about ") for line in lines)
    assert "cancelled" in lines[-2]
    assert lines[-1] == f"escalation {lines[0]} cancelled: cancelled by ops: fixed"


def test_system_checks_are_clean_when_configured(settings):
    settings.VONAGE_SIGNATURE_SECRET = "configured"
    call_command("check", "--fail-level", "WARNING", stdout=io.StringIO(), stderr=io.StringIO())


def test_system_checks_name_missing_configuration(settings):
    settings.VONAGE_APPLICATION_ID = ""
    settings.ESCALATION_API = "sms-gateway"
    with pytest.raises(SystemCheckError) as failed:
        call_command("check", "--fail-level", "WARNING", stdout=io.StringIO(), stderr=io.StringIO())
    assert "escalation.E002" in str(failed.value)
    assert "escalation.W001" in str(failed.value)


@pytest.mark.django_db
def test_models_and_migrations_are_in_step():
    call_command("makemigrations", "--check", "--dry-run", stdout=io.StringIO())


@pytest.mark.parametrize("threads", ["0", "-1", "65", "abc"])
def test_the_worker_refuses_a_thread_count_out_of_range(threads):
    # --threads 0 fell back to WORKER_THREADS and -1 crashed the worker's pool: both now say what is allowed.
    with pytest.raises(CommandError) as refused:
        call_command("run_escalations", "--threads", threads, stdout=io.StringIO(), stderr=io.StringIO())
    assert f"--threads: must be an integer from 1 to 64, got '{threads}'" in str(refused.value)
