"""Schedules' cost, each beside a bare baseline measured alternately in the same run (the machine is shared):

1. Firing a roster of 10 schedule members (5 layers and 200 overrides each) against firing a roster of the
   same 10 people listed directly, at instants spread over a week: the difference is what resolving the
   schedules adds (target <= 5 ms). Twice: with the layers and overrides this process has kept (the schedules
   unchanged since it last read them), and with them read again, as the first fire after a change to every
   schedule (a new web process reads them as it starts: oncall/wsgi.py), and with one of them read again
   (the first fire after a change to one schedule, an override say).
2. A year of shifts of one such schedule (`shifts_between`, rules in memory, its memo of local times
   emptied first) against a year of a plain one-layer weekly rotation (target <= 50 ms).
3. The schedule's admin page (picture of 14 days) through the full Django stack, against the same page of a
   one-layer schedule without overrides: time (target <= 100 ms) and query count (must be equal).

The run's yardstick (bench/calibration.py) is measured at its start and end: the bare insert view's CPU per
request in-process (`bench.cpu_budget.bare_cost`), and every CPU figure is also given as a multiple of it.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/oncall_bench_schedules python -m bench.schedules

Without DATABASE_URL it runs on a temporary SQLite file. The database is migrated and filled here; nothing
in it is kept for anything else.
"""

import gc
import itertools
import os
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from datetime import time as clock

ROUNDS = 60
PEOPLE = 10
LAYERS = 5
OVERRIDES = 200


def setup() -> None:
    """Django on DATABASE_URL (or a temporary SQLite file), migrated and emptied."""
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp()}/bench_schedules.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oncall.settings")
    os.environ.setdefault("SECRET_KEY", "bench-schedules-not-secret")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)


def make_data():
    from django.utils import timezone

    from escalation.models import (
        Channel,
        Layer,
        LayerParticipant,
        Override,
        Person,
        Roster,
        RosterMember,
        Schedule,
        Sender,
    )

    for channel_type, sender in (("whatsapp", "447700900000"), ("sms", "OnCall")):
        Sender.objects.create(channel_type=channel_type, sender_id=sender)
    people = []
    for number in range(PEOPLE):
        person = Person.objects.create(name=f"Bench {number}")
        Channel.objects.create(person=person, position=0, type="whatsapp", address=f"4477009001{number:02d}")
        Channel.objects.create(person=person, position=1, type="sms", address=f"4477009002{number:02d}",
                               condition="delivered")
        people.append(person)
    shapes = [  # (length, unit, restriction), in priority order: restricted layers over around-the-clock ones
        (1, "weeks", ("0,1,2,3,4", clock(9), clock(17))), (1, "days", ("", clock(22), clock(6))),
        (12, "hours", ("5,6", clock(0), clock(0))), (1, "days", None), (1, "weeks", None),
    ]
    now = timezone.now()
    rng = random.Random(16)
    schedules = []
    for number in range(PEOPLE):
        schedule = Schedule.objects.create(name=f"Bench schedule {number}", time_zone="Europe/London")
        for position, (length, unit, restriction) in enumerate(shapes[:LAYERS]):
            weekdays, start, end = restriction or ("", None, None)
            layer = Layer.objects.create(schedule=schedule, position=position, shift_length=length, unit=unit,
                                         handoff_date=date(2026, 1, 5), handoff_time=clock(9),
                                         restrict_weekdays=weekdays, restrict_start=start, restrict_end=end)
            for index in range(5):
                LayerParticipant.objects.create(layer=layer, person=people[(number + index + position) % PEOPLE],
                                                position=index)
        Override.objects.bulk_create(
            Override(schedule=schedule, person=rng.choice(people), mode=rng.choice(["replace", "add"]),
                     start=(begin := now + timedelta(hours=rng.randint(-24 * 30, 24 * 335))),
                     end=begin + timedelta(hours=rng.randint(1, 12)))
            for _ in range(OVERRIDES))
        schedules.append(schedule)
    plain = Schedule.objects.create(name="Plain", time_zone="Europe/London")
    layer = Layer.objects.create(schedule=plain, shift_length=1, unit="weeks", handoff_date=date(2026, 1, 5),
                                 handoff_time=clock(9))
    for index, person in enumerate(people[:5]):
        LayerParticipant.objects.create(layer=layer, person=person, position=index)
    by_schedule = Roster.objects.create(name="Schedules")
    by_person = Roster.objects.create(name="People")
    for position in range(PEOPLE):
        RosterMember.objects.create(roster=by_schedule, schedule=schedules[position], position=position)
        RosterMember.objects.create(roster=by_person, person=people[position], position=position)
    return by_schedule, by_person, schedules[0], plain


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] * 1000


