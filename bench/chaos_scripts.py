"""Scripted recipients for the chaos scenarios, the clock the scenarios move by hand, and the audit.

Every escalation gets a roster of its own (3 people x 2 channels, 120 s expiries, condition `read`), so
every address belongs to exactly one step of one escalation and the emulator's record can be read back
step by step. A script says what each phone does (the emulator plays it): either one channel of one
person reads the page a moment after it arrives (the escalation must end acknowledged by that person),
or nobody ever reads (it must end exhausted). The other phones deliver, reject or are undeliverable.

Time is moved explicitly (`Clock.tick`): a step nobody will read has its deadline set to now, which is
what the wall clock would do later. A step that will be read is never touched, so expiring it can
never race its read.
"""

import random
import time
from collections import Counter
from dataclasses import dataclass, field

CHANNELS = ("whatsapp", "messenger")  # both have read receipts (SMS has none)
PEOPLE = 3
# Long enough that a scripted read arrives in time even when a loaded machine delays webhooks by seconds
# (the clock expires every step nobody will read, so nothing waits this long for real).
EXPIRY = 120
QUIET_ACTIONS = ("deliver", "deliver", "reject", "undeliverable")  # phones that never read
READ_AFTER = 1.0  # emulated seconds from the page to the read


@dataclass
class Script:
    api: str
    names: list[str]
    addresses: list[list[str]]  # [person][channel]
    actions: list[list[str]]  # what each phone does
    target: tuple[int, int] | None  # (person, channel) that reads; None: nobody
    message: str
    roster_id: int
    escalation_id: int = 0

    def scenarios(self) -> list[dict]:
        found = []
        for person, row in enumerate(self.addresses):
            for channel, address in enumerate(row):
                scenario = {"address": address, "channel": CHANNELS[channel], "action": self.actions[person][channel]}
                if scenario["action"] == "read":
                    scenario["after"] = READ_AFTER
                found.append(scenario)
        return found


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


@dataclass
class Row:
    """One line of the chaos table, with notes for the report and problems for the log."""

    scenario: str
    escalations: int
    injected: str
    lost: int
    wrong_pages: int
    duplicates: int
    five_xx: int
    seconds: float = 0.0
    most_attempts: int = 0  # the most requests one step took
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    five_xx_allowed: int = 0  # answered while the database was down on purpose (Vonage retries them)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.wrong_pages or self.five_xx > self.five_xx_allowed)


def make_scripts(stack, count: int, *, prefix: str, rng: random.Random, apis: tuple[str, ...],
                 read_share: float = 0.7) -> list[Script]:
    """Rosters, people and the emulator's scenarios for `count` escalations (not fired yet)."""
    from escalation.models import RosterMember

    scripts = []
    for n in range(count):
        roster = stack.make_roster(f"{prefix}-{n}", people=PEOPLE, channels=CHANNELS, expiry_time=EXPIRY,
                                   condition="read")
        members = RosterMember.objects.filter(roster=roster).select_related("person").order_by("position")
        names, addresses = [], []
        for member in members:
            names.append(member.person.name)
            addresses.append(list(member.person.channels.order_by("position").values_list("address", flat=True)))
        target = None
        if rng.random() < read_share:
            target = (rng.randrange(PEOPLE), rng.randrange(len(CHANNELS)))
        actions = [[rng.choice(QUIET_ACTIONS) for _ in CHANNELS] for _ in range(PEOPLE)]
        if target is not None:
            actions[target[0]][target[1]] = "read"
        scripts.append(Script(api=apis[n % len(apis)], names=names, addresses=addresses, actions=actions,
                              target=target, message=f"{prefix} incident {n}", roster_id=roster.pk))
    scenarios = [s for script in scripts for s in script.scenarios()]
    for start in range(0, len(scenarios), 2000):
        stack.emulator.scenarios(scenarios[start:start + 2000])
    return scripts


def fire(script: Script) -> None:
    from django.conf import settings

    from escalation.models import Roster
    from escalation.services.escalations import escalation_fire

    # The API is frozen into each escalation at fire time, so one stack runs both kinds side by side.
    settings.ESCALATION_API = script.api
    roster = Roster.objects.get(pk=script.roster_id)
    script.escalation_id = escalation_fire(roster=roster, message=script.message, fired_by_name="chaos").pk


