"""Who is on call in a schedule, now or at a given instant: the same answer as the admin and the fire plan."""

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from escalation.models import Schedule
from escalation.schedules.shifts import local_to_instant, zone_info
from escalation.services.schedules import schedule_on_call


class Command(BaseCommand):
    help = ("Print who is on call in SCHEDULE, and until when. --at takes an ISO-8601 instant; without an "
            "offset it is read as a local time in the schedule's zone.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("schedule", help="the schedule's name")
        parser.add_argument("--at", help="e.g. 2026-03-29T01:30 (schedule's zone) or 2026-03-29T00:30Z")

    def handle(self, *args: str, schedule: str, at: str | None, **options: Any) -> None:
        found = Schedule.objects.filter(name=schedule).first()
        if found is None:
            names = ", ".join(Schedule.objects.values_list("name", flat=True)) or "none yet"
            raise CommandError(f"No schedule named {schedule!r}. Schedules: {names}.")
        instant = None
        if at is not None:
            try:
                instant = datetime.fromisoformat(at)
            except ValueError:
                raise CommandError(f"--at {at!r} is not an ISO-8601 date and time, e.g. 2026-03-29T09:00.") from None
            if instant.tzinfo is None:
                instant = local_to_instant(instant, zone_info(found.time_zone))
        now = schedule_on_call(found, at=instant)
        if not now.people:
            self.stdout.write(f"{found.name}: nobody is on call (until {now.until_text()}).")
            return
        names = " + ".join(name for _, name in now.people)
        self.stdout.write(f"{found.name}: {names} until {now.until_text()}.")
