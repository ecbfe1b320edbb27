"""A schedule's rules version, changed by the database in the same transaction as anything its rules are
read from: its layers, their participants, its overrides, and those people's names and active flags.

Triggers, not signals or code in each writer: a queryset's update(), a bulk create, a cascade, the admin's
inlines, the config import and a hand-written SQL fix all change the rows, and a process that kept the old
rules would page the wrong person. tests/test_schedule_rules_cache.py checks each kind of change on both
databases, so a later migration that rebuilds one of these tables on SQLite (which drops its triggers)
fails there.

Only the database chooses a version: any other change to it, such as a copy of the row read before a change
and saved after it (writing the old version back), is turned into a new one, never the value written.
"""

from django.db import migrations, models

import escalation.models.schedules

NEW_VERSION = {
    "postgresql": "floor(random() * 4611686018427387904)::bigint",
    "sqlite": "random()",
}
LAYER_SCHEDULES = "SELECT schedule_id FROM escalation_layer WHERE id IN ({layers})"
PERSON_SCHEDULES = ("SELECT l.schedule_id FROM escalation_layer l JOIN escalation_layerparticipant p "
                    "ON p.layer_id = l.id WHERE p.person_id = NEW.id "
                    "UNION SELECT schedule_id FROM escalation_override WHERE person_id = NEW.id")
OWN_CHOICE = "escalation_rules_version_chosen_by_database"
EMPTIED = "escalation_rules_emptied"
EMPTIABLE = ("escalation_layer", "escalation_layerparticipant", "escalation_override")
NAME_OR_ACTIVE_CHANGED = "OLD.name IS DISTINCT FROM NEW.name OR OLD.is_active IS DISTINCT FROM NEW.is_active"


def _bump(vendor: str, schedules: str) -> str:
    return f"UPDATE escalation_schedule SET rules_version = {NEW_VERSION[vendor]} WHERE id IN ({schedules});"


def _postgresql() -> tuple[list[str], list[str]]:
    # In a row trigger OLD is NULL on INSERT and NEW on DELETE, so `IN (OLD..., NEW...)` covers all three.
    watched = {
        "layer": ("INSERT OR UPDATE OR DELETE", "escalation_layer", "", "OLD.schedule_id, NEW.schedule_id"),
        "participant": ("INSERT OR UPDATE OR DELETE", "escalation_layerparticipant", "",
                        LAYER_SCHEDULES.format(layers="OLD.layer_id, NEW.layer_id")),
        "override": ("INSERT OR UPDATE OR DELETE", "escalation_override", "", "OLD.schedule_id, NEW.schedule_id"),
        "person": ("UPDATE OF name, is_active", "escalation_person", f"WHEN ({NAME_OR_ACTIVE_CHANGED})",
                   PERSON_SCHEDULES),
    }
    forward, backward = [], []
    for name, (events, table, when, schedules) in watched.items():
        function = f"escalation_rules_changed_by_{name}"
        forward += [
            f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {_bump('postgresql', schedules)} RETURN NULL; END $$;",
            f"CREATE TRIGGER {function} AFTER {events} ON {table} FOR EACH ROW {when} EXECUTE FUNCTION {function}();",
        ]
        backward += [f"DROP TRIGGER {function} ON {table};", f"DROP FUNCTION {function}();"]
    # TRUNCATE fires no row trigger: a statement trigger changes every schedule's version.
    forward.append(f"CREATE FUNCTION {EMPTIED}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                   f"UPDATE escalation_schedule SET rules_version = {NEW_VERSION['postgresql']}; RETURN NULL; END $$;")
    for table in EMPTIABLE:
        forward.append(f"CREATE TRIGGER {EMPTIED} AFTER TRUNCATE ON {table} FOR EACH STATEMENT "
                       f"EXECUTE FUNCTION {EMPTIED}();")
        backward.append(f"DROP TRIGGER {EMPTIED} ON {table};")
    backward.append(f"DROP FUNCTION {EMPTIED}();")
    forward += [
        f"CREATE FUNCTION {OWN_CHOICE}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF NEW.rules_version IS DISTINCT FROM OLD.rules_version THEN "
        f"NEW.rules_version := {NEW_VERSION['postgresql']}; END IF; RETURN NEW; END $$;",
        f"CREATE TRIGGER {OWN_CHOICE} BEFORE UPDATE ON escalation_schedule FOR EACH ROW EXECUTE FUNCTION {OWN_CHOICE}();",
    ]
    backward += [f"DROP TRIGGER {OWN_CHOICE} ON escalation_schedule;", f"DROP FUNCTION {OWN_CHOICE}();"]
    return forward, backward


def _sqlite() -> tuple[list[str], list[str]]:
    # SQLite has no OLD on INSERT nor NEW on DELETE, nor one trigger for several events: one per event.
    layer = {"insert": "NEW.schedule_id", "update": "OLD.schedule_id, NEW.schedule_id", "delete": "OLD.schedule_id"}
    participant = {event: LAYER_SCHEDULES.format(layers=layers.replace("schedule_id", "layer_id"))
                   for event, layers in layer.items()}
    watched = [(f"layer_{event}", f"AFTER {event.upper()} ON escalation_layer", "", schedules)
               for event, schedules in layer.items()]
    watched += [(f"participant_{event}", f"AFTER {event.upper()} ON escalation_layerparticipant", "", schedules)
                for event, schedules in participant.items()]
    watched += [(f"override_{event}", f"AFTER {event.upper()} ON escalation_override", "", schedules)
                for event, schedules in layer.items()]  # an override names its schedule as a layer does
    watched.append(("person", "AFTER UPDATE OF name, is_active ON escalation_person",
                    f"WHEN {NAME_OR_ACTIVE_CHANGED.replace('IS DISTINCT FROM', 'IS NOT')}", PERSON_SCHEDULES))
    forward, backward = [], []
    for name, event, when, schedules in watched:
        trigger = f"escalation_rules_changed_by_{name}"
        forward.append(f"CREATE TRIGGER {trigger} {event} FOR EACH ROW {when} BEGIN {_bump('sqlite', schedules)} END;")
        backward.append(f"DROP TRIGGER {trigger};")
    # SQLite's BEFORE triggers cannot change NEW: the row is updated again after (SQLite runs triggers
    # recursively only when asked to, so this one does not fire itself).
    forward.append(f"CREATE TRIGGER {OWN_CHOICE} AFTER UPDATE OF rules_version ON escalation_schedule FOR EACH ROW "
                   f"WHEN NEW.rules_version IS NOT OLD.rules_version BEGIN {_bump('sqlite', 'NEW.id')} END;")
    backward.append(f"DROP TRIGGER {OWN_CHOICE};")
    return forward, backward


def _statements(vendor: str) -> tuple[list[str], list[str]]:
    if vendor not in NEW_VERSION:
        raise NotImplementedError(f"The rules version triggers are written for PostgreSQL and SQLite, not {vendor}.")
    return _postgresql() if vendor == "postgresql" else _sqlite()


def create_triggers(apps, schema_editor):
    for statement in _statements(schema_editor.connection.vendor)[0]:
        schema_editor.execute(statement, params=None)


def drop_triggers(apps, schema_editor):
    for statement in _statements(schema_editor.connection.vendor)[1]:
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ('escalation', '0015_override_schedule_start'),
    ]

    operations = [
        migrations.AddField(
            model_name='schedule',
            name='rules_version',
            field=models.BigIntegerField(default=escalation.models.schedules.new_rules_version, editable=False),
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