class Clock:
    """Moves the deadlines of steps nobody will answer to now (what the wall clock would do later)."""

    def __init__(self, *, only: list[int] | None = None, every: float = 0.25) -> None:
        self.only = only  # these escalations only (None: every active one)
        self.every = every  # seconds between passes: the chaos loop calls tick() far more often
        self.last = 0.0
        # Steps that will be read are left to their read: (escalation, person) for Dispatch pages,
        # (escalation, person, channel) for Messages API messages.
        self.protected_pages: set[tuple[int, int]] = set()
        self.protected_messages: set[tuple[int, int, int]] = set()

    def protect(self, script: Script) -> None:
        if script.target is not None:
            self.protected_pages.add((script.escalation_id, script.target[0]))
            self.protected_messages.add((script.escalation_id, *script.target))

    def tick(self) -> int:
        """One pass (if the last was long enough ago); returns how many steps it expired.

        It writes the way the engine's own writers do: the escalation rows locked first (in id order),
        then their messages and pages, then the timer set to now. Without the lock a worker deciding at
        that moment would set the timer from the deadline it read before, and sleep until the old one.
        """
        if time.monotonic() - self.last < self.every:
            return 0
        self.last = time.monotonic()
        from django.db import transaction
        from django.utils import timezone

        from escalation.models import Escalation, EscalationState

        now = timezone.now()
        candidates = {escalation_id for escalation_id, _ in self._due(now, None)}
        if not candidates:
            return 0
        with transaction.atomic():
            locked = list(Escalation.objects.select_for_update().filter(
                pk__in=candidates, state=EscalationState.ACTIVE).order_by("pk").values_list("pk", flat=True))
            due = self._due(now, locked)
            for _, update in due:
                update(deadline=now)
            Escalation.objects.filter(pk__in={escalation_id for escalation_id, _ in due}).update(next_action_at=now)
        return len(due)

    def _due(self, now, among: list[int] | None) -> list[tuple[int, object]]:
        """(escalation id, an update() for one step's deadline) for each unprotected step still waiting."""
        from escalation.models import EscalationState, Message, Page, PageState

        only = self.only if among is None else among
        messages = Message.objects.filter(page__escalation__state=EscalationState.ACTIVE, deadline__gt=now)
        # A Dispatch page is over once Vonage's workflow is (its final report came): only then has every
        # channel been tried, so expiring it earlier would cut the workflow short.
        pages = Page.objects.filter(escalation__state=EscalationState.ACTIVE, escalation__api="dispatch",
                                    state=PageState.ACTIVE, deadline__gt=now).exclude(dispatch_final_status="")
        if only is not None:
            messages = messages.filter(page__escalation_id__in=only)
            pages = pages.filter(escalation_id__in=only)
        due = []
        for pk, escalation_id, person, channel in messages.values_list(
                "pk", "page__escalation_id", "page__index", "channel_index"):
            if (escalation_id, person, channel) not in self.protected_messages:
                due.append((escalation_id, Message.objects.filter(pk=pk).update))
        for pk, escalation_id, person in pages.values_list("pk", "escalation_id", "index"):
            if (escalation_id, person) not in self.protected_pages:
                due.append((escalation_id, Page.objects.filter(pk=pk).update))
        return due


def in_flight() -> int:
    """Sends claimed by a worker but not yet recorded: what a kill right now could cut off."""
    from django.utils import timezone

    from escalation.models import Message, MessageStatus, Page

    now = timezone.now()
    return (Message.objects.filter(claimed_until__gt=now, message_uuid=None, status=MessageStatus.QUEUED).count()
            + Page.objects.filter(claimed_until__gt=now, dispatch_uuid=None, state="active").count())


def active_count(ids: list[int]) -> int:
    from escalation.models import Escalation, EscalationState

    return Escalation.objects.filter(pk__in=ids, state=EscalationState.ACTIVE).count()


# --- reading the emulator's record -------------------------------------------------------------------------

def all_records(fetch, *, page: int = 5000) -> list[dict]:
    """Every record of an emulator log, read in pages by sequence number."""
    found: list[dict] = []
    since = 0
    while True:
        batch = fetch(since=since, limit=page)
        found.extend(batch)
        if len(batch) < page:
            return found
        since = batch[-1]["seq"]


def request_addresses(record: dict) -> list[str]:
    """The addresses one API request pages: the v1 message's `to`, or every item of a workflow."""
    body = record["body"]
    if not isinstance(body, dict):
        return []
    if record["path"] == "/v1/messages":
        return [str(body.get("to", ""))]
    items = body.get("workflow") or []
    return [str(item["to"].get("number") or item["to"].get("id")) for item in items if isinstance(item, dict)]


def webhook_5xx(stack, *, after: float = 0.0) -> int:
    """Webhooks the app answered with a 5xx (delivered after the wall-clock time `after`)."""
    records = all_records(lambda **kw: stack.emulator._get("webhooks", **kw))
    return sum(1 for r in records if r["status"] is not None and r["status"] >= 500 and r["at"] > after)


