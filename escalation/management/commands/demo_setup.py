import os
import secrets
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from escalation.models import Roster
from escalation.services.config import config_import

DEMO_ROSTER = "On call (demo)"


class Command(BaseCommand):
    help = "Demo only (`make run`): an admin login and the sample roster, created once and reused after."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--config", required=True, help="Seed-format config to load as the demo roster.")
        parser.add_argument("--credentials-file", required=True, help="Where the admin's user:password is kept.")

    def handle(self, *args: str, config: str, credentials_file: str, **options: Any) -> None:
        credentials = Path(credentials_file)
        if credentials.exists():
            username, password = credentials.read_text().strip().split(":", 1)
        else:
            username = os.environ.get("DEMO_ADMIN_USER", "admin")
            password = os.environ.get("DEMO_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
            credentials.write_text(f"{username}:{password}")
            credentials.chmod(0o600)
        User = get_user_model()
        if not User.objects.filter(username=username).exists():
            User.objects.create_superuser(username=username, email="", password=password)
        if not Roster.objects.filter(name=DEMO_ROSTER).exists():
            config_import(raw=Path(config).read_bytes(), roster_name=DEMO_ROSTER)
            self.stdout.write(f"Loaded the sample roster {DEMO_ROSTER!r}.")
