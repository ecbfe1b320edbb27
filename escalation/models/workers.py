"""The escalation workers' heartbeats: the alarm banner says so when none has run lately."""

from django.db import models


class WorkerHeartbeat(models.Model):
    """One row per worker process, moved on after its passes (at most once a second, see engine/worker.py)."""

    # host:pid, unique per running process; a restarted worker writes a new row, the old one simply ages.
    name = models.CharField(max_length=200, unique=True)
    started_at = models.DateTimeField()
    last_pass_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.name} (last pass {self.last_pass_at:%H:%M:%S})"
