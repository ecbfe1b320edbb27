"""What is wrong now, for the red banner on every admin page (and later a health endpoint)."""

from dataclasses import dataclass
from datetime import datetime

# Modules, not names: each source builds Alarms, so it imports this module in turn.
from escalation.services import alert_receipts


@dataclass(frozen=True)
class Alarm:
    """One thing that is wrong now, for the red banner on every admin page."""

    key: str          # stable identity, e.g. "vonage:credentials", "worker:silent", "alert-refused:<integration pk>"
    text: str         # one sentence, e.g. "Vonage refuses our credentials (401) since 03:12: 3 escalations wait"
    since: datetime   # when it started (aware)


def current_alarms(*, now: datetime) -> list[Alarm]:
    return [*alert_receipts.alert_alarms(now=now)]
