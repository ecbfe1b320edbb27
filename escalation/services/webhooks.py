"""Receiving Vonage's webhooks: verify, parse, store raw, de-duplicate, apply.

Every accepted event is stored in WebhookEvent before it is applied, in the same transaction, under a
unique `dedup_key`; Vonage retries (and may deliver twice at once), so the key decides which delivery
applies the event and every other one is answered as a success without applying it again.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from escalation.engine.apply import Applied, apply_final_report, apply_inbound, apply_status
from escalation.models import STATUS_RANK, ChannelTest, WebhookEvent, WebhookKind
from escalation.webhooks.parse import PayloadError, Webhook, load_body, parse_webhook
from escalation.webhooks.payloads import FinalReport, InboundReply, StatusUpdate
from escalation.webhooks.signature import SignatureError, verify_signature


class WebhookRefused(Exception):
    """The request is refused and nothing was stored; `status` is the HTTP status to answer."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Received:
    event: WebhookEvent
    duplicate: bool  # True: an earlier delivery of the same event was already stored and applied


def webhook_receive(*, kind_hint: str, raw_body: bytes, authorization: str | None, now: datetime) -> Received:
    """Accept one webhook delivery, or raise WebhookRefused (401 unsigned, 400 not Vonage, 413 too big)."""
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
    with transaction.atomic():
        event = _insert_once(kind=kind, dedup_key=dedup_key, body=body, now=now)
        if event is None:
            return Received(event=WebhookEvent.objects.get(dedup_key=dedup_key), duplicate=True)
        _record(event, _apply(webhook, now=now))
    return Received(event=event, duplicate=False)


def webhook_reapply(event: WebhookEvent, *, now: datetime) -> Applied | None:
    """Apply a stored event again, e.g. a Dispatch status that arrived before its workflow's uuid was known.

    Only an event that matched nothing is re-applied, under its row lock, so two replays apply it once.
    None if it has matched something meanwhile.
    """
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().get(pk=event.pk)
        if event.message_id is not None or event.escalation_id is not None:
            return None
        kind_hint = "inbound" if event.kind == WebhookKind.INBOUND else "status"
        try:
            webhook = parse_webhook(event.body, kind_hint=kind_hint)
        except PayloadError as e:  # stored by an older parser that was more lenient
            applied = Applied(result=f"not re-applied: {e}", escalation_id=None, message_id=None)
        else:
            applied = _apply(webhook, now=now)
        _record(event, applied)
    return applied


def webhook_identity(webhook: Webhook) -> tuple[str, str]:
    """(kind, dedup_key): two deliveries with the same key are the same event."""
    if isinstance(webhook, StatusUpdate):
        return WebhookKind.STATUS, f"status:{webhook.message_uuid}:{webhook.status}"
    if isinstance(webhook, FinalReport):
        return WebhookKind.FINAL_REPORT, f"final:{webhook.dispatch_uuid}:{webhook.status}"
    return WebhookKind.INBOUND, f"inbound:{webhook.message_uuid}"


def _insert_once(*, kind: str, dedup_key: str, body: dict[str, Any], now: datetime) -> WebhookEvent | None:
    """The new row, or None when this event was stored before.

    A concurrent delivery of the same event blocks on the unique index until the first one's transaction
    ends, then fails here; the savepoint keeps that failure from breaking the outer transaction.
    """
    try:
        with transaction.atomic():
            return WebhookEvent.objects.create(received_at=now, kind=kind, dedup_key=dedup_key, body=body)
    except IntegrityError:
        return None


def _record(event: WebhookEvent, applied: Applied) -> None:
    event.result = applied.result[:300]
    event.escalation_id = applied.escalation_id
    event.message_id = applied.message_id
    event.save(update_fields=["result", "escalation", "message"])


def _apply(webhook: Webhook, *, now: datetime) -> Applied:
    if isinstance(webhook, StatusUpdate):
        result = _apply_to_channel_test(webhook, now=now)
        if result is not None:
            return Applied(result=result, escalation_id=None, message_id=None)
        return apply_status(webhook, now=now)
    if isinstance(webhook, FinalReport):
        return apply_final_report(webhook, now=now)
    assert isinstance(webhook, InboundReply)
    return apply_inbound(webhook, now=now)


def _apply_to_channel_test(update: StatusUpdate, *, now: datetime) -> str | None:
    """Move a test message's status up the same ladder as a Message's; None if it is not a test message."""
    match = Q(message_uuid=update.message_uuid)
    if update.client_ref:
        match |= Q(client_ref=update.client_ref)
    test = ChannelTest.objects.filter(match).first()
    if test is None:
        return None
    rank = STATUS_RANK[update.status]
    # Compare-and-set on the rank: a late `delivered` never replaces `read`, whatever order they arrive in.
    moved = ChannelTest.objects.filter(pk=test.pk, status_rank__lt=rank).update(
        status=update.status, status_rank=rank, error=update.error, updated_at=now
    )
    if moved:
        return f"channel test #{test.pk}: {update.status}"
    return f"channel test #{test.pk}: {update.status} ignored, already {test.status}"
