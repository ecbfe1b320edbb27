from escalation.models.alerts import Alert, AlertReceipt, AlertState, ReceiptOutcome
from escalation.models.channels import (
    TEXT_LIMITS,
    ChannelType,
    Condition,
    channel_label,
    short_label,
)
from escalation.models.handoffs import HandoffNotice, NoticeState
from escalation.models.integrations import ChannelTest, Integration, IntegrationFormat
from escalation.models.people import (
    MIN_CHANNELS_PER_PERSON,
    Channel,
    Person,
    Roster,
    RosterMember,
    Sender,
    StopRule,
    validate_address,
    validate_sender,
)
from escalation.models.runs import (
    FAILED_STATUSES,
    FINAL_RANK,
    MARK_KINDS,
    STATUS_RANK,
    Api,
    Escalation,
    EscalationState,
    Event,
    EventKind,
    Message,
    MessageStatus,
    Page,
    PageState,
)
from escalation.models.schedules import (
    Layer,
    LayerParticipant,
    Override,
    OverrideMode,
    PersonFeed,
    Schedule,
    ShiftUnit,
)
from escalation.models.webhooks import WebhookEvent, WebhookKind
from escalation.models.windows import InboundContact
from escalation.models.workers import WorkerHeartbeat

__all__ = [
    "Alert", "AlertReceipt", "AlertState", "ReceiptOutcome",
    "FAILED_STATUSES", "FINAL_RANK", "MARK_KINDS", "MIN_CHANNELS_PER_PERSON", "STATUS_RANK", "TEXT_LIMITS",
    "Api", "Channel", "ChannelType", "Condition", "Escalation", "EscalationState",
    "ChannelTest", "Event", "EventKind", "Integration", "IntegrationFormat", "Message", "MessageStatus", "Page",
    "InboundContact", "PageState", "Person", "Roster", "RosterMember", "Sender", "StopRule", "WebhookEvent",
    "WebhookKind", "WorkerHeartbeat", "channel_label", "short_label", "validate_address", "validate_sender",
    "HandoffNotice", "NoticeState",
    "Layer", "LayerParticipant", "Override", "OverrideMode", "PersonFeed", "Schedule", "ShiftUnit",
]
