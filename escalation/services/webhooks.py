"""Receiving Vonage's webhooks: verify, parse, de-duplicate and store in the request; a worker applies them
(engine/intake.py).

The request does only what decides its answer: the signature (401), the body's shape (400), its size (413)
and storing it once under a unique `dedup_key` (Vonage retries, and may deliver twice at once), then it
answers 204, so a burst of webhooks costs the web process one INSERT each. The request does not wake the
workers (a NOTIFY would be a second statement per webhook): a worker finds the event at its next pass, at
most WORKER_POLL_INTERVAL (0.1 s) later, which is nothing next to the time a person takes to read.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection

from escalation.engine.intake import NOT_APPLIED
from escalation.models import WebhookEvent, WebhookKind
from escalation.vonage.payloads import FinalReport, StatusUpdate
from escalation.vonage.signature import SignatureError, verify_signature
from escalation.vonage.webhooks import PayloadError, Webhook, parse_webhook
from escalation.webhooks.body import load_body


class WebhookRefused(Exception):
    """The request is refused and nothing was stored; `status` is the HTTP status to answer."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Received:
    event: WebhookEvent
    duplicate: bool  # True: an earlier delivery of the same event was already stored


def webhook_receive(*, kind_hint: str, raw_body: bytes, authorization: str | None, now: datetime) -> Received:
    """Store one webhook delivery for a worker to apply, or raise WebhookRefused (401, 400, 413)."""
    if len(raw_body) > settings.WEBHOOK_MAX_BODY_BYTES:
        raise WebhookRefused(
            f"The body is larger than {settings.WEBHOOK_MAX_BODY_BYTES} bytes.", status=413
        )
    if settings.VONAGE_SIGNATURE_SECRET:
        try:
            verify_signature(
                raw_body=raw_body,
                authorization=authorization,
                secret=settings.VONAGE_SIGNATURE_SECRET,
                max_age=settings.VONAGE_SIGNATURE_MAX_AGE,
                now=now,
            )
        except SignatureError as e:
            raise WebhookRefused(str(e), status=401) from None
    try:
        body = load_body(raw_body)
        webhook = parse_webhook(body, kind_hint=kind_hint)
    except PayloadError as e:
        raise WebhookRefused(str(e), status=400) from None

    kind, dedup_key = webhook_identity(webhook)
    event = _insert_once(kind=kind, dedup_key=dedup_key, body=body, dispatch_uuid=_workflow(webhook), now=now)
    if event is None:
        return Received(event=WebhookEvent.objects.get(dedup_key=dedup_key), duplicate=True)
    return Received(event=event, duplicate=False)


def webhooks_retry(event_ids: list[int]) -> int:
    """Queue events marked as not applied to be applied again (once the fault that stopped them is fixed).
    Returns how many were queued; events applied normally are left alone."""
    marked = WebhookEvent.objects.filter(pk__in=event_ids, result__startswith=NOT_APPLIED)
    return marked.update(applied_at=None, result="")


def webhook_identity(webhook: Webhook) -> tuple[str, str]:
    """(kind, dedup_key): two deliveries with the same key are the same event."""
    if isinstance(webhook, StatusUpdate):
        return WebhookKind.STATUS, f"status:{webhook.message_uuid}:{webhook.status}"
    if isinstance(webhook, FinalReport):
        return WebhookKind.FINAL_REPORT, f"final:{webhook.dispatch_uuid}:{webhook.status}"
    return WebhookKind.INBOUND, f"inbound:{webhook.message_uuid}"


def _insert_once(*, kind: str, dedup_key: str, body: dict[str, Any], dispatch_uuid: str | None,
                 now: datetime) -> WebhookEvent | None:
    """The new row, or None when this event was stored before.

    One `INSERT ... ON CONFLICT (dedup_key) DO NOTHING RETURNING id`: a concurrent delivery of the same
    event blocks on the unique index until the first one commits, then inserts nothing and is answered as
    the duplicate it is; no error, so no savepoint is needed inside a caller's transaction. Written here
    rather than by `Model.save`, whose ORM insert profiled at 41% of a web worker's CPU under a burst of
    status webhooks (issue 18).
    """
    event = WebhookEvent(received_at=now, kind=kind, dedup_key=dedup_key, body=body, dispatch_uuid=dispatch_uuid)
    fields = [WebhookEvent._meta.get_field(name) for name in _INSERTED]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(WebhookEvent._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
            f"VALUES ({', '.join(['%s'] * len(fields))}) ON CONFLICT ({quote('dedup_key')}) DO NOTHING RETURNING id",
            [f.get_db_prep_save(getattr(event, f.attname), connection) for f in fields])
        row = cursor.fetchone()
    if row is None:
        return None
    event.pk = row[0]
    event._state.adding, event._state.db = False, connection.alias
    return event


# Every column of a new event: the links and the outcome are empty until a worker applies it.
_INSERTED = ("received_at", "kind", "dedup_key", "body", "dispatch_uuid", "applied_at", "message", "escalation",
             "result")


def _workflow(webhook: Webhook) -> str | None:
    if isinstance(webhook, (StatusUpdate, FinalReport)) and webhook.dispatch_uuid:
        return webhook.dispatch_uuid
    return None


