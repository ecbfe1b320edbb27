"""Export a roster in the seed tutorial's config.json format, without the APP section's secrets."""

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from escalation.management.commands._recording import RecordingCommand
from escalation.models import Roster
from escalation.services.config import config_dumps, config_export


class Command(RecordingCommand):
    help = (
        "Write a roster as the seed's config.json (FROM and USERS, every channel with its condition_status "
        "and expiry_time). The APP section is left out: the application id and private key live in the "
        "environment. import_config reads the result back unchanged."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("roster", help="the roster's name")
        parser.add_argument("-o", "--output", help="write to this file instead of standard output")

    def handle(self, *args: str, roster: str, output: str | None, **options: Any) -> None:
        try:
            found = Roster.objects.get(name=roster)
        except Roster.DoesNotExist:
            names = ", ".join(Roster.objects.values_list("name", flat=True)) or "none yet"
            raise CommandError(f"No roster named {roster!r}. Rosters: {names}.") from None
        text = config_dumps(config_export(roster=found))
        if output is None:
            self.stdout.write(text, ending="")
            return
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as e:
            raise CommandError(f"Cannot write {output}: {e.strerror or e}.") from None
