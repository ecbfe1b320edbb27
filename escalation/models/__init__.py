from escalation.models.channels import (
    CHANNEL_TYPE_FROM_V1,
    TEXT_LIMITS,
    V1_CHANNEL_NAMES,
    ChannelType,
    Condition,
)
from escalation.models.integrations import ChannelTest, Integration, IntegrationFormat
from escalation.models.people import (
    MIN_CHANNELS_PER_PERSON,
    Channel,
    Person,
    Roster,
    RosterMember,
    Sender,
    validate_address,
    validate_sender,
)
from escalation.models.runs import (
    FAILED_STATUSES,
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

__all__ = [
    "CHANNEL_TYPE_FROM_V1", "FAILED_STATUSES", "MARK_KINDS", "MIN_CHANNELS_PER_PERSON", "STATUS_RANK", "TEXT_LIMITS",
    "V1_CHANNEL_NAMES", "Api", "Channel", "ChannelType", "Condition", "Escalation", "EscalationState",
    "ChannelTest", "Event", "EventKind", "Integration", "IntegrationFormat", "Message", "MessageStatus", "Page",
    "PageState", "Person", "Roster", "RosterMember", "Sender", "WebhookEvent", "WebhookKind",
    "validate_address", "validate_sender",
    "Layer", "LayerParticipant", "Override", "OverrideMode", "PersonFeed", "Schedule", "ShiftUnit",
]
