"""A fired escalation and everything that happened in it.

The plan is frozen at fire time (`Escalation.plan`), so later edits to people, channels or the roster
never change a running escalation. The worker's timer is `Escalation.next_action_at`, a column on the
escalation's own row, so a restart loses nothing.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class Api(models.TextChoices):
    DISPATCH = "dispatch", "Dispatch API"
    MESSAGES = "messages", "Messages API v1"


class EscalationState(models.TextChoices):
    ACTIVE = "active", "active"
    # Someone confirmed: a read on a channel, a reply, or an admin on someone's behalf.
    ACKNOWLEDGED = "acknowledged", "acknowledged"
    # A channel's `delivered` condition was met: a phone got it, nobody confirmed (the roster's stop rule).
    REACHED = "reached", "reached"
    EXHAUSTED = "exhausted", "exhausted"
    CANCELLED = "cancelled", "cancelled"
    # Vonage (or our account, or our configuration) failed for the whole hold horizon: nobody could be
    # paged, which is not "exhausted" (everyone was paged and nobody answered).
    FAILED = "failed", "failed"


class Escalation(models.Model):
    roster = models.ForeignKey("escalation.Roster", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="escalations")
    roster_name = models.CharField(max_length=100)
    message = models.TextField()
    api = models.CharField(max_length=10, choices=Api.choices)
    # Frozen at fire time: {"rounds": n, "people": [{"person_id", "name", "channels": [
    #   {"type", "address", "expiry_time", "condition", "sender", "template"?, "tag"?}]}]}; `template` and
    #   `tag` are the sender's settings for a closed 24-hour window (engine/windows.py).
    plan = models.JSONField()
    state = models.CharField(max_length=12, choices=EscalationState.choices, default=EscalationState.ACTIVE)
    fired_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")
    fired_by_name = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # The person credited with the end: who acknowledged, or who was reached (see `state`).
    acknowledged_by = models.ForeignKey("escalation.Person", null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+")
    acknowledged_by_name = models.CharField(max_length=100, blank=True)
    # How it ended, in words: "read on whatsapp 447700900002", "replied on sms", "cancelled by ann", ...
    outcome = models.CharField(max_length=300, blank=True)
    # Where the escalation is in its plan: the round (1-based) and the person's index in the plan.
    current_round = models.PositiveSmallIntegerField(default=0)
    current_index = models.PositiveIntegerField(default=0)
    # The timer: when the worker must next look at this escalation. NULL once it has ended.
    next_action_at = models.DateTimeField(null=True, blank=True)
    # Set by integrations so a repeated alert joins the active escalation instead of firing a second one.
    integration = models.ForeignKey("escalation.Integration", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="escalations")
    dedup_key = models.CharField(max_length=255, blank=True)
    # Held at its step by a provider fault (vonage/errors.py): since when, and by what ("credentials:401").
    # Cleared when a send succeeds; the alarm banner counts the held escalations by `held_by`.
    held_since = models.DateTimeField(null=True, blank=True)
    held_by = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The history list's order: a page of it reads a page of the index, not a sort of every row.
            models.Index(fields=["created_at", "id"], name="escalation_by_time"),
            # The worker's due-work query only ever looks at active escalations.
            models.Index(fields=["next_action_at"], name="escalation_due",
                         condition=Q(state="active") & Q(next_action_at__isnull=False)),
            # The alarm banner, on every admin page, reads only the (few) held escalations.
            models.Index(fields=["held_by", "held_since"], name="escalation_held",
                         condition=Q(state="active") & Q(held_since__isnull=False)),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(state__in=EscalationState.values), name="escalation_state_known"),
            models.CheckConstraint(
                condition=Q(state="active") | Q(next_action_at__isnull=True),
                name="escalation_timer_only_when_active",
            ),
            # At most one active escalation per integration alert.
            models.UniqueConstraint(fields=["integration", "dedup_key"], name="one_active_per_alert",
                                    condition=Q(state="active") & ~Q(dedup_key="")),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.roster_name} ({self.state})"

    @property
    def is_active(self) -> bool:
        return self.state == EscalationState.ACTIVE


class PageState(models.TextChoices):
    ACTIVE = "active", "being paged"
    REACHED = "reached", "reached"  # a message was delivered on a `delivered` channel; nobody confirmed
    ACKNOWLEDGED = "acknowledged", "acknowledged"  # they read it, replied, or an admin answered for them
    PASSED_OVER = "passed_over", "passed over"
    STOPPED = "stopped", "stopped"  # the escalation ended while this person was being paged


class Page(models.Model):
    """One person paged, in one round."""

    escalation = models.ForeignKey(Escalation, on_delete=models.CASCADE, related_name="pages")
    round = models.PositiveSmallIntegerField()
    index = models.PositiveIntegerField(help_text="The person's position in the frozen plan.")
    person = models.ForeignKey("escalation.Person", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="pages")
    person_name = models.CharField(max_length=100)
    state = models.CharField(max_length=12, choices=PageState.choices, default=PageState.ACTIVE)
    started_at = models.DateTimeField()
    # When this person is passed over if nobody has been reached: start + the sum of their expiries.
    deadline = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=300, blank=True)
    # Dispatch mode: one workflow per page. `dispatch_requested_at` is written before the request
    # (record first, then the side effect), `dispatch_uuid` after Vonage accepted it.
    dispatch_uuid = models.UUIDField(null=True, blank=True, unique=True)
    dispatch_requested_at = models.DateTimeField(null=True, blank=True)
    dispatch_final_status = models.CharField(max_length=12, blank=True)
    send_attempts = models.PositiveSmallIntegerField(default=0)
    # A worker sending the workflow holds this lease; a crashed worker's send is retried after it.
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # Dispatch mode: how each workflow item went out, by channel index as a string ("0": "WhatsApp template
    # `oncall_alert` (window closed)"), decided when the workflow was built; a skipped channel is absent.
    item_forms = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["escalation", "round", "index"]
        constraints = [
            # The claim that makes a second worker's page of the same step impossible.
            models.UniqueConstraint(fields=["escalation", "round", "index"], name="one_page_per_step"),
            models.CheckConstraint(condition=Q(state__in=PageState.values), name="page_state_known"),
        ]

    def __str__(self) -> str:
        return f"{self.person_name} (round {self.round})"


class MessageStatus(models.TextChoices):
    QUEUED = "queued", "queued"  # written before the request; not yet accepted by Vonage
    SUBMITTED = "submitted", "submitted"
    DELIVERED = "delivered", "delivered"
    READ = "read", "read"
    REJECTED = "rejected", "rejected"
    UNDELIVERABLE = "undeliverable", "undeliverable"
    FAILED = "failed", "failed"  # Vonage refused the request, or retries ran out


# Statuses only move up this ladder; the final ones share the top rung so none replaces another.
STATUS_RANK = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SUBMITTED: 1,
    MessageStatus.DELIVERED: 2,
    MessageStatus.READ: 3,
    MessageStatus.REJECTED: 3,
    MessageStatus.UNDELIVERABLE: 3,
    MessageStatus.FAILED: 3,
}
# Read and every failure are final: no later status moves a message on from them.
FINAL_RANK = STATUS_RANK[MessageStatus.FAILED]
FAILED_STATUSES = {MessageStatus.REJECTED, MessageStatus.UNDELIVERABLE, MessageStatus.FAILED}


def new_client_ref() -> str:
    return uuid.uuid4().hex


class Message(models.Model):
    """One message on one channel to the paged person."""

    page = models.ForeignKey(Page, on_delete=models.CASCADE, related_name="messages")
    channel_index = models.PositiveSmallIntegerField()
    channel_type = models.CharField(max_length=20)
    to_address = models.CharField(max_length=50)
    condition = models.CharField(max_length=10)
    expiry_time = models.PositiveIntegerField()
    client_ref = models.CharField(max_length=100, unique=True, default=new_client_ref)
    message_uuid = models.UUIDField(null=True, blank=True, unique=True)
    status = models.CharField(max_length=14, choices=MessageStatus.choices, default=MessageStatus.QUEUED)
    status_rank = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    # Messages mode: when the engine moves on to the next channel if the condition is not met.
    deadline = models.DateTimeField(null=True, blank=True)
    send_attempts = models.PositiveSmallIntegerField(default=0)
    # A worker sending this message holds this lease; a crashed worker's send is retried after it.
    claimed_until = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    # How it went out: "text (window open)", "WhatsApp template `oncall_alert` (window closed)", ...
    form = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["page", "channel_index", "id"]
        constraints = [
            models.UniqueConstraint(fields=["page", "channel_index"], name="one_message_per_channel_step"),
        ]
        indexes = [
            # A reply answers the latest message sent to its address on its channel (engine/replies.py).
            models.Index(fields=["to_address", "channel_type", "sent_at"], name="message_by_address"),
        ]

    def __str__(self) -> str:
        return f"{self.channel_type} {self.to_address}: {self.status}"


class EventKind(models.TextChoices):
    FIRED = "fired", "fired"
    PAGED = "paged", "person paged"
    SENT = "sent", "sent"
    RETRIED = "retried", "retried"
    SUBMITTED = "submitted", "submitted"
    DELIVERED = "delivered", "delivered"
    READ = "read", "read"
    REJECTED = "rejected", "rejected"
    UNDELIVERABLE = "undeliverable", "undeliverable"
    SEND_FAILED = "send_failed", "send failed"
    REPLIED = "replied", "replied"
    PASSED_OVER = "passed_over", "passed over"
    ROUND = "round", "new round"
    ACKNOWLEDGED = "acknowledged", "acknowledged"
    REACHED = "reached", "reached"
    EXHAUSTED = "exhausted", "exhausted"
    CANCELLED = "cancelled", "cancelled"
    HELD = "held", "held by a provider fault"
    RESUMED = "resumed", "resumed after a provider fault"
    FAILED = "failed", "failed"
    NOTE = "note", "note"


# The events the timeline draws as marks on a channel's bar (statuses are drawn as the bar's own colours):
# rare among a flood of status events, so they have an index of their own.
MARK_KINDS = (EventKind.REPLIED, EventKind.SEND_FAILED, EventKind.RETRIED)


class Event(models.Model):
    """One decision or observation, for the timeline and the log in words."""

    escalation = models.ForeignKey(Escalation, on_delete=models.CASCADE, related_name="events")
    page = models.ForeignKey(Page, null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    kind = models.CharField(max_length=14, choices=EventKind.choices)
    text = models.CharField(max_length=500)

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            models.Index(fields=["escalation", "at"], name="event_by_escalation"),
            models.Index(fields=["escalation", "at", "id"], condition=models.Q(kind__in=MARK_KINDS),
                         name="event_marks"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%H:%M:%S} {self.kind}: {self.text}"