CPU: dict[str, float] = {}


def alternate(ours, bare, rounds: int = ROUNDS, name: str = "") -> tuple[list[float], list[float]]:
    """Time `ours` and `bare` one after the other, `rounds` times each, after a warm-up; their mean CPU time
    per call goes to CPU[name + ' ours'|' bare'] (the machine is shared: wall time includes others' work)."""
    for _ in range(3):
        ours(), bare()
    timings: tuple[list[float], list[float]] = ([], [])
    cpu = [0.0, 0.0]
    for _ in range(rounds):
        for index, function in enumerate((ours, bare)):
            started, started_cpu = time.perf_counter(), time.process_time()
            function()
            timings[index].append(time.perf_counter() - started)
            cpu[index] += time.process_time() - started_cpu
    CPU[f"{name} ours"], CPU[f"{name} bare"] = cpu[0] / rounds * 1000, cpu[1] / rounds * 1000
    return timings


def main() -> None:
    setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from bench.calibration import times
    from bench.common import StatementCounter
    from bench.cpu_budget import bare_cost
    from escalation.schedules import load, shifts
    from escalation.schedules.load import load_schedules
    from escalation.services.escalations import escalation_fire

    by_schedule, by_person, heavy, plain = make_data()
    gc.freeze()  # what is loaded by now is out of the collector's sight, as in the web and worker processes
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # statistics of the tables just filled, as a running database has them
    print(f"{sys.version.split()[0]}, database {connection.vendor}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}")
    yardstick = [bare_cost()["web_ms"]]

    # Fired at instants spread over a week (in both rosters alike): who wins in a layered schedule, and so what
    # resolving it costs, depends on the hour and the weekday.
    week = [timezone.now() + timedelta(hours=7 * 24 * index / ROUNDS) for index in range(ROUNDS)]
    instants = {"ours": itertools.cycle(week), "bare": itertools.cycle(week)}
    ours, bare = alternate(lambda: escalation_fire(roster=by_schedule, message="bench", fired_by_name="bench",
                                                   now=next(instants["ours"])),
                           lambda: escalation_fire(roster=by_person, message="bench", fired_by_name="bench",
                                                   now=next(instants["bare"])),
                           name="fire")
    fire = (ours, bare)

    changed = itertools.cycle(member.schedule_id for member in by_schedule.ordered_members())

    def fire_after_changes(every: bool) -> None:
        # As if every schedule (or the next one in turn) had changed: the process reads it again.
        if every:
            load._layers_read.clear()
            load._overrides_read.clear()
        else:
            pk = next(changed)
            load._layers_read.pop(pk, None)
            load._overrides_read.pop(pk, None)
        escalation_fire(roster=by_schedule, message="bench", fired_by_name="bench", now=next(instants["ours"]))

    def bare_fire() -> None:
        escalation_fire(roster=by_person, message="bench", fired_by_name="bench", now=next(instants["bare"]))

    fire_read = alternate(lambda: fire_after_changes(every=True), bare_fire, name="fire read")
    fire_one = alternate(lambda: fire_after_changes(every=False), bare_fire, name="fire one")

    now = timezone.now()
    year = timedelta(days=365)
    loaded = load_schedules([heavy.pk, plain.pk], start=now, end=now + year)

    def cold_year(rules: shifts.Rules) -> list:
        shifts.local_to_instant.cache_clear()  # a year ahead is mostly instants nobody asked yet
        return shifts.shifts_between(rules, now, now + year)

    ours, bare = alternate(lambda: cold_year(loaded[heavy.pk].rules), lambda: cold_year(loaded[plain.pk].rules),
                           rounds=20, name="year")
    count = len(shifts.shifts_between(loaded[heavy.pk].rules, now, now + year))
    year_timings = (ours, bare)

    user = get_user_model().objects.create_superuser("bench", "bench@example.com", None)
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    heavy_url = f"/admin/escalation/schedule/{heavy.pk}/change/"
    plain_url = f"/admin/escalation/schedule/{plain.pk}/change/"
    queries = {}
    for url in (heavy_url, plain_url, heavy_url, plain_url):  # the second of each, once sessions are warm
        with StatementCounter() as counter:
            assert client.get(url).status_code == 200
        queries[url] = counter.count
    page = alternate(lambda: client.get(heavy_url), lambda: client.get(plain_url), name="page")
    yardstick.append(bare_cost()["web_ms"])

    unit = sum(yardstick) / len(yardstick)
    print(f"yardstick: the bare insert view costs {unit:.2f} ms of CPU per request in-process (start "
          f"{yardstick[0]:.2f}, end {yardstick[1]:.2f}); CPU figures below also as multiples of it, which compare "
          "between runs on a busy and a quiet machine")
    ours, bare = fire
    added = CPU["fire ours"] - CPU["fire bare"]
    print(f"1. fire, 10 schedule members: p50 {p(ours, 50):.1f} ms, p99 {p(ours, 99):.1f} ms; "
          f"10 people (bare): p50 {p(bare, 50):.1f} ms, p99 {p(bare, 99):.1f} ms; "
          f"added p50 {p(ours, 50) - p(bare, 50):.1f} ms; CPU per fire {CPU['fire ours']:.1f} vs "
          f"{CPU['fire bare']:.1f} ms: added {added:.1f} ms = {times(added, unit)} (target <= 5 ms)")
    ours, bare = fire_read
    added = CPU["fire read ours"] - CPU["fire read bare"]
    print(f"1b. the same, read again (first fire after a change to every schedule): p50 {p(ours, 50):.1f} ms, "
          f"p99 {p(ours, 99):.1f} ms; bare p50 {p(bare, 50):.1f} ms; added p50 {p(ours, 50) - p(bare, 50):.1f} ms; "
          f"CPU added {added:.1f} ms = {times(added, unit)}")
    ours, bare = fire_one
    added = CPU["fire one ours"] - CPU["fire one bare"]
    print(f"1c. the same, one schedule read again (first fire after a change to one of the 10): p50 "
          f"{p(ours, 50):.1f} ms, p99 {p(ours, 99):.1f} ms; bare p50 {p(bare, 50):.1f} ms; added p50 "
          f"{p(ours, 50) - p(bare, 50):.1f} ms; CPU added {added:.1f} ms = {times(added, unit)}")
    ours, bare = year_timings
    print(f"2. a year of shifts, 5 layers + 200 overrides ({count} shifts): p50 {p(ours, 50):.1f} ms, "
          f"p99 {p(ours, 99):.1f} ms, CPU {CPU['year ours']:.1f} ms = {times(CPU['year ours'], unit)}; one weekly "
          f"layer (bare): p50 {p(bare, 50):.1f} ms, CPU {CPU['year bare']:.1f} ms (target <= 50 ms)")
    ours, bare = page
    print(f"3. schedule page, 5 layers + 200 overrides: p50 {p(ours, 50):.1f} ms, p99 {p(ours, 99):.1f} ms, "
          f"CPU {CPU['page ours']:.1f} ms = {times(CPU['page ours'], unit)}, {queries[heavy_url]} queries; one "
          f"layer, no overrides (bare): p50 {p(bare, 50):.1f} ms, CPU {CPU['page bare']:.1f} ms = "
          f"{times(CPU['page bare'], unit)}, {queries[plain_url]} queries (target <= 100 ms, equal queries)")


if __name__ == "__main__":
    main()
