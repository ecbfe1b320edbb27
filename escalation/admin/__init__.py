"""The admin site's registrations, one module per area.

`people`: people with their channels, rosters with their members, senders (RosterAdmin takes its Fire
action and button from `fire`). `escalations`: the delivery history (escalations, raw webhooks).
"""

import escalation.admin.alerts  # noqa: F401  (alerts from monitoring, the notifications received)
import escalation.admin.escalations  # noqa: F401  (history: escalations and raw webhooks)
import escalation.admin.integrations  # noqa: F401  (Integration admin: URL, token rotation)
from escalation.admin import people  # noqa: F401  (registers the ModelAdmins)
