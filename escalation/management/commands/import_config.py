"""Import the seed tutorial's config.json: people, their channels, the senders and one roster."""

from typing import Any

from django.core.management.base import CommandError, CommandParser

from escalation.management.commands._recording import RecordingCommand
from escalation.services.config import (
    APP_ENVIRONMENT,
    DEFAULT_ROSTER_NAME,
    MAX_CONFIG_BYTES,
    ConfigError,
    config_import,
    config_read,
)


class Command(RecordingCommand):
    help = (
        "Import a roster configuration in the seed's config.json format. People are matched by name and "
        "their channels replaced; the roster lists exactly the file's users, in file order. Nothing is "
        f"changed unless the whole file is valid. Files over {MAX_CONFIG_BYTES} bytes are refused. The APP "
        "section is never stored: set " + " and ".join(APP_ENVIRONMENT) + " in the environment instead."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="the config.json file")
        parser.add_argument("--roster", default=DEFAULT_ROSTER_NAME,
                            help=f"the roster to create or replace (default: {DEFAULT_ROSTER_NAME})")

    def handle(self, *args: str, path: str, roster: str, **options: Any) -> None:
        try:
            result = config_import(raw=config_read(path=path), roster_name=roster)
        except ConfigError as e:
            raise CommandError(f"Nothing was imported from {path}:\n" + "\n".join(e.problems)) from None

        people = len(result.created) + len(result.updated)
        self.stdout.write(self.style.SUCCESS(
            f"Roster {result.roster.name!r}: {people} people in order ({len(result.created)} new, "
            f"{len(result.updated)} updated), {result.channel_count} channels, {len(result.senders)} senders."
        ))
        if result.removed_from_roster:
            removed = ", ".join(result.removed_from_roster)
            self.stdout.write(f"Removed from the roster (the people are kept): {removed}.")
        for warning in result.warnings:
            self.stdout.write(self.style.WARNING(f"Warning: {warning}"))
        if result.has_app:
            self.stdout.write(
                "The APP section was not stored: it holds secrets. Set "
                + " and ".join(APP_ENVIRONMENT) + " in the environment (or .env, see .env.example) instead."
            )
