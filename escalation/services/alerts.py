"""The life of an alert: trigger, acknowledge, resolve, by (integration, alert key).

- **trigger** with nothing open for the key opens an alert and fires an escalation on the integration's
  roster. While the alert is open a trigger is a repeat: noted on its escalation, nobody paged, unless
  nobody owns the alert any more (its escalation ended exhausted or failed: everyone was tried and nobody
  answered, so a source still firing pages again), or the integration's acknowledgement timeout has run out.
- **acknowledge**: someone owns it. Reaching someone through its escalation (a read, a reply, the admin's
  acknowledge or cancel) does the same, through `Alert.objects.owned_through` in the transaction that ends
  the escalation.
- **resolve**: the incident is over; its escalation, if still paging, is cancelled. The next trigger for
  the key opens a new alert.

Alertmanager, Grafana and generic bodies come here through `integration_receive`; a PagerDuty Events v2
endpoint maps trigger / acknowledge / resolve by `dedup_key` onto the same three functions.

The acknowledgement timeout is checked when a firing repeat arrives rather than by a timer: a repeat is
the only evidence that the alert still fires (a source that went away without resolving must not page
people), and it needs nothing from the worker. Its precision is the sender's repeat interval.
"""

import hashlib
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.timezone import localtime

from escalation.engine.events import record_event
from escalation.engine.plan import page_text_length, text_limit
from escalation.models import (
    TEXT_LIMITS,
    Alert,
    AlertState,
    Channel,
    Escalation,
    EscalationState,
    EventKind,
    Integration,
    Roster,
)
from escalation.services.escalations import escalation_acknowledge, escalation_cancel, escalation_fire

# ASCII, not "…": one non-GSM character would switch a whole SMS to UCS-2 and shrink what fits.
ELLIPSIS = "..."


@dataclass(frozen=True)
class AlertOutcome:
    dedup_key: str
    result: str  # "fired", "noted", "acknowledged", "resolved", "not open"
    alert_id: int | None
    escalation_id: int | None

    def as_dict(self) -> dict:
        return asdict(self)


def alert_digest(dedup_key: str) -> str:
    """A short, stable stand-in for an alert key in links: group keys are long and a page's text is not."""
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


def alert_message(title: str, summary: str, *, link: str, budget: int) -> str:
    """The page's text: what is wrong first (it is what fits on a lock screen), the link last."""
    text = ": ".join(part for part in (title, summary) if part) or "Alert"
    return clip(text, budget - len(link) - 1) + " " + link


def alert_trigger(*, integration: Integration, dedup_key: str, title: str = "", summary: str = "",
                  now: datetime | None = None) -> AlertOutcome:
    """A firing notification. Raises FireRefused (nothing changed) when the roster cannot be paged."""
    now = now or timezone.now()
    with transaction.atomic():
        alert, opened = _open_or_join(integration, dedup_key, title=title, summary=summary, now=now)
        if opened:
            _escalate(alert, integration, now, title=title, summary=summary)
            return _outcome(alert, "fired")
        alert.last_fired_at = now
        alert.repeats += 1
        alert.title, alert.summary = title[:300] or alert.title, summary[:500] or alert.summary
        said = ": ".join(part for part in (title, summary) if part)
        if alert.state == AlertState.ACKNOWLEDGED and not _ack_timed_out(alert, integration, now):
            owner = f"acknowledged by {alert.acknowledged_by_name} at {_hhmm(alert.acknowledged_at)}"
            result = _note(alert, f"Still firing at {integration.name} ({owner}; nobody paged): {said}", now)
        elif alert.state == AlertState.ACKNOWLEDGED:
            previous = alert.escalation_id
            _note(alert, f"Still firing at {integration.name} {integration.ack_timeout_hours} h after "
                         f"{alert.acknowledged_by_name}'s acknowledgement: paging again.", now)
            alert.state, alert.acknowledged_at, alert.acknowledged_by_name = AlertState.TRIGGERED, None, ""
            _escalate(alert, integration, now, title=title, summary=summary,
                      why=f"the acknowledgement of #{previous} timed out")
            result = "fired"
        elif _is_paging(alert):
            result = _note(alert, f"Still firing at {integration.name}: {said}", now)
        else:
            # Its escalation ended and nobody owns it (exhausted, failed, or deleted): it still fires.
            _escalate(alert, integration, now, title=title, summary=summary,
                      why="still firing and nobody has acknowledged it")
            result = "fired"
        alert.save()
    return _outcome(alert, result)


