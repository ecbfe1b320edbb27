"""The admin site's registrations, one module per area.

`people`: people with their channels, rosters with their members, senders (RosterAdmin takes its Fire
action and button from `fire`). `escalations`: the delivery history (escalations, raw webhooks).
"""

from django.contrib import admin

import escalation.admin.alerts  # noqa: F401  (alerts from monitoring, the notifications received)
import escalation.admin.escalations  # noqa: F401  (history: escalations and raw webhooks)
import escalation.admin.integrations  # noqa: F401  (Integration admin: URL, token rotation)
import escalation.admin.schedules  # noqa: F401  (schedules, layers, overrides, covering a shift, feeds)
from escalation.admin import people  # noqa: F401  (registers the ModelAdmins)

# The product's name, not "Django administration": it is what someone paged at 3 a.m. sees first.
admin.site.site_header = "On-call escalation"
admin.site.site_title = "On-call escalation"
admin.site.index_title = "Rosters, people and escalations"
