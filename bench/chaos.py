"""`make chaos`: break things on purpose against the real processes and count what survives.

    python -m bench.chaos [--only race,crash,faults,outage,storm,db] [--scale 0.5] [--no-write]

Each scenario gets a stack of its own (bench/harness.py: a fresh PostgreSQL database, the emulator as a
process, gunicorn, worker processes) and ends with an audit against the emulator's record:

- race:   two workers on the same 1,000 escalations (half Dispatch, half Messages API), nobody answering:
          every step must be paged exactly once.
- crash:  200 scripted escalations while a chaos loop SIGKILLs and restarts workers at random moments.
- faults: the emulator answers 429, 500, 401, 422 or hangs past the client's timeout, in stretches.
- outage: Vonage answers 401, 503, hangs, 429, low balance, one kind at a time, while escalations are
          fired: each must hold, page its first person after recovery, and raise the banner meanwhile
          (bench/chaos_outage.py).
- storm:  signed webhooks at up to ~1,000/s: duplicates, reordering, late reads of earlier people, final
          reports before their statuses, unknown ids (bench/chaos_storm.py).
- db:     PostgreSQL is restarted under the running workers and web app. It runs last: the server is
          shared with whatever else runs on this machine, so the outage is kept to one short restart.

The table (scenario, escalations, kills/faults injected, lost, wrong pages, duplicates, 5xx) is printed
and written into BENCHMARKS.md's "Reliability" section. Time is moved by hand: expiries are
120 s (long enough for a read to arrive however loaded the machine is), the emulator runs at 1/100 of
real time, and steps nobody will answer have their deadline moved to now (bench/chaos_scripts.Clock)
instead of being waited out.
"""

import argparse
import os
import platform
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench import chaos_scripts as scripts_
from bench.chaos_scripts import Row, log
from bench.common import workflow_text
from bench.harness import ROOT, Stack

REPORT = ROOT / "BENCHMARKS.md"
BEGIN, END = "<!-- chaos:begin -->", "<!-- chaos:end -->"
SEND_ATTEMPTS = 4
API_NAMES = {"dispatch": "Dispatch API", "messages": "Messages API"}
# Short leases and timeouts so a killed worker's claims come back within seconds; the send lease still
# outlasts one request (connect 1 s + read 2 s), as the setting's comment requires.
CHAOS_ENV = {
    "WORKER_THREADS": "8",
    "WORKER_POLL_INTERVAL": "0.05",
    "ESCALATION_CLAIM_LEASE_SECONDS": "2",
    "ESCALATION_SEND_LEASE_SECONDS": "4",
    "VONAGE_CONNECT_TIMEOUT": "1",
    "VONAGE_READ_TIMEOUT": "2",
    "ESCALATION_RETRY_BASE_SECONDS": "0.5",
    # A provider fault holds its step and retries 0.5 s, 1 s, 2 s, 2 s... apart: time here runs fast.
    "ESCALATION_RETRY_CAP_SECONDS": "2",
    "ESCALATION_SEND_ATTEMPTS": str(SEND_ATTEMPTS),
    # A stuck process can be made to print every thread's stack (SIGABRT) into its log: see dump_stuck.
    "PYTHONFAULTHANDLER": "1",
}
# A 120 s Dispatch expiry lasts 1.2 s inside the emulator; its webhook retries (5 s, 10 s, ...) shrink alike.
EMULATOR_ARGS = ("--time-scale", "0.01")


_attached = False


def attach(stack: Stack) -> None:
    """Point this process's ORM at the stack's database (each scenario has its own)."""
    global _attached
    if not _attached:
        stack.setup_django()
        _attached = True
        return
    from django.db import connections

    connection = connections["default"]
    connection.close()
    connection.settings_dict["NAME"] = stack.database_url.rsplit("/", 1)[1]


def make_stack(name: str, **kwargs) -> Stack:
    env = {**CHAOS_ENV, **kwargs.pop("env", {})}
    # Each process's log is kept under var/chaos/<scenario>/ for a look after a bad run.
    return Stack(db_name=f"oncall_chaos_{name}", env=env, emulator_args=EMULATOR_ARGS,
                 log_dir=ROOT / "var" / "chaos" / name, **kwargs)