def alert_acknowledge(*, integration: Integration, dedup_key: str, by_name: str,
                      now: datetime | None = None) -> AlertOutcome:
    """Someone owns the open alert for this key: its escalation stops, repeats page nobody."""
    now = now or timezone.now()
    with transaction.atomic():
        alert = _lock_open(integration.pk, dedup_key)
        if alert is None:
            return AlertOutcome(dedup_key, "not open", None, None)
        return _acknowledge_locked(alert, by_name=by_name, now=now)


def alert_acknowledge_one(*, alert: Alert, by_name: str, now: datetime | None = None) -> bool:
    """The admin's acknowledge of one alert; False if it is not triggered any more."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _lock(alert.pk)
        if locked is None or locked.state != AlertState.TRIGGERED:
            return False
        _acknowledge_locked(locked, by_name=by_name, now=now)
    return True


def alert_resolve(*, integration: Integration, dedup_key: str, now: datetime | None = None) -> AlertOutcome:
    """The source says the alert is over."""
    now = now or timezone.now()
    with transaction.atomic():
        alert = _lock_open(integration.pk, dedup_key)
        if alert is None:
            return AlertOutcome(dedup_key, "not open", None, None)
        _resolve_locked(alert, by_name=f"integration {integration.name}", reason="resolved at source",
                        note=f"Resolved at source ({integration.name}).", now=now)
    return _outcome(alert, "resolved")


def alert_resolve_one(*, alert: Alert, by_name: str, now: datetime | None = None) -> bool:
    """An admin resolves one alert (the source never will, or it went away); False if already resolved."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _lock(alert.pk)
        if locked is None or locked.state == AlertState.RESOLVED:
            return False
        _resolve_locked(locked, by_name=by_name, reason="alert resolved", note=f"Alert resolved by {by_name}.",
                        now=now)
    return True


def _outcome(alert: Alert, result: str) -> AlertOutcome:
    return AlertOutcome(alert.dedup_key, result, alert.pk, alert.escalation_id)


def _hhmm(moment: datetime | None) -> str:
    return localtime(moment).strftime("%H:%M") if moment else "?"


def _lock(alert_id: int) -> Alert | None:
    """One alert, locked, with its escalation locked first (see _lock_open)."""
    while True:
        escalation_id = Alert.objects.filter(pk=alert_id).values_list("escalation_id", flat=True).first()
        if escalation_id is not None:
            list(Escalation.objects.select_for_update().filter(pk=escalation_id).values_list("pk", flat=True))
        alert = Alert.objects.select_for_update().filter(pk=alert_id).first()
        if alert is None or alert.escalation_id == escalation_id:
            return alert
        # It was escalated again between the look and the lock: lock the new escalation instead.


def _lock_open(integration_id: int, dedup_key: str) -> Alert | None:
    """The open alert for this key, locked, or None.

    Locks its escalation first: acknowledging an escalation (a webhook, the admin) locks the escalation and
    then updates its alert (Alert.objects.owned_through), so the other order here could deadlock.
    """
    while True:
        alert_id = (Alert.objects.open().filter(integration_id=integration_id, dedup_key=dedup_key)
                    .values_list("pk", flat=True).first())
        if alert_id is None:
            return None
        alert = _lock(alert_id)
        if alert is not None and alert.state != AlertState.RESOLVED:
            return alert
        # Resolved between the look and the lock: whatever is open for the key now, if anything.


