"""What a web process does as it starts (oncall/wsgi.py), run as gunicorn runs it: in a fresh interpreter."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_it_starts_without_its_database_and_says_the_first_fire_will_read_the_schedules(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'never-migrated.sqlite3'}"}
    web = subprocess.run([sys.executable, "-c", "import oncall.wsgi; print('serving')"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert web.returncode == 0, web.stderr
    assert web.stdout.strip() == "serving"
    assert "Schedules not read at start (the first fire will read them): no such table" in web.stderr
