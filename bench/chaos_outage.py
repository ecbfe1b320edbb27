"""The provider-outage scenario of `make chaos` (issue 13 §1): Vonage refuses our credentials (401), fails
(503), hangs past the client's timeout, throttles (429) and says our balance is low, each for a stretch,
while escalations are fired. None may be lost, passed over or ended `exhausted` or `failed` by the fault:
each pages its first person after the provider recovers, and the alarm banner shows during each fault.

One kind of fault at a time, so each escalation's fault is known: the fault is injected (for every
request), a wave is fired into it, the fault stays a few seconds, then it is cleared and the scenario waits
for that wave's first pages before the next kind starts.
"""

import random
import time
from dataclasses import dataclass

from bench import chaos_scripts as scripts_
from bench.chaos_scripts import Row, log

# (emulator fault mode, what the banner must say)
OUTAGES = [("401", "Vonage refuses our credentials (401)"), ("503", "Vonage is failing (503)"),
           ("hang", "Vonage does not answer in time"), ("429", "Vonage is throttling us (429)"),
           ("low_balance", "Vonage says our account's balance is too low (402)")]
FAULT_SECONDS = 4.0  # real seconds each fault lasts after its wave is fired


@dataclass
class Outage:
    mode: str
    banner: str
    fired: int = 0
    paged_after: int = 0  # whose first person's first send Vonage accepted after the recovery
    faulty_answers: int = 0
    banner_seen: bool = False
    slowest: float = 0.0  # seconds from the recovery to the last first page of the wave


def run(stack, rng: random.Random, *, scale: float) -> Row:
    from django.utils import timezone

    from escalation.models import Escalation
    from escalation.services.alarms import current_alarms

    per_outage = max(4, int(20 * scale))
    # The hang outlasts the client's read timeout (2 s), so each hung request ends as a timeout.
    stack.emulator.configure(hang_seconds=6)
    scripts = scripts_.make_scripts(stack, per_outage * len(OUTAGES), prefix="outage", rng=rng,
                                    apis=("messages", "dispatch"))
    clock = scripts_.Clock()
    outages = [_one_outage(stack, clock, Outage(mode, banner), scripts[n * per_outage:(n + 1) * per_outage])
               for n, (mode, banner) in enumerate(OUTAGES)]
    ids = [s.escalation_id for s in scripts]
    ended = scripts_.wait_until(lambda: scripts_.active_count(ids) == 0, timeout=120, tick=clock.tick)
    banner_after = [a.text for a in current_alarms(now=timezone.now()) if a.key.startswith("vonage:")]

    audit = scripts_.audit(stack, scripts, send_attempts=10_000)  # held sends retry past the attempts bound
    states = dict(Escalation.objects.filter(pk__in=ids).values_list("pk", "state"))
    failed = sum(1 for state in states.values() if state == "failed")
    unpaged = sum(o.fired - o.paged_after for o in outages)
    injected = ", ".join(f"{o.faulty_answers} x {o.mode}" for o in outages)
    row = Row("provider outage", len(scripts), f"{sum(o.faulty_answers for o in outages)} faulty answers ({injected})",
              audit.lost + failed + unpaged, audit.wrong_pages, audit.duplicates, scripts_.webhook_5xx(stack),
              problems=audit.problems)
    row.notes.append("; ".join(
        f"{o.mode}: {o.fired} fired during it, {o.paged_after} paged their first person after recovery "
        f"(the last {o.slowest:.1f} s after), banner {'shown' if o.banner_seen else 'NOT shown'}"
        for o in outages))
    exhausted = sum(1 for s in scripts if states[s.escalation_id] == "exhausted")
    scripted = sum(1 for s in scripts if s.target is None)
    row.notes.append(f"{exhausted} ended exhausted, as scripted ({scripted} scripts nobody reads), {failed} failed")
    if not all(o.banner_seen for o in outages):
        row.lost += 1  # an outage nobody is told about is the failure this scenario is for
    if banner_after:
        row.notes.append("banner still up after recovery: " + " / ".join(banner_after))
        row.lost += 1
    if not ended:
        row.notes.append("STALLED: escalations still active 120 s after the last recovery")
    return row


def _one_outage(stack, clock: scripts_.Clock, outage: Outage, wave: list[scripts_.Script]) -> Outage:
    """Fire `wave` into the fault, keep the fault a while, end it, and wait for the wave's first pages."""
    from django.utils import timezone

    from escalation.services.alarms import current_alarms

    since = _last_seq(stack)
    stack.emulator.fault(outage.mode, 100_000)
    for script in wave:
        scripts_.fire(script)
        clock.protect(script)
    outage.fired = len(wave)
    fault_until = time.monotonic() + FAULT_SECONDS
    while time.monotonic() < fault_until:
        clock.tick()
        outage.banner_seen |= any(a.text.startswith(outage.banner) for a in current_alarms(now=timezone.now()))
        time.sleep(0.1)
    stack.emulator.clear_faults()
    recovered = time.time()
    log(f"outage: {outage.mode} for {FAULT_SECONDS:g} s over {len(wave)} escalations; recovered")
    firsts = {script.addresses[0][0] for script in wave}  # each script's first person, first channel
    first_page: dict[str, float] = {}

    def all_paged() -> bool:
        for record in _records_after(stack, since):
            first = (scripts_.request_addresses(record) or [""])[0]
            if first in firsts and record["status"] == 202:
                first_page.setdefault(first, record["at"])
        return len(first_page) == len(firsts)

    scripts_.wait_until(all_paged, timeout=60, tick=clock.tick, interval=0.3)
    outage.faulty_answers = sum(1 for r in _records_after(stack, since) if r.get("fault") == outage.mode)
    outage.paged_after = sum(1 for at in first_page.values() if at >= recovered)
    outage.slowest = max((at - recovered for at in first_page.values()), default=0.0)
    return outage


def _last_seq(stack) -> int:
    records = scripts_.all_records(stack.emulator_requests)
    return records[-1]["seq"] if records else 0


def _records_after(stack, since: int) -> list[dict]:
    return [r for r in scripts_.all_records(stack.emulator_requests) if r["seq"] > since]