def _open_or_join(integration: Integration, dedup_key: str, *, title: str, summary: str, now: datetime
                  ) -> tuple[Alert, bool]:
    """The open alert for this key, locked, and whether this call opened it."""
    while True:
        alert = _lock_open(integration.pk, dedup_key)
        if alert is not None:
            return alert, False
        try:
            # A savepoint, so that losing the race below leaves the caller's transaction usable.
            with transaction.atomic():
                return Alert.objects.create(
                    integration=integration, dedup_key=dedup_key, title=title[:300], summary=summary[:500],
                    triggered_at=now, last_fired_at=now,
                ), True
        except IntegrityError:
            # Alertmanager HA pairs and retries deliver one notification concurrently: the other delivery
            # opened the alert between our look and our insert (one_open_alert_per_key). Join it.
            continue


def _is_paging(alert: Alert) -> bool:
    return Escalation.objects.filter(pk=alert.escalation_id, state=EscalationState.ACTIVE).exists()


def _ack_timed_out(alert: Alert, integration: Integration, now: datetime) -> bool:
    hours = integration.ack_timeout_hours
    return bool(hours) and alert.acknowledged_at is not None and now - alert.acknowledged_at >= timedelta(hours=hours)


def _escalate(alert: Alert, integration: Integration, now: datetime, *, title: str, summary: str,
              why: str = "") -> None:
    """Fire an escalation for the alert, paged with what the notification says (unclipped: it is clipped to
    fit the roster's channels here)."""
    roster = integration.roster
    message = alert_message(title, summary, link=alert_link(integration, alert.dedup_key), budget=text_budget(roster))
    escalation = escalation_fire(roster=roster, message=message, fired_by_name=f"integration {integration.name}",
                                 integration=integration, dedup_key=alert.dedup_key, now=now)
    if why:
        record_event(escalation, EventKind.NOTE, f"Paging again for the same alert: {why}.", at=now)
    alert.escalation = escalation
    alert.escalations += 1
    alert.save(update_fields=["escalation", "escalations"])


def _note(alert: Alert, text: str, now: datetime) -> str:
    if alert.escalation_id is not None:
        record_event(alert.escalation_id, EventKind.NOTE, text, at=now)
    return "noted"


def _acknowledge_locked(alert: Alert, *, by_name: str, now: datetime) -> AlertOutcome:
    if alert.state == AlertState.TRIGGERED and _is_paging(alert):
        # Ending the escalation marks the alert acknowledged (owned_through), like a person's read would.
        escalation_acknowledge(escalation=alert.escalation_id, person_index=None, by_name=by_name,
                               how="acknowledged the alert", now=now)
        alert.refresh_from_db()
    elif alert.state == AlertState.TRIGGERED:
        alert.state, alert.acknowledged_at, alert.acknowledged_by_name = AlertState.ACKNOWLEDGED, now, by_name[:150]
        alert.save(update_fields=["state", "acknowledged_at", "acknowledged_by_name"])
        _note(alert, f"Alert acknowledged by {by_name}.", now)
    return _outcome(alert, "acknowledged")


def _resolve_locked(alert: Alert, *, by_name: str, reason: str, note: str, now: datetime) -> None:
    # Resolved first, so that cancelling its escalation below does not mark it acknowledged.
    alert.state, alert.resolved_at, alert.resolved_by_name = AlertState.RESOLVED, now, by_name[:150]
    alert.save(update_fields=["state", "resolved_at", "resolved_by_name"])
    if alert.escalation_id is None:
        return
    if not escalation_cancel(escalation=alert.escalation_id, by_name=by_name, reason=reason, now=now):
        # Already ended: the timeline still shows when the incident was over, and how its paging had ended
        # (acknowledged by someone, or only reached: the two are not the same).
        ended = Escalation.objects.only("state", "outcome").get(pk=alert.escalation_id)
        record_event(alert.escalation_id, EventKind.NOTE,
                     f"{note.rstrip('.')}; the escalation had already ended {ended.state}: {ended.outcome}", at=now)
