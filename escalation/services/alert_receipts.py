"""Every notification an integration receives, recorded; a refused one raises an alarm.

A monitoring system does not retry a 4xx, so a refused alert (a roster nobody can be paged on, a body in
the wrong format) would otherwise page nobody and tell nobody. Each notification that reaches an
integration's URL is recorded with what was done or why it was refused. The first refusal since the last
accepted notification sets `Integration.refused_since`, which is the alarm; the next accepted notification
(the roster or the sender was fixed) or an admin's dismissal clears it.

Records are bounded: the body is clipped to its first characters, and only an integration's latest
`RECEIPTS_KEPT` records are kept.
"""

from datetime import datetime

from django.db import transaction
from django.db.models import Subquery
from django.utils.timezone import localtime

from escalation.models import AlertReceipt, Integration, ReceiptOutcome
from escalation.services import alarms

RECEIPTS_KEPT = 1000
BODY_KEPT = 2000  # characters: AlertReceipt.body
TEXT_KEPT = 500  # characters: AlertReceipt.text and Integration.refusal


def receipt_text(raw: bytes) -> str:
    """The start of a body, as text any database stores (no NUL, no undecodable bytes)."""
    text = raw[: BODY_KEPT * 4].decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    return text[:BODY_KEPT]


def receipt_record(*, integration: Integration, received_at: datetime, status_code: int, text: str,
                   body: bytes = b"") -> AlertReceipt:
    """Record one notification and what came of it (2xx: accepted; anything else: refused)."""
    accepted = 200 <= status_code < 300
    text = text.replace("\x00", "\ufffd")[:TEXT_KEPT]
    with transaction.atomic():
        receipt = AlertReceipt.objects.create(
            integration=integration, received_at=received_at, status_code=status_code, text=text,
            outcome=ReceiptOutcome.ACCEPTED if accepted else ReceiptOutcome.REFUSED, body=receipt_text(body),
        )
        if accepted:
            # Only refusals received before this notification: one received after it still stands.
            Integration.objects.filter(pk=integration.pk, refused_since__lte=received_at).update(
                refused_since=None, refusal="")
        elif integration.is_enabled:
            # A disabled integration refuses by the admin's choice: recorded, but no alarm.
            Integration.objects.filter(pk=integration.pk, refused_since=None).update(refused_since=received_at)
            Integration.objects.filter(pk=integration.pk).update(refusal=text)
        _prune(integration)
    return receipt


def _prune(integration: Integration) -> None:
    """Keep the integration's latest RECEIPTS_KEPT records: one statement on the (integration, id) index."""
    oldest_kept = (AlertReceipt.objects.filter(integration=integration).order_by("-id")
                   .values("id")[RECEIPTS_KEPT - 1:RECEIPTS_KEPT])
    AlertReceipt.objects.filter(integration=integration, id__lt=Subquery(oldest_kept)).delete()


def integration_dismiss_refusals(*, integration: Integration) -> bool:
    """An admin has seen the refusals: clear the alarm. False if there was none."""
    return bool(Integration.objects.filter(pk=integration.pk, refused_since__isnull=False).update(
        refused_since=None, refusal=""))


def alert_alarms(*, now: datetime) -> list["alarms.Alarm"]:
    """One alarm per enabled integration that refused a notification since it last accepted one.

    A disabled integration refuses everything by the admin's choice, so it raises none.
    """
    raised = []
    for integration in Integration.objects.filter(refused_since__isnull=False, is_enabled=True).order_by("pk"):
        refused = AlertReceipt.objects.filter(integration=integration, outcome=ReceiptOutcome.REFUSED,
                                              received_at__gte=integration.refused_since).count()
        count = "a notification" if refused <= 1 else f"{refused} notifications"
        raised.append(alarms.Alarm(
            key=f"alert-refused:{integration.pk}",
            text=f"Integration {integration.name} refused {count} since "
                 f"{localtime(integration.refused_since).strftime('%H:%M')} and paged nobody for them: "
                 f"{integration.refusal}",
            since=integration.refused_since,
        ))
    return raised
