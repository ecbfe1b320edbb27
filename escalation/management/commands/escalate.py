import time

from django.core.management.base import BaseCommand, CommandError

from escalation.models import Escalation, Event, Roster
from escalation.services.escalations import FireRefused, escalation_fire
from escalation.services.metrics import CLI_FIRED_BY


class Command(BaseCommand):
    help = "Fire an escalation on a roster (the seed's `python3 app.py`); --follow prints events until it ends."

    def add_arguments(self, parser) -> None:
        parser.add_argument("roster", help="Roster name.")
        parser.add_argument("message", help="The message to send.")
        parser.add_argument("--follow", action="store_true", help="Print each event until the escalation ends.")
        parser.add_argument("--poll", type=float, default=0.5, help="Seconds between looks when following.")

    def handle(self, *args, roster: str, message: str, follow: bool, poll: float, **options) -> None:
        try:
            target = Roster.objects.get(name=roster)
        except Roster.DoesNotExist:
            raise CommandError(f"No roster named {roster!r}.") from None
        try:
            escalation = escalation_fire(roster=target, message=message, fired_by_name=CLI_FIRED_BY)
        except FireRefused as refused:
            raise CommandError("Not fired: " + " ".join(refused.messages)) from None
        self.stdout.write(str(escalation.pk))
        if follow:
            self._follow(escalation.pk, poll)

    def _follow(self, escalation_id: int, poll: float) -> None:
        last_id = 0
        while True:
            state = Escalation.objects.values_list("state", flat=True).get(pk=escalation_id)
            for event in Event.objects.filter(escalation_id=escalation_id, pk__gt=last_id).order_by("pk"):
                self.stdout.write(f"{event.at:%H:%M:%S} {event.kind:<13} {event.text}")
                last_id = event.pk
            if state != "active":
                self.stdout.write(f"escalation {escalation_id} {state}")
                return
            time.sleep(poll)