# --- the audit ---------------------------------------------------------------------------------------------

@dataclass
class Audit:
    escalations: int = 0
    lost: int = 0  # escalations not ended as scripted (or not ended at all), and steps never attempted
    wrong_pages: int = 0  # messages after the escalation ended, or to someone the script never reaches
    duplicates: int = 0  # accepted sends beyond the first for one step
    duplicates_by_api: Counter = field(default_factory=Counter)
    over_retry_bound: int = 0  # steps sent more often than ESCALATION_SEND_ATTEMPTS allows
    most_attempts: int = 0  # the most requests any one step took
    errors_unrecorded: int = 0  # failed steps without the error written down
    problems: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.problems) < 40:
            self.problems.append(text)


@dataclass
class Sends:
    """The emulator's record, by step: a step is keyed by its address (a Dispatch workflow by its first)."""

    attempts: Counter
    accepted: Counter
    phone_messages: list[dict]  # every message the phones received (Dispatch items included)
    our_sends: list[dict]  # every request of ours the emulator accepted, as {"to": first address, "created"}


def sends(stack, addresses: set[str] | dict) -> Sends:
    attempts: Counter = Counter()
    accepted: Counter = Counter()
    our_sends = []
    for record in all_records(stack.emulator_requests):
        paged = request_addresses(record)
        if paged and paged[0] in addresses:
            attempts[paged[0]] += 1
            if record["status"] == 202:
                accepted[paged[0]] += 1
                our_sends.append({"to": paged[0], "created": record["at"]})
    phone_messages = [m for m in stack.emulator.messages() if m["api"] != "inbound" and m["to"] in addresses]
    return Sends(attempts, accepted, phone_messages, our_sends)


def pages_after_end(phone_messages: list[dict], owner: dict[str, int], ended: dict[int, float | None]) -> list[str]:
    """Messages a phone received after the escalation that paged it had ended."""
    found = []
    for message in phone_messages:
        escalation_id = owner[message["to"]]
        if ended[escalation_id] is not None and message["created"] > ended[escalation_id]:
            found.append(f"#{escalation_id}: {message['to']} paged {message['created'] - ended[escalation_id]:.3f} s "
                         "after the escalation ended")
    return found


def audit(stack, scripts: list[Script], *, send_attempts: int) -> Audit:
    """Compare what happened (database, emulator) with what each script says must happen."""
    from escalation.models import Escalation, Message, Page

    result = Audit(escalations=len(scripts))
    step_of: dict[str, tuple[Script, int, int]] = {}
    for script in scripts:
        for person, row in enumerate(script.addresses):
            for channel, address in enumerate(row):
                step_of[address] = (script, person, channel)
    record = sends(stack, step_of)
    attempts, accepted = record.attempts, record.accepted
    for address, count in accepted.items():
        if count > 1:
            result.duplicates += count - 1
            script, person, channel = step_of[address]
            result.duplicates_by_api[script.api] += count - 1
            result.note(f"#{script.escalation_id} ({script.api}): person {person + 1} channel {channel + 1} "
                        f"sent {count} times")
    # Each attempt is claimed (and counted) before its request, so not even a kill can add one.
    result.most_attempts = max(attempts.values(), default=0)
    for address, count in attempts.items():
        if count > send_attempts:
            result.over_retry_bound += 1
            script, person, channel = step_of[address]
            result.note(f"#{script.escalation_id}: person {person + 1} channel {channel + 1}: {count} requests")

    escalations = Escalation.objects.in_bulk([s.escalation_id for s in scripts])
    for script in scripts:
        escalation = escalations[script.escalation_id]
        reached = _expected_reach(script, accepted)
        if escalation.state == "active":
            result.lost += 1
            result.note(f"#{escalation.pk} ({script.api}) still active: {describe(escalation)}")
            continue
        if reached is None:
            if escalation.state != "exhausted":
                result.lost += 1
                result.note(f"#{escalation.pk} ({script.api}) should be exhausted, is {escalation.state}: "
                            f"{escalation.outcome}")
        else:
            person = reached[0]
            if escalation.state != "acknowledged" or escalation.acknowledged_by_name != script.names[person]:
                result.lost += 1
                result.note(f"#{escalation.pk} ({script.api}) should be acknowledged by {script.names[person]}, "
                            f"is {escalation.state} ({escalation.outcome})")
        # Every step before the end was tried (sent, or its failure recorded).
        last_person = reached[0] if reached else PEOPLE - 1
        for person in range(last_person + 1):
            channels = range(len(CHANNELS)) if script.api == "messages" else range(1)
            if script.api == "messages" and reached and person == reached[0]:
                channels = range(reached[1] + 1)
            for channel in channels:
                if not attempts[script.addresses[person][channel]]:
                    result.lost += 1
                    result.note(f"#{escalation.pk} ({script.api}): person {person + 1} channel {channel + 1} "
                                "was never tried")

    # Pages after the end, or to people the script never reaches.
    owner = {address: step[0].escalation_id for address, step in step_of.items()}
    ended = {pk: e.ended_at.timestamp() if e.ended_at else None for pk, e in escalations.items()}
    late = pages_after_end(record.phone_messages, owner, ended)
    result.wrong_pages += len(late)
    for text in late:
        result.note(text)
    for message in record.phone_messages:
        script, person, _ = step_of[message["to"]]
        reached = _expected_reach(script, accepted)
        if reached is not None and person > reached[0]:
            result.wrong_pages += 1
            result.note(f"#{script.escalation_id}: {script.names[person]} paged though {script.names[reached[0]]} "
                        "was to be reached first")

    # A step that failed says why.
    for message in Message.objects.filter(page__escalation_id__in=escalations, status="failed", error=""):
        result.errors_unrecorded += 1
        result.note(f"message {message.pk} failed without an error")
    for page in Page.objects.filter(escalation_id__in=escalations, state="passed_over", dispatch_uuid=None,
                                    escalation__api="dispatch", last_error=""):
        result.errors_unrecorded += 1
        result.note(f"page {page.pk} passed over without a workflow and without an error")
    return result


