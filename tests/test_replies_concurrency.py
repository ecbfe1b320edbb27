"""Replies applied by two workers at the same moment, each in its own thread and database connection (the
point of it is PostgreSQL; on SQLite the threads take turns): each reply acknowledges exactly the escalation
it answers, once, and neither worker fails or deadlocks."""

import json
import threading
import uuid
from collections.abc import Callable

import pytest
from django.db import connection

from escalation.engine.intake import webhook_apply
from escalation.models import Escalation, Event, WebhookEvent
from escalation.services.escalations import escalation_fire
from escalation.services.webhooks import webhook_receive
from tests.personas import ANNA, MICHAEL, SENDERS, TONY, make_person, make_senders
from tests.test_replies import roster
from tests.test_webhooks import T0, paged, sent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def two_escalations(settings) -> tuple[Escalation, Escalation]:
    """Tony paged on Messenger by two unrelated escalations; the second's message is the latest."""
    settings.ESCALATION_API = "messages"
    make_senders()
    tony = make_person(*TONY)
    escalations = []
    for name, other in (("web", MICHAEL), ("database", ANNA)):
        escalation = escalation_fire(roster=roster(name, tony, make_person(*other)), message="down", now=T0)
        sent(paged(escalation), 0)
        escalations.append(escalation)
    return escalations[0], escalations[1]


def store_reply(text: str) -> int:
    body = {"channel": "messenger", "message_uuid": str(uuid.uuid4()), "to": SENDERS["messenger"],
            "from": TONY[1][0][1], "timestamp": "2026-03-01T10:00:05Z", "message_type": "text", "text": text}
    return webhook_receive(kind_hint="inbound", raw_body=json.dumps(body).encode(), authorization=None,
                           now=T0).event.pk


def apply_together(event_ids: list[int]) -> list[Exception]:
    barrier, errors = threading.Barrier(len(event_ids)), []

    def run(event_id: int) -> None:
        try:
            barrier.wait(timeout=10)
            webhook_apply(event_id, now=T0)
        except Exception as e:  # reported by the test, not lost in the thread
            errors.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(event_id,)) for event_id in event_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return errors


def acknowledgements(escalation: Escalation) -> int:
    return Event.objects.filter(escalation=escalation, kind="acknowledged").count()


@pytest.mark.parametrize("texts", [
    lambda web, database: [f"#{web.pk}", f"#{database.pk}"],  # each names its own
    lambda web, database: ["on it", "me too"],  # both answer the latest page
])
def test_simultaneous_replies_each_acknowledge_only_what_they_answer(two_escalations, texts: Callable):
    web, database = two_escalations
    for _ in range(5):
        Escalation.objects.update(state="active", ended_at=None, acknowledged_by=None, acknowledged_by_name="")
        Event.objects.all().delete()
        WebhookEvent.objects.all().delete()
        named = texts(web, database)
        assert apply_together([store_reply(text) for text in named]) == []
        web.refresh_from_db()
        database.refresh_from_db()
        if named[0].startswith("#"):
            assert (web.state, database.state) == ("acknowledged", "acknowledged")
            assert (acknowledgements(web), acknowledgements(database)) == (1, 1)
        else:
            assert (web.state, database.state) == ("active", "acknowledged")
            assert (acknowledgements(web), acknowledgements(database)) == (0, 1)
        assert not WebhookEvent.objects.filter(applied_at=None).exists()
