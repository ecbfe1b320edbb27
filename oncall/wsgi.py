import gc
import logging
import os
from importlib import import_module

from django.conf import settings
from django.core import checks
from django.core.management.base import SystemCheckError
from django.core.wsgi import get_wsgi_application
from django.db import DatabaseError, connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oncall.settings")
application = get_wsgi_application()

# gunicorn runs no system checks: without this, a configuration error (a key file that cannot sign, an
# unknown ESCALATION_API) would start a web process that fails later, request by request. Refused here,
# the web process stops at start with the same message as `manage.py check`.
_errors = [message for message in checks.run_checks() if message.is_serious() and not message.is_silenced()]
if _errors:
    raise SystemCheckError("System check identified errors:\n" + "\n".join(str(error) for error in _errors))

# What every request needs is loaded now (the URLconf imports the views and the admin) and then frozen out of
# the garbage collector's sight: its full collections otherwise walk those ~100,000 long-lived objects, a
# pause of tens of milliseconds on a slow machine that showed as the history pages' p99 (issue 18).
import_module(settings.ROOT_URLCONF)

# The schedules that rosters page are read now, not by the first fire this process serves: at 3 a.m. an
# alert is often a new process's first request (issue 16). Without a database yet, the first fire reads them.
from escalation.services.schedules import schedules_keep  # noqa: E402 (needs the apps loaded above)

try:
    schedules_keep()
except DatabaseError as error:
    logging.getLogger(__name__).warning("Schedules not read at start (the first fire will read them): %s", error)
finally:
    connections.close_all()  # a process forked from this one (gunicorn --preload) must not share it
gc.freeze()