def dump_stuck(stack: Stack) -> None:
    """Escalations did not end: log the database sessions, and every worker thread's stack (SIGABRT with
    the fault handler on prints them; the workers are not needed any more)."""
    for line in scripts_.database_activity():
        log(f"  session: {line}")
    for worker in stack.workers:
        if worker is None or not worker.alive():
            log(f"  worker {worker.name if worker else '?'} is not running")
            continue
        before = worker.log.stat().st_size
        os.kill(worker.pid, signal.SIGABRT)
        worker.popen.wait(timeout=10)
        with worker.log.open("rb") as file:
            file.seek(before)
            log(f"  {worker.name} threads:\n" + file.read().decode(errors="replace")[-6000:])


def fire_in_waves(scripts: list[scripts_.Script], clock: scripts_.Clock, *, per_wave: int, every: float,
                  during: Callable[[], None]) -> None:
    """Fire the scripts a wave at a time, running `during()` (the chaos) between waves."""
    for start in range(0, len(scripts), per_wave):
        wave_at = time.monotonic() + every
        for script in scripts[start:start + per_wave]:
            scripts_.fire(script)
            clock.protect(script)
        while time.monotonic() < wave_at:
            during()
            time.sleep(0.05)


def audit_row(name: str, stack: Stack, scripts: list[scripts_.Script], injected: str) -> Row:
    audit = scripts_.audit(stack, scripts, send_attempts=SEND_ATTEMPTS)
    row = Row(name, audit.escalations, injected, audit.lost, audit.wrong_pages, audit.duplicates,
              scripts_.webhook_5xx(stack), problems=audit.problems, most_attempts=audit.most_attempts)
    outcomes = Counter(s.target is not None for s in scripts)
    row.notes.append(f"{outcomes[True]} scripted to be read, {outcomes[False]} to be exhausted")
    if audit.duplicates:
        row.notes.append("duplicates: " + ", ".join(f"{n} on the {API_NAMES[api]}"
                                                     for api, n in sorted(audit.duplicates_by_api.items())))
    if audit.over_retry_bound:
        row.notes.append(f"{audit.over_retry_bound} steps over {SEND_ATTEMPTS} attempts")
    if audit.errors_unrecorded:
        row.lost += audit.errors_unrecorded
        row.notes.append(f"{audit.errors_unrecorded} failures without their error")
    return row


# --- scenarios --------------------------------------------------------------------------------------------

def race(rng: random.Random, scale: float) -> Row:
    """Two workers start together on 1,000 escalations nobody answers: each step paged exactly once."""
    count = max(20, int(1000 * scale))
    with make_stack("race", workers=0) as stack:
        attach(stack)
        from django.conf import settings

        from escalation.models import Escalation
        from escalation.services.escalations import escalation_fire

        roster = stack.make_roster("race", people=2, channels=scripts_.CHANNELS, expiry_time=scripts_.EXPIRY)
        ids = []
        for n in range(count):
            settings.ESCALATION_API = "messages" if n % 2 == 0 else "dispatch"
            ids.append(escalation_fire(roster=roster, message=f"race incident {n}.", fired_by_name="chaos").pk)
        log(f"race: {count} escalations fired; starting two workers at once")
        stack.add_worker()
        stack.add_worker()
        clock = scripts_.Clock()
        ended = scripts_.wait_until(lambda: scripts_.active_count(ids) == 0, timeout=300, tick=clock.tick,
                                    interval=0.3)
        requests = scripts_.all_records(stack.emulator_requests)
        phone_messages = [m for m in stack.emulator.messages() if m["api"] != "inbound"]
        escalations = Escalation.objects.in_bulk(ids)
        number_to_id = dict(zip(range(count), ids, strict=True))

        per_step: Counter = Counter()
        for record in requests:
            if record["status"] != 202:
                continue
            body = record["body"]
            if record["path"] == "/v1/messages":
                per_step[("messages", body["client_ref"])] += 1
            else:
                text = workflow_text(body)
                per_step[("dispatch", _incident(text), scripts_.request_addresses(record)[0])] += 1
        messages_steps = sum(1 for k in per_step if k[0] == "messages")
        dispatch_steps = sum(1 for k in per_step if k[0] == "dispatch")
        expected_messages, expected_dispatch = (count + 1) // 2 * 4, count // 2 * 2
        duplicates = sum(n - 1 for n in per_step.values())
        lost = (expected_messages - messages_steps) + (expected_dispatch - dispatch_steps)
        lost += sum(1 for e in escalations.values() if e.state != "exhausted")
        wrong = 0
        problems = []
        for message in phone_messages:
            escalation = escalations[number_to_id[_incident(message["text"])]]
            if escalation.ended_at and message["created"] > escalation.ended_at.timestamp():
                wrong += 1
                problems.append(f"#{escalation.pk}: paged {message['to']} after it ended")
        row = Row("two workers racing", count, "2 workers started together", max(lost, 0), wrong, duplicates,
                  scripts_.webhook_5xx(stack), problems=problems)
        row.notes.append(f"{messages_steps} Messages API sends + {dispatch_steps} Dispatch workflows, "
                         f"expected {expected_messages} + {expected_dispatch}, each exactly once")
        busy = ", ".join(f"{cpu_seconds(w.pid):.1f} s" for w in stack.workers if w is not None)
        row.notes.append(f"both workers did the work (CPU time {busy})")
        if not ended:
            row.notes.append("timed out waiting for the escalations to end")
    return row


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _incident(text: str) -> int:
    return int(re.search(r"incident (\d+)\.", text).group(1))


