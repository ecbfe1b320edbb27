"""Monitoring integrations (each notification's alerts are triggered or resolved) and a person's channel test.

What a firing or resolved alert does is the alert's lifecycle, `escalation.services.alerts`; this module
finds the integration for a URL and hands it each alert of a notification.
"""

import hmac
import re
from datetime import datetime

from django.utils import timezone

from escalation.engine.plan import personal_text
from escalation.engine.provider import get_client
from escalation.engine.windows import TemplateValues, choose, open_windows, sender_settings
from escalation.integrations.parse import FIRING, AlertNotice
from escalation.models import (
    STATUS_RANK,
    ChannelTest,
    ChannelType,
    Integration,
    MessageStatus,
    Person,
    Sender,
)
from escalation.models.integrations import new_token
from escalation.models.runs import new_client_ref
from escalation.services.alerts import AlertOutcome, alert_resolve, alert_trigger
from escalation.vonage import VonageError

# The candidates for a token are fetched by its first characters and the whole token is then compared in
# constant time: the indexed lookup can at most leak (by timing) these few characters, never the rest.
TOKEN_LOOKUP_PREFIX = 8
TOKEN_CHARACTERS = re.compile(r"[A-Za-z0-9_-]+")


def integration_find(*, token: str) -> Integration | None:
    """The integration whose token this is, enabled or not; None for any other string."""
    # Tokens are URL-safe base64 (new_token); anything else is nobody's, and a NUL would make PostgreSQL
    # refuse the lookup itself.
    if len(token) < TOKEN_LOOKUP_PREFIX or not TOKEN_CHARACTERS.fullmatch(token):
        return None
    given = token.encode()
    found = None
    # SQLite's LIKE is case-insensitive, so this may return more than one candidate: the digest decides.
    for candidate in Integration.objects.filter(token__startswith=token[:TOKEN_LOOKUP_PREFIX]):
        if hmac.compare_digest(candidate.token.encode(), given):
            found = candidate
    return found


def integration_rotate_token(*, integration: Integration) -> Integration:
    """A new secret URL; the old one stops working at once (it answers 404 like any unknown token)."""
    integration.token = new_token()
    integration.save(update_fields=["token"])
    return integration


def integration_receive(*, integration: Integration, notices: list[AlertNotice], now: datetime | None = None
                        ) -> list[AlertOutcome]:
    """Act on one notification's alerts, in order.

    Raises FireRefused (from escalation_fire) when the roster cannot be paged; alerts before the refused
    one have been acted on.
    """
    now = now or timezone.now()
    return [
        alert_trigger(integration=integration, dedup_key=notice.dedup_key, title=notice.title,
                      summary=notice.summary, now=now)
        if notice.status == FIRING else alert_resolve(integration=integration, dedup_key=notice.dedup_key, now=now)
        for notice in notices
    ]


def channel_test_text(person: Person, channel_type: str) -> str:
    label = ChannelType(channel_type).label
    return personal_text(
        person.name, f"this is a test message on {label} from the on-call escalation service. No action needed."
    )


def channel_test_send(*, person: Person, now: datetime | None = None) -> list[ChannelTest]:
    """Send one Messages API message to each of the person's channels; statuses arrive by webhook.

    Each test is recorded as queued before its request, so a status webhook that beats our own update
    still finds it (by client_ref), and our update never moves a status back down the ladder.
    """
    now = now or timezone.now()
    senders = {sender.channel_type: sender for sender in Sender.objects.all()}
    channels = [
        {"type": c.type, "address": c.address, "expiry_time": c.expiry_time, "condition": c.condition,
         "sender": senders[c.type].sender_id if c.type in senders else "", **sender_settings(senders.get(c.type))}
        for c in person.channels.order_by("position", "id")
    ]
    # The same rule as a page: free-form only inside the person's 24-hour window (engine/windows.py).
    opened = open_windows(channels, now)
    tests = []
    for plan_channel in channels:
        test = ChannelTest.objects.create(
            person=person, channel_type=plan_channel["type"], to_address=plan_channel["address"],
            client_ref=new_client_ref(), created_at=now, updated_at=now,
        )
        label = ChannelType(plan_channel["type"]).label
        text = channel_test_text(person, plan_channel["type"])
        values = TemplateValues(text=text, escalation="test", person=person.name, roster="test")
        choice = choose(plan_channel, window_open=(plan_channel["type"], plan_channel["address"]) in opened,
                        values=values)
        if not plan_channel["sender"]:
            _test_failed(test, f"No sender is configured for {label}: add one under Senders.", now)
        elif choice.skipped:
            _test_failed(test, f"Not sent: {choice.label}.", now)
        else:
            ChannelTest.objects.filter(pk=test.pk).update(form=choice.label[:200])
            try:
                message_uuid = get_client().send_message(channel=plan_channel, text=text, client_ref=test.client_ref,
                                                         form=choice.form)
            except VonageError as e:
                _test_failed(test, str(e), now)
            else:
                ChannelTest.objects.filter(pk=test.pk).update(message_uuid=message_uuid)
                ChannelTest.objects.filter(pk=test.pk, status_rank__lt=STATUS_RANK[MessageStatus.SUBMITTED]).update(
                    status=MessageStatus.SUBMITTED, status_rank=STATUS_RANK[MessageStatus.SUBMITTED], updated_at=now
                )
        test.refresh_from_db()
        tests.append(test)
    return tests


def _test_failed(test: ChannelTest, error: str, now: datetime) -> None:
    ChannelTest.objects.filter(pk=test.pk).update(
        status=MessageStatus.FAILED, status_rank=STATUS_RANK[MessageStatus.FAILED], error=error, updated_at=now
    )
