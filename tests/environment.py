"""The test run's own environment, set before pytest-django imports the settings (loaded by `-p` in
pyproject.toml, which runs before any conftest).

The tests run with DEBUG off, as production does, so they need a SECRET_KEY just as production does: a fresh
one per run, like `make run` makes for the demo. Child processes the tests start inherit it.
"""

import os
import secrets

os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
