import time
from typing import Any

from django.core.management.base import CommandError, CommandParser

from escalation.ahead import next_step
from escalation.management.commands._recording import RecordingCommand
from escalation.models import Escalation, EscalationState, Event, Message, Page, Roster
from escalation.services.escalations import FireRefused, escalation_fire
from escalation.services.metrics import CLI_FIRED_BY

# How each end reads in the last line: reached and acknowledged are different outcomes (issue 15).
END_WORDS = {
    EscalationState.ACKNOWLEDGED: "acknowledged",
    EscalationState.REACHED: "reached (delivered, nobody acknowledged)",
}


class Command(RecordingCommand):
    help = "Fire an escalation on a roster (the seed's `python3 app.py`); --follow prints events until it ends."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("roster", help="Roster name.")
        parser.add_argument("message", help="The message to send.")
        parser.add_argument("--follow", action="store_true", help="Print each event until the escalation ends.")
        parser.add_argument("--poll", type=float, default=0.5, help="Seconds between looks when following.")

    def handle(self, *args: str, roster: str, message: str, follow: bool, poll: float, **options: Any) -> None:
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
        last_id, last_next = 0, ""
        while True:
            escalation = Escalation.objects.get(pk=escalation_id)
            for event in Event.objects.filter(escalation_id=escalation_id, pk__gt=last_id).order_by("pk"):
                self.stdout.write(f"{event.at:%H:%M:%S} {event.kind:<13} {event.text}")
                last_id = event.pk
            if not escalation.is_active:
                end = END_WORDS.get(escalation.state, escalation.state)
                self.stdout.write(f"escalation {escalation_id} {end}: {escalation.outcome}")
                return
            upcoming = self._next(escalation)
            if upcoming and upcoming != last_next:
                self.stdout.write(f"{'':8} {upcoming}")
                last_next = upcoming
            time.sleep(poll)

    @staticmethod
    def _next(escalation: Escalation) -> str:
        page = Page.objects.filter(escalation=escalation).order_by("-round", "-index").first()
        if page is None:
            return ""
        step = next_step(escalation, page, Message.objects.filter(page=page))
        return str(step) if step else ""