def crash(rng: random.Random, scale: float) -> Row:
    """Workers SIGKILLed and restarted at random moments while 200 scripted escalations run."""
    count = max(20, int(200 * scale))
    min_kills = 20
    with make_stack("crash", workers=2) as stack:
        attach(stack)
        scripts = scripts_.make_scripts(stack, count, prefix="crash", rng=rng, apis=("messages", "dispatch"))
        clock = scripts_.Clock()
        chaos = KillLoop(stack, rng)

        def during() -> None:
            clock.tick()
            chaos.step()

        log(f"crash: firing {count} escalations in waves while killing workers")
        fire_in_waves(scripts, clock, per_wave=max(1, count // 20), every=1.0, during=during)
        ids = [s.escalation_id for s in scripts]
        # Keep killing while there is work, until enough kills have landed.
        scripts_.wait_until(lambda: chaos.kills >= min_kills and (scripts_.active_count(ids) == 0 or chaos.kills >= 40),
                            timeout=120, tick=during, interval=0.05)
        chaos.restart_all()
        ended = scripts_.wait_until(lambda: scripts_.active_count(ids) == 0, timeout=120, tick=clock.tick)
        if not ended:
            dump_stuck(stack)
        row = audit_row("worker crashes (SIGKILL)", stack, scripts, f"{chaos.kills} kills")
        row.notes.append(f"{chaos.in_flight} sends were in flight (claimed, unrecorded) at the kills: the most "
                         "a kill could repeat. A duplicate is a send cut off between Vonage's 202 and its record, "
                         "sent again when its lease ran out; on the Messages API the status webhook (matched by "
                         "client_ref) usually records it first, a Dispatch workflow's statuses cannot be matched "
                         "before its uuid is recorded")
        if row.duplicates > chaos.in_flight:
            row.notes.append("MORE duplicates than sends in flight at the kills")
        if not ended:
            row.notes.append("timed out waiting for the escalations to end")
    return row


class KillLoop:
    """SIGKILLs a random worker (now and then all of them) at random moments, restarting it shortly after."""

    def __init__(self, stack: Stack, rng: random.Random) -> None:
        self.stack, self.rng = stack, rng
        self.kills = 0
        self.in_flight = 0
        self.next_kill = time.monotonic() + rng.uniform(0.3, 1.2)
        self.restarts: dict[int, float] = {}

    def step(self) -> None:
        now = time.monotonic()
        for index, at in list(self.restarts.items()):
            if now >= at:
                self.stack.start_worker(index)
                del self.restarts[index]
        if now < self.next_kill:
            return
        workers = self.stack.workers
        running = [i for i, w in enumerate(workers) if w is not None and w.alive() and i not in self.restarts]
        if running:
            victims = running if self.rng.random() < 0.15 else [self.rng.choice(running)]
            self.in_flight += scripts_.in_flight()
            for index in victims:
                self.stack.kill_worker(index)
                self.kills += 1
                self.restarts[index] = now + self.rng.uniform(0.0, 1.0)
        self.next_kill = now + self.rng.uniform(0.3, 1.2)

    def restart_all(self) -> None:
        for index in list(self.restarts):
            self.stack.start_worker(index)
        self.restarts.clear()


def faults(rng: random.Random, scale: float) -> Row:
    """Stretches of 429, 500, 401, 422 and hanging requests from the provider."""
    count = max(20, int(120 * scale))
    with make_stack("faults", workers=2) as stack:
        attach(stack)
        from escalation.models import Event, EventKind

        # A hang outlasts the client's read timeout (2 s), so the worker gives up on it and retries.
        stack.emulator.configure(hang_seconds=4)
        scripts = scripts_.make_scripts(stack, count, prefix="faults", rng=rng, apis=("messages", "dispatch"))
        clock = scripts_.Clock()
        injected: Counter = Counter()
        next_fault = [time.monotonic()]

        def during() -> None:
            clock.tick()
            if time.monotonic() >= next_fault[0]:
                mode = rng.choice(["429", "500", "hang", "401", "422"])
                stretch = rng.randint(3, 12)
                stack.emulator.fault(mode, stretch)
                injected[mode] += stretch
                next_fault[0] = time.monotonic() + rng.uniform(0.5, 2.0)

        log(f"faults: firing {count} escalations while the provider misbehaves")
        fire_in_waves(scripts, clock, per_wave=max(1, count // 20), every=0.75, during=during)
        ids = [s.escalation_id for s in scripts]
        # Faults keep coming for a while after the last wave, then stop: everything must then end.
        scripts_.wait_until(lambda: False, timeout=8, tick=during)
        faults_stopped = time.monotonic()
        ended = scripts_.wait_until(lambda: scripts_.active_count(ids) == 0, timeout=120, tick=clock.tick)
        tail = time.monotonic() - faults_stopped
        met = injected - Counter(stack.emulator._post("faults", {})["pending"])  # not those never reached
        detail = ", ".join(f"{n} x {mode}" for mode, n in sorted(met.items()))
        row = audit_row("provider faults", stack, scripts, f"{met.total()} faulty answers ({detail})")
        kinds = [EventKind.HELD, EventKind.RETRIED, EventKind.SEND_FAILED]
        events = Counter(Event.objects.filter(escalation_id__in=ids, kind__in=kinds).values_list("kind", flat=True))
        row.notes.append(f"{events[EventKind.HELD]} holds by a provider fault and {events[EventKind.RETRIED]} "
                         f"retries in them, {events[EventKind.SEND_FAILED]} sends refused (each with its error); "
                         f"at most {row.most_attempts} requests for one step (a hold retries past "
                         f"ESCALATION_SEND_ATTEMPTS, which bounds only the claims of a worker that died)")
        if not ended:
            row.notes.append("STALLED: escalations still active 120 s after the faults stopped")
        elif tail < 0.5:
            row.notes.append("every escalation had ended while the faults were still coming")
        else:
            row.notes.append(f"the last escalation ended {tail:.1f} s after the faults stopped")
    return row


def outage(rng: random.Random, scale: float) -> Row:
    from bench import chaos_outage

    with make_stack("outage", workers=2) as stack:
        attach(stack)
        return chaos_outage.run(stack, rng, scale=scale)


def storm(rng: random.Random, scale: float) -> Row:
    from bench import chaos_storm

    with make_stack("storm", workers=1, web_workers=4) as stack:
        attach(stack)
        return chaos_storm.run(stack, rng, scale=scale)


def database_restart(rng: random.Random, scale: float) -> Row:
    """PostgreSQL restarted under running workers and gunicorn: they reconnect, the escalations finish."""
    count = max(20, int(100 * scale))
    with make_stack("db", workers=2) as stack:
        attach(stack)
        scripts = scripts_.make_scripts(stack, count, prefix="db", rng=rng, apis=("messages", "dispatch"))
        clock = scripts_.Clock()
        tolerant_tick = tolerant(clock.tick)
        fire_in_waves(scripts, clock, per_wave=max(1, count // 5), every=0.5, during=tolerant_tick)
        ids = [s.escalation_id for s in scripts]
        scripts_.wait_until(lambda: False, timeout=2, tick=tolerant_tick)
        active_before = scripts_.active_count(ids)
        in_flight = scripts_.in_flight()
        log(f"db: restarting PostgreSQL with {active_before} escalations active")
        outage = restart_postgres()
        back_at = time.time()
        log(f"db: PostgreSQL back after {outage:.1f} s")
        ended = scripts_.wait_until(tolerant(lambda: scripts_.active_count(ids) == 0), timeout=120,
                                    tick=tolerant_tick)
        workers_alive = sum(1 for w in stack.workers if w is not None and w.alive())
        row = audit_row("database restart", stack, scripts, f"1 PostgreSQL restart ({outage:.1f} s)")
        row.notes.append(f"{active_before} escalations active and {in_flight} sends in flight at the restart; "
                         f"{workers_alive} of {len(stack.workers)} workers still running after it (none restarted "
                         "by hand)")
        if row.duplicates:
            row.notes.append("a duplicate is a send Vonage accepted while its record (and the status webhook that "
                             "could have stood in for it) could not be written, sent again when its lease ran out")
        after = scripts_.webhook_5xx(stack, after=back_at)
        row.five_xx_allowed = row.five_xx - after
        row.notes.append(f"the 5xx are webhooks answered while the database was down (Vonage retries them, and "
                         f"none was lost); {after} after it was back")
        if not ended:
            row.notes.append("timed out waiting for the escalations to end")
    return row


def tolerant(function: Callable[[], object]) -> Callable[[], object]:
    """`function` with a lost database connection treated as 'not yet' (this process reconnects next time)."""
    from django.db import InterfaceError, OperationalError, connection

    def call() -> object:
        try:
            return function()
        except (OperationalError, InterfaceError):
            connection.close()
            return None

    return call


def restart_postgres() -> float:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    started = time.monotonic()
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True)
    import psycopg

    while True:
        try:
            psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", connect_timeout=1).close()
            return time.monotonic() - started
        except psycopg.OperationalError:
            time.sleep(0.05)


SCENARIOS: dict[str, Callable[[random.Random, float], Row]] = {
    "race": race, "crash": crash, "faults": faults, "outage": outage, "storm": storm, "db": database_restart,
}


# --- the report -------------------------------------------------------------------------------------------

HEADER = ("scenario", "escalations", "kills/faults injected", "lost", "wrong pages", "duplicates", "5xx")


def table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    for r in rows:
        cells = (r.scenario, str(r.escalations), r.injected, str(r.lost), str(r.wrong_pages), str(r.duplicates),
                 str(r.five_xx))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def section(rows: list[Row], elapsed: float, argv: list[str]) -> str:
    notes = "\n".join(f"- **{r.scenario}** ({r.seconds:.0f} s): " + "; ".join(r.notes) + "." for r in rows)
    machine = f"{platform.node() or 'this machine'}, {platform.processor() or platform.machine()}, " \
              f"{_cpus()} CPUs, Python {platform.python_version()}"
    command = "make chaos" + (f" ({' '.join(argv)})" if argv else "")
    return (f"## Reliability (`make chaos`)\n\n{BEGIN}\nLatest run: {time.strftime('%Y-%m-%d %H:%M')} on {machine}; "
            f"`{command}` took {elapsed / 60:.1f} min. Real processes: PostgreSQL, the emulator, gunicorn, "
            f"worker processes (bench/chaos.py).\n\n{table(rows)}\n\n{notes}\n\n"
            "Lost: escalations that did not end as their script says (or not at all), steps never tried, "
            "stored events missing, failures without their error. Wrong pages: anyone paged after the "
            "escalation ended, or someone the script never reaches. Duplicates: accepted sends beyond the "
            "first for one step (the emulator's record). 5xx: answers of the app to webhooks and to the "
            f"storm.\n{END}\n")


def _cpus() -> int:
    return os.cpu_count() or 0


def write_report(text: str) -> None:
    """Replace our section of BENCHMARKS.md (the rest of the file belongs to `make bench`)."""
    current = REPORT.read_text() if REPORT.exists() else ""
    if BEGIN in current and END in current:
        head = current[:current.index(BEGIN)]
        head = head[:head.rindex("## Reliability")] if "## Reliability" in head else head
        tail = current[current.index(END) + len(END):].lstrip("\n")
        updated = head + text + ("\n" + tail if tail else "")
    else:
        updated = (current.rstrip("\n") + "\n\n" if current else "") + text
    REPORT.write_text(updated)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated: " + ",".join(SCENARIOS))
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the escalation counts (quick runs)")
    parser.add_argument("--seed", type=int, default=20260301)
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    # The database restart disturbs everything else on the server, so it always comes last.
    names.sort(key=lambda n: n == "db")
    rng = random.Random(args.seed)
    started = time.monotonic()
    rows = []
    for name in names:
        log(f"=== {name} ===")
        began = time.monotonic()
        row = SCENARIOS[name](rng, args.scale)
        row.seconds = time.monotonic() - began
        rows.append(row)
        log(f"{name}: lost {row.lost}, wrong pages {row.wrong_pages}, duplicates {row.duplicates}, "
            f"5xx {row.five_xx} ({row.seconds:.0f} s)")
        for problem in row.problems[:15]:
            log(f"  {problem}")
    elapsed = time.monotonic() - started
    print()
    print(table(rows))
    for row in rows:
        print(f"- {row.scenario}: " + "; ".join(row.notes))
    if not args.no_write:
        passed = [a for a in (argv if argv is not None else sys.argv[1:])]
        write_report(section(rows, elapsed, passed))
        log(f"written to {REPORT.relative_to(ROOT)}")
    return 0 if all(r.clean for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
