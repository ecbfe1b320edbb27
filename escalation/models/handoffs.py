"""Hand-off notices: "You are on call in Primary from Mon 09:00 until Mon 09:00 (Europe/London)." before a
person's shift. A row per (schedule, person, shift start), created ahead by the worker and sent once by
whichever worker claims it (escalation/engine/handoff.py)."""

from django.db import models
from django.db.models import Q

from escalation.models.runs import MessageStatus, new_client_ref


class NoticeState(models.TextChoices):
    PENDING = "pending", "pending"
    SENT = "sent", "sent"
    NOT_SENT = "not_sent", "not sent"  # no longer their shift, notices turned off, no channel to take it
    FAILED = "failed", "failed"  # refused by Vonage, or still failing when the shift began


class HandoffNotice(models.Model):
    schedule = models.ForeignKey("escalation.Schedule", on_delete=models.CASCADE, related_name="handoff_notices")
    person = models.ForeignKey("escalation.Person", on_delete=models.CASCADE, related_name="handoff_notices")
    shift_start = models.DateTimeField()
    shift_end = models.DateTimeField(null=True, blank=True)  # as planned; the text says the end known when sent
    due_at = models.DateTimeField()
    state = models.CharField(max_length=10, choices=NoticeState.choices, default=NoticeState.PENDING)
    # The timer: due_at, then a retry's time; a claim moves it on by a lease, so a worker that dies while
    # sending leaves a notice that is due again when the lease runs out. None once the notice is settled.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    channel_type = models.CharField(max_length=20, blank=True)
    to_address = models.CharField(max_length=50, blank=True)
    text = models.CharField(max_length=300, blank=True)
    client_ref = models.CharField(max_length=100, unique=True, default=new_client_ref)
    message_uuid = models.UUIDField(null=True, blank=True)
    outcome = models.CharField(max_length=500, blank=True)
    # What Vonage's status webhooks said of the sent notice: the same vocabulary and ladder as Message.status
    # (STATUS_RANK), so it only moves up; empty until the first status arrives.
    status = models.CharField("delivery", max_length=14, choices=MessageStatus.choices, blank=True)
    status_rank = models.PositiveSmallIntegerField(default=0)
    status_at = models.DateTimeField("delivery status at", null=True, blank=True)
    status_error = models.CharField("delivery error", max_length=500, blank=True)
    created_at = models.DateTimeField()
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["schedule", "shift_start", "id"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "person", "shift_start"], name="handoff_notice_once"),
            models.CheckConstraint(condition=Q(state__in=NoticeState.values), name="handoff_notice_state_known"),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(state=NoticeState.PENDING), name="handoff_notice_due"),
            models.Index(fields=["schedule", "due_at"], name="handoff_notice_schedule_due"),
            # A status webhook is matched by message_uuid or client_ref (unique), in every batch of the
            # worker's with a status that is no escalation's.
            models.Index(fields=["message_uuid"], name="handoff_notice_message"),
        ]

    def __str__(self) -> str:
        return f"notice to {self.person} for {self.schedule} at {self.shift_start:%Y-%m-%d %H:%M %Z}"
