"""The webhook storm: signed webhooks at up to ~1,000/s against gunicorn while the worker keeps paging.

Real escalations are fired first (160 on the Messages API, 40 on Dispatch; every phone stays silent so
only our storm moves them). Then, in phases of a few seconds, the storm sends each group's story mixed
into a flood of noise:

- shuffled:  submitted/delivered/read of person 1's first message, in random order, each up to 3 times
             -> acknowledged by person 1, the message ends `read`.
- rejects:   every message rejected as soon as it is sent, then a late `delivered` for it
             -> the worker fails over through everyone -> exhausted; no status moves back.
- late read: person 1 passed over, person 2 being paged, then person 1 reads their old message
             -> acknowledged by person 1 (a late read still reaches someone).
- answered:  person 2 reads, then person 1 reads their old message -> stays acknowledged by person 2.
- final first (Dispatch): the workflow's `completed` report before its item's statuses -> acknowledged.
- final error (Dispatch): `error` reports before any status -> each person passed over -> exhausted.
- noise: statuses and final reports for unknown messages and workflows, replies from strangers, and
  repeats of all of these (Vonage's retries).
The emulator's own webhooks are duplicated and reordered as well (its webhook faults).

Audit: zero 5xx; every event answered 2xx is stored (its dedup key in WebhookEvent); no message's status
ever moved back (its status events rise strictly, and it ends at the highest status stored for it); every
escalation ends as its story says.
"""

import asyncio
import json
import random
import statistics
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from types import SimpleNamespace
from urllib.parse import urlsplit

from bench import chaos_scripts as scripts_
from bench.chaos_scripts import Row, log
from bench.harness import SENDERS, Stack
from emulator import shapes

TARGET_RATE = 1000.0  # requests per second offered
STORM_SECONDS = 30.0  # shortened from a minute: see the report
PHASE_SECONDS = 5.0
# Nothing expires by itself during the storm, however slow the machine: the stories decide every outcome
# (and the clock moves the late-read groups on explicitly).
STORM_EXPIRY = 3600
CONCURRENCY = 256  # connections open at once at most (gunicorn's backlog holds the rest)
REQUEST_TIMEOUT = 30.0
GROUPS = ("shuffled", "rejects", "late read", "answered")
DISPATCH_GROUPS = ("final first", "final error")


@dataclass
class Sent:
    raw: bytes
    authorization: str
    path: str
    noise: bool = False  # noise is dropped once its phase is over; a story is always told in full
    statuses: list = field(default_factory=list)  # one per delivery attempt: HTTP status or None


@dataclass
class StormResult:
    offered: int = 0
    answered: int = 0
    five_xx: int = 0
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    answers: Counter = field(default_factory=Counter)  # HTTP status -> count


def _http(url: str, path: str, raw: bytes, authorization: str) -> bytes:
    host = urlsplit(url).netloc
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(raw)}\r\nAuthorization: {authorization}\r\nConnection: close\r\n"
            "User-Agent: chaos-storm\r\n\r\n")
    return head.encode() + raw


async def _post(host: str, port: int, request: bytes) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        await reader.read()  # the rest, until gunicorn closes the connection
        return status
    finally:
        writer.close()


async def _send(url: str, batch: list[Sent], rate: float, seconds: float, result: StormResult) -> None:
    """Open loop: request i goes out at start + i / rate (or as soon as a connection is free); noise not
    sent within `seconds` is dropped, so an overloaded server makes the phase smaller, not longer."""
    parts = urlsplit(url)
    requests = [_http(url, s.path, s.raw, s.authorization) for s in batch]
    loop = asyncio.get_running_loop()
    start = loop.time()
    cursor = 0

    async def connection() -> None:
        nonlocal cursor
        while cursor < len(batch):
            index = cursor
            cursor += 1
            if batch[index].noise and loop.time() > start + seconds:
                continue
            delay = start + index / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            began = loop.time()
            try:
                status = await asyncio.wait_for(_post(parts.hostname, parts.port, requests[index]), REQUEST_TIMEOUT)
            except (OSError, TimeoutError, ValueError, IndexError):
                status = None
            batch[index].statuses.append(status)
            result.offered += 1
            if status is not None:
                result.answers[status] += 1
                result.answered += 1
                result.latencies.append(loop.time() - began)
                if status >= 500:
                    result.five_xx += 1

    await asyncio.gather(*(connection() for _ in range(min(CONCURRENCY, len(batch)))))