def describe(escalation) -> str:
    """Where an escalation stands, for a report on one that did not end."""
    from django.utils import timezone

    from escalation.models import Message, Page

    now = timezone.now()

    def ago(moment) -> str:
        return "-" if moment is None else f"{(moment - now).total_seconds():+.1f}s"

    parts = [f"timer {ago(escalation.next_action_at)}, round {escalation.current_round} person "
             f"{escalation.current_index + 1}"]
    for page in Page.objects.filter(escalation=escalation).order_by("round", "index"):
        parts.append(f"page {page.index + 1} {page.state} deadline {ago(page.deadline)} workflow "
                     f"{'yes' if page.dispatch_uuid else 'no'} attempts {page.send_attempts} claim "
                     f"{ago(page.claimed_until)} final {page.dispatch_final_status or '-'}")
        for m in Message.objects.filter(page=page).order_by("channel_index"):
            parts.append(f"  ch{m.channel_index + 1} {m.status} uuid {'yes' if m.message_uuid else 'no'} "
                         f"deadline {ago(m.deadline)} attempts {m.send_attempts} claim {ago(m.claimed_until)}")
    parts.append("decide() now: " + _try_decide(escalation.pk))
    return "; ".join(parts)


def _try_decide(escalation_id: int) -> str:
    """What the worker would do with the escalation right now (in a transaction rolled back after)."""
    from django.db import DatabaseError, transaction
    from django.utils import timezone

    from escalation.engine.batch import Batch
    from escalation.engine.step import decide
    from escalation.models import Escalation

    try:
        with transaction.atomic():
            escalation = Escalation.objects.select_for_update(nowait=True).get(pk=escalation_id)
            try:
                batch = Batch(timezone.now(), [escalation])
                action = decide(escalation, batch)
                batch.save()
                answer = f"{action!r}, timer {escalation.next_action_at}"
            except Exception as e:  # noqa: BLE001 - reported, this is a diagnosis
                answer = f"raised {e!r}"
            transaction.set_rollback(True)
    except DatabaseError as e:
        answer = f"row locked by another session ({e.__class__.__name__})"
    return answer


def database_activity() -> list[str]:
    """Every other session on this database and what it waits for: the first thing to look at when an
    escalation does not move."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.pid, a.state, now() - a.xact_start, a.wait_event_type, a.wait_event, left(a.query, 120), "
            "(SELECT count(*) FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted) "
            "FROM pg_stat_activity a WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() "
            "AND (a.state <> 'idle' OR a.xact_start IS NOT NULL)")
        return [" | ".join(str(v) for v in row) for row in cursor.fetchall()]


def _expected_reach(script: Script, accepted: Counter) -> tuple[int, int] | None:
    """Whom the script reaches, given which sends Vonage accepted (a refused target cannot read)."""
    if script.target is None:
        return None
    person, channel = script.target
    key = script.addresses[person][channel if script.api == "messages" else 0]
    return script.target if accepted[key] else None


def wait_until(predicate, *, timeout: float, tick=None, interval: float = 0.2) -> bool:
    """Poll `predicate()` (running `tick()` between polls) until it holds or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tick is not None:
            tick()
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
