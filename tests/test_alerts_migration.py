"""0011_alerts: an integration's escalation still paging when the app is upgraded becomes an open alert, so
the sender's next repeat joins it instead of failing on the one-active-escalation-per-alert constraint."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("escalation", "0010_reached_and_stop_rule")]
AFTER = [("escalation", "0011_alerts")]


@pytest.fixture
def executor():
    executor = MigrationExecutor(connection)
    yield executor
    # Whatever the test left, the next tests get the schema of every migration.
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_an_escalation_paging_at_upgrade_becomes_an_open_alert(executor):
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    roster = old.get_model("escalation", "Roster").objects.create(name="primary", rounds=1)
    integration = old.get_model("escalation", "Integration").objects.create(
        name="prometheus", roster=roster, format="alertmanager", token="t" * 43)
    Escalation = old.get_model("escalation", "Escalation")
    now = timezone.now()
    common = {"roster": roster, "roster_name": "primary", "api": "dispatch", "plan": {}, "created_at": now,
              "integration": integration}
    paging = Escalation.objects.create(message="InstanceDown", state="active", next_action_at=now,
                                       dedup_key="group-1", **common)
    Escalation.objects.create(message="Disk full", state="acknowledged", dedup_key="group-2", **common)
    Escalation.objects.create(message="by hand", state="active", next_action_at=now, **{**common, "integration": None})

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    alerts = list(new.get_model("escalation", "Alert").objects.values_list(
        "integration_id", "dedup_key", "state", "escalation_id", "escalations", "summary"))
    assert alerts == [(integration.pk, "group-1", "triggered", paging.pk, 1, "InstanceDown")]