class Storm:
    def __init__(self, stack: Stack, rng: random.Random) -> None:
        self.stack, self.rng = stack, rng
        self.sent: list[Sent] = []
        self.noise_pool: list[Sent] = []
        self.result = StormResult()

    # --- making webhooks ------------------------------------------------------------------------------

    def webhook(self, body: dict, path: str = "/webhooks/status") -> Sent:
        raw = json.dumps(body, separators=(",", ":")).encode()
        return Sent(raw=raw, authorization=self.stack.sign(raw), path=path)

    def repeated(self, body: dict, times: int = 1) -> list[Sent]:
        # A retry is the same delivery again: same body, same signature.
        one = self.webhook(body)
        return [one] + [Sent(one.raw, one.authorization, one.path) for _ in range(times - 1)]

    def noise(self) -> Sent:
        roll = self.rng.random()
        if roll < 0.2 and self.noise_pool:
            earlier = self.rng.choice(self.noise_pool)
            return Sent(earlier.raw, earlier.authorization, earlier.path, noise=True)
        stranger = SimpleNamespace(uuid=str(uuid.uuid4()), to=str(447800000000 + self.rng.randrange(10**6)),
                                   sender=SENDERS["whatsapp"], channel="whatsapp", client_ref="",
                                   dispatch_uuid="", error=None)
        status = self.rng.choice(["submitted", "delivered", "read", "rejected", "undeliverable"])
        if roll < 0.55:
            made = self.webhook(shapes.v1_status(stranger, status, time.time()))
        elif roll < 0.7:
            stranger.dispatch_uuid = str(uuid.uuid4())
            made = self.webhook(shapes.v01_status(stranger, status, time.time()))
        elif roll < 0.82:
            workflow = SimpleNamespace(uuid=str(uuid.uuid4()))
            stranger.status = status
            made = self.webhook(shapes.final_report(workflow, [stranger], self.rng.choice(["completed", "error"]),
                                                    time.time()))
        else:
            made = self.webhook(shapes.v1_inbound(message_uuid=str(uuid.uuid4()), channel="whatsapp",
                                                  sender=stranger.to, to=SENDERS["whatsapp"], text="who is this?",
                                                  at=time.time()), path="/webhooks/inbound")
        made.noise = True
        self.noise_pool.append(made)
        return made

    # --- sending --------------------------------------------------------------------------------------

    def blast(self, story: list[Sent], seconds: float, rate: float) -> None:
        """The story mixed into noise, for `seconds` at `rate`; order within a phase is random (what may
        arrive reordered), while what must come later (a late read) is written into a later phase."""
        batch = story + [self.noise() for _ in range(max(0, int(rate * seconds) - len(story)))]
        self.rng.shuffle(batch)
        began = time.monotonic()
        asyncio.run(_send(self.stack.url, batch, rate, seconds, self.result))
        self.result.seconds += time.monotonic() - began
        self.sent.extend(s for s in batch if s.statuses)

    def redeliver_failures(self) -> None:
        """What Vonage does with a webhook that got no 2xx: deliver it again (a few times here)."""
        for _ in range(3):
            failed = [s for s in self.sent if not any(st is not None and st < 300 for st in s.statuses)]
            if not failed:
                return
            asyncio.run(_send(self.stack.url, failed, 200.0, 60.0, self.result))


def _message_stand_in(message) -> SimpleNamespace:
    return SimpleNamespace(uuid=str(message.message_uuid), to=message.to_address, sender=SENDERS[message.channel_type],
                           channel=message.channel_type, client_ref=message.client_ref, dispatch_uuid="", error=None)


