"""What the benchmarks share: percentiles, result rows, and run data written straight into the tables.

Bulk rows are written the way the engine leaves them (same columns, same states), because making
thousands of escalations through the engine first would measure the set-up instead of the thing itself.
"""

import statistics
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

BENCH_PERSON_NUMBER = 447700100000


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))
    return ordered[rank]


def median(values: list[float]) -> float:
    return statistics.median(values)


@dataclass
class Result:
    """One line of the figures table."""

    number: int
    name: str
    figure: str
    target: str
    met: bool | None  # None: no target, only reported
    notes: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    load: str = ""  # the machine's 1-minute load average before / after the benchmark


class StatementCounter:
    """Counts the SQL statements run on this thread's connection inside the block."""

    def __init__(self) -> None:
        self.count = 0

    def __enter__(self) -> "StatementCounter":
        from django.db import connection

        self._wrapper = connection.execute_wrapper(self)
        self._wrapper.__enter__()
        return self

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)

    def __exit__(self, *exc: object) -> None:
        self._wrapper.__exit__(*exc)


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


# What the plan freezes from senders with a template and a tag (escalation/engine/windows.py): bench people
# never wrote, so their WhatsApp and Messenger windows are closed.
BUSINESS_INITIATED = {
    "whatsapp": {"template": {"name": "oncall_alert", "namespace": "whatsapp:hsm:it:oncall", "locale": "en-US",
                              "policy": "deterministic", "parameters": ["text"]}},
    "messenger": {"tag": "ACCOUNT_UPDATE"},
}


def workflow_text(body: dict) -> str:
    """The page's text in a Dispatch workflow request: the first free-text item's. A WhatsApp item comes first
    in bench plans, and it is a template, with no text of its own (BUSINESS_INITIATED)."""
    return next(item["message"]["content"]["text"] for item in body["workflow"]
                if item["message"]["content"]["type"] == "text")


def bench_plan(people: int, *, channels: tuple[str, ...] = ("whatsapp", "sms"), expiry_time: int = 600,
               condition: str = "read", rounds: int = 1, person_ids: list[int] | None = None) -> dict:
    """A frozen plan, as escalation_fire writes it, for `people` bench people."""
    senders = {"messenger": "1923256201474167", "viber_service_msg": "654321", "whatsapp": "447700900000",
               "sms": "447700900000"}
    plan_people = []
    for index in range(people):
        plan_people.append({
            "person_id": person_ids[index] if person_ids else None,
            "name": f"Bench person {index + 1}",
            "channels": [
                {"type": t, "address": str(BENCH_PERSON_NUMBER + 10 * index + c), "expiry_time": expiry_time,
                 "condition": condition, "sender": senders[t], **BUSINESS_INITIATED.get(t, {})}
                for c, t in enumerate(channels)
            ],
        })
    return {"rounds": rounds, "people": plan_people}


def bulk_escalations(count: int, *, plan: dict, api: str, created_at: datetime,
                     next_action_at: datetime | None, batch: int = 2000) -> list[int]:
    """`count` active escalations with `plan`, not yet started (current_round 0); their ids in order."""
    from escalation.models import Escalation, Event, EventKind

    ids: list[int] = []
    for start in range(0, count, batch):
        rows = [Escalation(roster_name="bench", message=f"bench alert {start + n}", api=api, plan=plan,
                           fired_by_name="bench", created_at=created_at, next_action_at=next_action_at)
                for n in range(min(batch, count - start))]
        made = Escalation.objects.bulk_create(rows)
        ids += [e.pk for e in made]
        Event.objects.bulk_create([Event(escalation_id=e.pk, kind=EventKind.FIRED, at=created_at,
                                         text="Fired by bench.") for e in made])
    return ids


def truncate_run_tables() -> None:
    """Empty every run table (escalations, pages, messages, events, webhooks) between benchmarks."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE escalation_escalation, escalation_page, escalation_message, escalation_event, "
                       "escalation_webhookevent RESTART IDENTITY CASCADE")
