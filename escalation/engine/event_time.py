"""When a webhook's event happened: the time recorded for it, whenever a worker gets round to applying it.

A worker may apply an event long after it reached us (it was down, or busy), so the worker's clock says
nothing about when a person read or replied. What we know for sure is when the webhook reached us (the
stored event's `received_at`). Vonage's own `timestamp` is closer still to the moment (it does not include
Vonage's delivery delay or retries), but it comes from another clock and, without a signature secret, from
an unchecked body; it is taken only when it is plausible:

- not after the webhook reached us by more than CLOCK_SKEW: nothing is reported before it happens, so a
  later time is a wrong clock (or a forged body), not a fact;
- not before the message it is about was sent (or, for a reply, the page it answers) by more than
  CLOCK_SKEW: a read cannot come before the send. Our `sent_at` is written after Vonage's 202, so Vonage's
  own "submitted" may fairly precede it by a request's time.

A plausible timestamp is then kept inside [not_before, received_at], so the timeline never shows a read
before its send or after its webhook; an implausible one is replaced by `received_at`.
"""

from datetime import datetime, timedelta

# Servers synchronised by NTP agree within milliseconds; a few seconds tolerates a poorly synchronised host
# and the time a request to Vonage takes, and no more: a timestamp further off is not believed.
CLOCK_SKEW = timedelta(seconds=5)


def event_time(timestamp: datetime, *, received_at: datetime, not_before: datetime) -> datetime:
    """When the event happened: Vonage's `timestamp` if plausible, else when its webhook reached us."""
    if not not_before - CLOCK_SKEW <= timestamp <= received_at + CLOCK_SKEW:
        return received_at
    return min(max(timestamp, not_before), received_at)