def run(stack: Stack, rng: random.Random, *, scale: float = 1.0) -> Row:
    from django.conf import settings

    from escalation.models import Escalation, Message, Page
    from escalation.services.escalations import escalation_fire

    per_group = max(4, int(40 * scale))
    storm_seconds = max(10.0, STORM_SECONDS * min(scale, 1.0))
    # Silent phones: the emulator only says `submitted`; everything else is the storm's doing.
    groups: dict[str, list[int]] = defaultdict(list)
    scenarios = []
    for group in GROUPS + DISPATCH_GROUPS:
        settings.ESCALATION_API = "dispatch" if group in DISPATCH_GROUPS else "messages"
        for n in range(per_group // (2 if group in DISPATCH_GROUPS else 1)):
            roster = stack.make_roster(f"storm {group} {n}", people=2, channels=scripts_.CHANNELS,
                                       expiry_time=STORM_EXPIRY)
            escalation = escalation_fire(roster=roster, message=f"storm {group} {n}", fired_by_name="chaos")
            groups[group].append(escalation.pk)
            scenarios += [{"address": c["address"], "channel": c["type"], "action": "never_deliver"}
                          for p in escalation.plan["people"] for c in p["channels"]]
    stack.emulator.scenarios(scenarios)
    # The emulator's own webhooks (the first pages' statuses) come twice and out of order too.
    stack.emulator.webhook_faults(duplicate=True, reorder=True)
    everyone = [pk for ids in groups.values() for pk in ids]
    log(f"storm: {len(everyone)} escalations fired; waiting for their first pages")

    def first_pages_sent() -> bool:
        sent = Message.objects.filter(page__escalation_id__in=everyone).exclude(message_uuid=None)
        sent_pages = Page.objects.filter(escalation_id__in=everyone).exclude(dispatch_uuid=None)
        return sent.values("page__escalation_id").distinct().count() + sent_pages.count() >= len(everyone)

    scripts_.wait_until(first_pages_sent, timeout=60)
    # Late read and answered: person 1 passed over by the clock, person 2 paged.
    late = groups["late read"] + groups["answered"]
    clock = scripts_.Clock(only=late)
    clock.protected_messages = {(pk, 1, channel) for pk in late for channel in range(len(scripts_.CHANNELS))}
    scripts_.wait_until(lambda: Page.objects.filter(escalation_id__in=late, index=1).exclude(
        messages__message_uuid=None).count() >= len(late), timeout=60, tick=clock.tick)

    storm = Storm(stack, rng)

    def current(escalation_id: int) -> Message | None:
        """The latest message sent for the escalation, if it still waits for an answer."""
        message = (Message.objects.filter(page__escalation_id=escalation_id).exclude(message_uuid=None)
                   .order_by("-page__index", "-channel_index").select_related("page").first())
        return message if message is not None and message.status_rank < 3 else None

    def first_message(escalation_id: int) -> Message:
        return Message.objects.get(page__escalation_id=escalation_id, page__index=0, channel_index=0)

    def workflow_items() -> dict[str, list[dict]]:
        items = defaultdict(list)
        for m in stack.emulator.messages(api="dispatch"):
            items[m["dispatch_uuid"]].append(m)
        return items

    def rejects_story() -> list[Sent]:
        story = []
        for pk in groups["rejects"]:
            message = current(pk)
            if message is not None and Escalation.objects.filter(pk=pk, state="active").exists():
                stand_in = _message_stand_in(message)
                story += storm.repeated(shapes.v1_status(stand_in, "rejected", time.time()), rng.randint(1, 2))
                story += storm.repeated(shapes.v1_status(stand_in, "delivered", time.time()))  # lower, late
        return story

    def final_error_story() -> list[Sent]:
        story = []
        pages = Page.objects.filter(escalation_id__in=groups["final error"], state="active",
                                    dispatch_final_status="").exclude(dispatch_uuid=None)
        for page in pages:
            report = shapes.final_report(SimpleNamespace(uuid=str(page.dispatch_uuid)), [], "error", time.time())
            story += storm.repeated(report, rng.randint(1, 2))
        return story

    def phase_one() -> list[Sent]:
        story = rejects_story() + final_error_story()
        for pk in groups["shuffled"]:
            stand_in = _message_stand_in(first_message(pk))
            for status in ("submitted", "delivered", "read"):
                story += storm.repeated(shapes.v1_status(stand_in, status, time.time()), rng.randint(1, 3))
        for pk in groups["answered"]:
            message = Message.objects.get(page__escalation_id=pk, page__index=1, channel_index=0)
            story += storm.repeated(shapes.v1_status(_message_stand_in(message), "read", time.time()), 2)
        for pk in groups["late read"]:
            story += storm.repeated(shapes.v1_status(_message_stand_in(first_message(pk)), "read", time.time()), 2)
        items = workflow_items()
        for page in Page.objects.filter(escalation_id__in=groups["final first"], index=0):
            dispatch_uuid = str(page.dispatch_uuid)
            item = items[dispatch_uuid][0]
            stand_in = SimpleNamespace(uuid=item["message_uuid"], to=item["to"], sender=item["from"],
                                       channel=item["channel"], client_ref="", dispatch_uuid=dispatch_uuid,
                                       error=None)
            done = SimpleNamespace(uuid=item["message_uuid"], channel=item["channel"], status="read")
            story += storm.repeated(shapes.final_report(SimpleNamespace(uuid=dispatch_uuid), [done], "completed",
                                                        time.time()))
            for status in ("submitted", "delivered", "read"):
                story += storm.repeated(shapes.v01_status(stand_in, status, time.time()), rng.randint(1, 3))
        return story

    def phase_two() -> list[Sent]:
        story = rejects_story() + final_error_story()
        for pk in groups["answered"]:  # person 2 answered in phase one; now person 1's read turns up
            story += storm.repeated(shapes.v1_status(_message_stand_in(first_message(pk)), "read", time.time()), 2)
        return story

    phases = max(2, int(storm_seconds / PHASE_SECONDS))
    log(f"storm: {phases} phases of {PHASE_SECONDS:.0f} s at {TARGET_RATE:.0f} requests/s offered")
    for number in range(phases):
        story = phase_one() if number == 0 else phase_two() if number == 1 else rejects_story() + final_error_story()
        storm.blast(story, PHASE_SECONDS, TARGET_RATE)
        log(f"storm: phase {number + 1}: {storm.result.offered} sent so far, "
            f"{storm.result.offered / max(storm.result.seconds, 0.001):.0f}/s")
    # The rejects and final-error stories need a few more rounds than the storm lasted: play them out.
    rest = groups["rejects"] + groups["final error"]
    scripts_.wait_until(lambda: scripts_.active_count(rest) == 0, timeout=60,
                        tick=lambda: storm.blast(rejects_story() + final_error_story(), 0.0, 200.0), interval=0.5)
    storm.redeliver_failures()
    return audit(stack, storm, groups, storm_seconds)


def audit(stack: Stack, storm: Storm, groups: dict[str, list[int]], storm_seconds: float) -> Row:
    from escalation.models import STATUS_RANK, Escalation, Event, Message, WebhookEvent
    from escalation.services.webhooks import webhook_identity
    from escalation.vonage.payloads import StatusUpdate
    from escalation.vonage.webhooks import parse_webhook

    problems = []
    # Lost: an event answered 2xx whose dedup key is not stored, or one never answered 2xx at all. The
    # emulator's record is read before the table: it keeps delivering, and a 2xx is only sent after commit.
    emulator_deliveries = scripts_.all_records(lambda **kw: stack.emulator._get("webhooks", **kw))
    stored = set(WebhookEvent.objects.values_list("dedup_key", flat=True))
    answered_keys, unanswered = set(), 0
    for sent in storm.sent:
        webhook = parse_webhook(json.loads(sent.raw), kind_hint=sent.path.rsplit("/", 1)[1])
        key = webhook_identity(webhook)[1]
        if any(s is not None and s < 300 for s in sent.statuses):
            answered_keys.add(key)
        else:
            unanswered += 1
    # The emulator's deliveries count the same way (answered 2xx: stored).
    for record in emulator_deliveries:
        if record["status"] is not None and record["status"] < 300:
            kind = "inbound" if record["kind"] == "inbound" else "status"
            answered_keys.add(webhook_identity(parse_webhook(record["body"], kind_hint=kind))[1])
    missing = answered_keys - stored
    problems += [f"event {key} answered 2xx but not stored" for key in sorted(missing)[:5]]

    # Backwards: a message's status events must rise, and it ends at the highest status stored for it.
    everyone = [pk for ids in groups.values() for pk in ids]
    messages = list(Message.objects.filter(page__escalation_id__in=everyone))
    highest: Counter = Counter()
    for message_id, body, kind in WebhookEvent.objects.filter(message__in=messages).values_list(
            "message_id", "body", "kind"):
        webhook = parse_webhook(body, kind_hint="inbound" if kind == "inbound" else "status")
        if isinstance(webhook, StatusUpdate):
            highest[message_id] = max(highest[message_id], STATUS_RANK.get(webhook.status, 0))
    ranks_seen = defaultdict(list)
    for message_id, kind in Event.objects.filter(message__in=messages, kind__in=list(STATUS_RANK)).order_by(
            "id").values_list("message_id", "kind"):
        ranks_seen[message_id].append(STATUS_RANK[kind])
    backwards = 0
    for message in messages:
        ranks = ranks_seen[message.pk]
        if any(b <= a for a, b in zip(ranks, ranks[1:], strict=False)) or message.status_rank < highest[message.pk]:
            backwards += 1
            problems.append(f"message {message.pk} moved back: events {ranks}, ends at rank {message.status_rank}")

    # Outcomes by story.
    escalations = Escalation.objects.in_bulk(everyone)
    expected = {}
    for group, ids in groups.items():
        for pk in ids:
            names = [p["name"] for p in escalations[pk].plan["people"]]
            expected[pk] = {"shuffled": ("acknowledged", names[0]), "late read": ("acknowledged", names[0]),
                            "final first": ("acknowledged", names[0]), "answered": ("acknowledged", names[1]),
                            }.get(group, ("exhausted", ""))
    wrong_outcomes = 0
    for pk, (state, by) in expected.items():
        escalation = escalations[pk]
        if escalation.state != state or escalation.acknowledged_by_name != by:
            wrong_outcomes += 1
            problems.append(f"#{pk}: {escalation.state} by {escalation.acknowledged_by_name!r}, "
                            f"expected {state} {by!r} ({escalation.outcome})")

    # The pages the worker sent meanwhile: none twice, none after its escalation ended. Our requests, not
    # the phones' record: the storm ended Dispatch workflows with made-up reports, so the emulator's own
    # workflows carry on failing over to the next channel, as a real one would not have.
    owner = {c["address"]: pk for pk, e in escalations.items() for p in e.plan["people"] for c in p["channels"]}
    record = scripts_.sends(stack, owner)
    duplicates = sum(n - 1 for n in record.accepted.values())
    ended = {pk: e.ended_at.timestamp() if e.ended_at else None for pk, e in escalations.items()}
    late = scripts_.pages_after_end(record.our_sends, owner, ended)
    problems += late

    # The worker under the storm: how long from a rejection to the next page.
    delays = []
    for message in Message.objects.filter(page__escalation_id__in=groups["rejects"], status="rejected"):
        following = Message.objects.filter(page__escalation_id=message.page.escalation_id,
                                           created_at__gte=message.failed_at).order_by("created_at").first()
        if following is not None:
            delays.append((following.created_at - message.failed_at).total_seconds())

    result = storm.result
    rate = result.offered / max(result.seconds, 0.001)
    row = Row("webhook storm", len(expected),
              f"{result.offered} webhooks in {result.seconds:.0f} s ({rate:.0f}/s achieved of {TARGET_RATE:.0f}/s "
              "offered)", len(missing) + unanswered + backwards + wrong_outcomes, len(late), duplicates,
              result.five_xx + scripts_.webhook_5xx(stack), problems=problems)
    latencies = sorted(result.latencies) or [0.0]
    row.notes.append(f"{len(answered_keys)} distinct events answered 2xx, {len(answered_keys) - len(missing)} "
                     f"of them stored; {unanswered} deliveries never answered 2xx")
    row.notes.append(f"{backwards} statuses moved back; {wrong_outcomes} escalations ended unlike their story")
    row.notes.append(f"answer time p50 {statistics.median(latencies) * 1000:.0f} ms, "
                     f"p99 {latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000:.0f} ms")
    if delays:
        row.notes.append(f"the worker kept paging: rejection to next page p50 {statistics.median(delays):.2f} s, "
                         f"max {max(delays):.2f} s")
    row.notes.append(f"a storm of {storm_seconds:.0f} s rather than a minute; the rate is bound by CPU (gunicorn, "
                     "PostgreSQL, the worker, the emulator and the sender share the machine); answers: "
                     + ", ".join(f"{n} x {status}" for status, n in sorted(result.answers.items())))
    return row
