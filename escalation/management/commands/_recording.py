"""Bases for our commands: they say in one line when the database is not ready, never with a traceback.

(A leading underscore: Django does not offer this module as a command.)
"""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import override_settings

# "No escalation can be sent" is true of the process that sends (the worker), not of a command that only records.
SENDING_CHECKS = ("escalation.W001", "escalation.W002")
MIGRATE = "run `python manage.py migrate` first (`make run` does it for the demo)"


def database_problem(alias: str = DEFAULT_DB_ALIAS) -> str | None:
    """Why this database cannot be used yet, in one line, or None when it is migrated."""
    connection = connections[alias]
    name = str(connection.settings_dict["NAME"])
    in_memory = name == ":memory:" or name.startswith("file:")
    if connection.vendor == "sqlite" and not in_memory and not Path(name).exists():
        # Opening it would leave an empty file behind; say so instead.
        return f"There is no database at {name} yet: {MIGRATE}."
    try:
        executor = MigrationExecutor(connection)
        missing = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as error:
        return f"Cannot read the database {name}: {str(error).strip().splitlines()[0]}."
    if missing:
        return f"The database {name} is missing {len(missing)} migration(s): {MIGRATE}."
    return None


class DatabaseCommand(BaseCommand):
    """A command that needs the migrated database."""

    def execute(self, *args: Any, **options: Any) -> str | None:
        problem = database_problem(options.get("database") or DEFAULT_DB_ALIAS)
        if problem:
            raise CommandError(problem)
        return super().execute(*args, **options)


class RecordingCommand(DatabaseCommand):
    """A command that only records in the database (firing, importing, exporting): the worker does the sending."""

    def check(self, *args: Any, **kwargs: Any) -> None:
        # The worker reports its own missing credentials; here W001/W002 would warn of something false.
        with override_settings(SILENCED_SYSTEM_CHECKS=[*settings.SILENCED_SYSTEM_CHECKS, *SENDING_CHECKS]):
            super().check(*args, **kwargs)
