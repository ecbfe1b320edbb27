"""Monitoring integrations (alerts fire, join or end escalations) and a person's channel test.

Alerts: a firing alert fires an escalation on the integration's roster, unless the same alert (same
integration and dedup key) already has an active one, in which case it is noted there. A resolved alert
cancels its active escalation ("resolved at source") so nobody else is paged. The database holds the
invariant (`one_active_per_alert`); the look-before-fire below is only the common path.
"""

import hashlib
import hmac
import re
from dataclasses import asdict, dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from escalation.engine.events import record_event
from escalation.engine.plan import page_text_length, personal_text, text_limit
from escalation.engine.windows import TemplateValues, choose, open_windows, sender_settings
from escalation.integrations.parse import FIRING, Alert
from escalation.models import (
    STATUS_RANK,
    TEXT_LIMITS,
    Channel,
    ChannelTest,
    ChannelType,
    Escalation,
    EscalationState,
    EventKind,
    Integration,
    MessageStatus,
    Person,
    Roster,
    Sender,
)
from escalation.models.integrations import new_token
from escalation.models.runs import new_client_ref
from escalation.services.escalations import escalation_cancel, escalation_fire
from escalation.vonage import VonageError, get_client

# The candidates for a token are fetched by its first characters and the whole token is then compared in
# constant time: the indexed lookup can at most leak (by timing) these few characters, never the rest.
TOKEN_LOOKUP_PREFIX = 8
TOKEN_CHARACTERS = re.compile(r"[A-Za-z0-9_-]+")
# ASCII, not "…": one non-GSM character would switch a whole SMS to UCS-2 and shrink what fits.
ELLIPSIS = "..."


@dataclass(frozen=True)
class AlertResult:
    dedup_key: str
    result: str  # "fired", "noted", "cancelled", "not active"
    escalation_id: int | None
    # How an escalation that was not active had ended: "acknowledged" (someone confirmed) or "reached" (a
    # message was delivered, nobody confirmed), "cancelled", "exhausted"; empty otherwise.
    ended: str = ""

    def as_dict(self) -> dict:
        answer = asdict(self)
        if not self.ended:
            del answer["ended"]  # only an escalation that had ended says how
        return answer


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


def alert_digest(dedup_key: str) -> str:
    """A short, stable stand-in for a dedup key in links: group keys are long and a page's text is not."""
    return hashlib.sha256(dedup_key.encode()).hexdigest()[:16]


def alert_link(integration: Integration, dedup_key: str) -> str:
    """Where a paged person lands: the admin redirects it to the newest escalation for this alert.

    The escalation's own URL is unknown until it is created, and the message is frozen into its plan when
    it is created, so the link names the alert instead.
    """
    path = reverse("admin:escalation_integration_alert", args=[integration.pk, alert_digest(dedup_key)])
    return settings.SITE_URL + path


def text_budget(roster: Roster) -> int:
    """The longest message every channel on the roster can carry, after the recipient's name (and room for the
    "reply N" line) is added."""
    channels = Channel.objects.filter(
        person__memberships__roster=roster, person__is_active=True
    ).select_related("person")
    budgets = [text_limit(c.type) - page_text_length(c.person.name, "") for c in channels]
    return min(budgets, default=min(TEXT_LIMITS.values()))


def clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: max(limit - len(ELLIPSIS), 0)].rstrip() + ELLIPSIS


def alert_message(alert: Alert, *, link: str, budget: int) -> str:
    """The page's text: what is wrong first (it is what fits on a lock screen), the link last."""
    text = ": ".join(part for part in (alert.title, alert.summary) if part) or "Alert"
    return clip(text, budget - len(link) - 1) + " " + link


def integration_receive(*, integration: Integration, alerts: list[Alert], now: datetime | None = None
                        ) -> list[AlertResult]:
    """Act on one notification's alerts, in order.

    Raises FireRefused (from escalation_fire) when the roster cannot be paged; alerts before the refused
    one have been acted on.
    """
    now = now or timezone.now()
    return [
        _fire_or_join(integration, alert, now) if alert.status == FIRING else _resolve(integration, alert, now)
        for alert in alerts
    ]


def _by_name(integration: Integration) -> str:
    return f"integration {integration.name}"


def _active(integration: Integration, dedup_key: str) -> Escalation | None:
    return Escalation.objects.filter(
        integration=integration, dedup_key=dedup_key, state=EscalationState.ACTIVE
    ).first()


def _note_repeat(escalation: Escalation, integration: Integration, alert: Alert, now: datetime) -> AlertResult:
    text = ": ".join(part for part in (alert.title, alert.summary) if part)
    record_event(escalation, EventKind.NOTE, f"Still firing at {integration.name}: {text}", at=now)
    return AlertResult(alert.dedup_key, "noted", escalation.pk)


def _fire_or_join(integration: Integration, alert: Alert, now: datetime) -> AlertResult:
    existing = _active(integration, alert.dedup_key)
    if existing is not None:
        return _note_repeat(existing, integration, alert, now)
    roster = integration.roster
    message = alert_message(alert, link=alert_link(integration, alert.dedup_key), budget=text_budget(roster))
    try:
        # A savepoint, so that losing the race below leaves the caller's transaction usable.
        with transaction.atomic():
            escalation = escalation_fire(
                roster=roster, message=message, fired_by_name=_by_name(integration),
                integration=integration, dedup_key=alert.dedup_key, now=now,
            )
    except IntegrityError:
        # Alertmanager HA pairs and retries deliver the same notification concurrently: the other request
        # fired between our look and our insert (one_active_per_alert), so join its escalation.
        existing = _active(integration, alert.dedup_key)
        if existing is None:
            raise
        return _note_repeat(existing, integration, alert, now)
    return AlertResult(alert.dedup_key, "fired", escalation.pk)


def _resolve(integration: Integration, alert: Alert, now: datetime) -> AlertResult:
    existing = _active(integration, alert.dedup_key)
    if existing is None:
        latest = Escalation.objects.filter(integration=integration, dedup_key=alert.dedup_key).first()
        if latest is None:
            return AlertResult(alert.dedup_key, "not active", None)
        # Already ended: the timeline still shows when the source recovered, and how the paging had ended.
        record_event(latest, EventKind.NOTE, f"Resolved at source ({integration.name}); the escalation had "
                                             f"already ended {latest.state}: {latest.outcome}", at=now)
        return AlertResult(alert.dedup_key, "not active", latest.pk, ended=latest.state)
    cancelled = escalation_cancel(escalation=existing, by_name=_by_name(integration),
                                  reason="resolved at source", now=now)
    if cancelled:
        return AlertResult(alert.dedup_key, "cancelled", existing.pk)
    # Not cancelled: someone acknowledged or was reached a moment ago, which already stopped the paging.
    existing.refresh_from_db(fields=["state"])
    return AlertResult(alert.dedup_key, "not active", existing.pk, ended=existing.state)


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
