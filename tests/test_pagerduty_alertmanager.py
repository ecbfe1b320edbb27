"""A real PagerDuty sender: Debian's prometheus-alertmanager with a `pagerduty_configs` receiver whose `url`
is our `/v2/enqueue`, served by Django's live server on loopback.

Alerts are posted to Alertmanager's own API; it groups them and sends Events API v2 `trigger` and, with
`send_resolved`, `resolve` events. Its timers are set to a second, and the test waits on what the
database shows (with a deadline), not on a fixed sleep.
"""

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from escalation.models import (
    Alert,
    AlertReceipt,
    AlertState,
    Escalation,
    EscalationState,
    Integration,
    IntegrationFormat,
)
from tests.personas import MICHAEL, TONY, make_roster
from tests.serving import free_port, wait_for_port

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(ALERTMANAGER is None, reason="prometheus-alertmanager is not installed "
                                                    "(apt-get install prometheus-alertmanager; .ci/run does)"),
]

CONFIG = """
route:
  receiver: oncall
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: oncall
    pagerduty_configs:
      - routing_key: {key}
        url: {url}
        send_resolved: true
        severity: critical
"""


@contextmanager
def alertmanager(folder: Path, enqueue_url: str, routing_key: str) -> Iterator[str]:
    config = folder / "alertmanager.yml"
    config.write_text(CONFIG.format(key=routing_key, url=enqueue_url))
    port = free_port()
    log = folder / "alertmanager.log"
    command = [ALERTMANAGER, f"--config.file={config}", f"--storage.path={folder / 'data'}",
               f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=debug"]
    with open(log, "w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def post_alerts(base: str, alerts: list[dict]) -> None:
    request = urllib.request.Request(f"{base}/api/v2/alerts", data=json.dumps(alerts).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200


def alert(instance: str, *, ended: bool = False) -> dict:
    now = datetime.now(UTC)
    body = {"labels": {"alertname": "DiskFull", "instance": instance},
            "annotations": {"summary": f"Disk full on {instance}"},
            "startsAt": (now - timedelta(minutes=5)).isoformat()}
    if ended:
        body["endsAt"] = (now - timedelta(seconds=1)).isoformat()
    return body


def until(condition: Callable[[], bool], what: str, log: Path, timeout: float = 60) -> None:
    """Alertmanager's own timers decide when it sends; poll what it has done, with a deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            receipts = list(AlertReceipt.objects.values_list("status_code", "text"))
            raise AssertionError(f"{what} did not happen in {timeout:.0f} s; receipts {receipts}\n{log.read_text()}")
        time.sleep(0.1)  # polling another process's timers: nothing to wait on instead


def test_it_fires_joins_and_resolves_through_alertmanagers_pagerduty_receiver(live_server, settings, tmp_path):
    settings.SITE_URL = live_server.url
    integration = Integration.objects.create(name="alertmanager-pd", roster=make_roster(TONY, MICHAEL),
                                             format=IntegrationFormat.ALERTMANAGER)
    log = tmp_path / "alertmanager.log"
    with alertmanager(tmp_path, f"{live_server.url}/v2/enqueue", integration.token) as base:
        post_alerts(base, [alert("db1")])
        until(lambda: Escalation.objects.exists(), "the first trigger", log)
        escalation = Escalation.objects.get()
        assert escalation.state == EscalationState.ACTIVE and "[FIRING:1] DiskFull" in escalation.message
        assert "[critical]" in escalation.message

        # A second alert of the group: the same dedup key, so it joins the open alert, nobody else paged.
        post_alerts(base, [alert("db1"), alert("db2")])
        until(lambda: Alert.objects.filter(repeats__gte=1).exists(), "the second alert joining", log)
        assert Escalation.objects.count() == 1 and Alert.objects.count() == 1

        post_alerts(base, [alert("db1", ended=True), alert("db2", ended=True)])
        until(lambda: Alert.objects.filter(state=AlertState.RESOLVED).exists(), "the resolve", log)
    assert Escalation.objects.get().state == EscalationState.CANCELLED
    assert set(AlertReceipt.objects.values_list("status_code", flat=True)) == {202}


AMTOOL = shutil.which("amtool")
DOCS = Path(__file__).resolve().parent.parent / "docs" / "integrations.md"


@pytest.mark.skipif(AMTOOL is None, reason="amtool (prometheus-alertmanager) is not installed")
def test_the_documented_receiver_is_a_valid_alertmanager_config(tmp_path):
    section = DOCS.read_text().split("## PagerDuty-compatible events", 1)[1]
    receiver = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    config = tmp_path / "alertmanager.yml"
    config.write_text("route:\n  receiver: oncall\n" + receiver.replace("<the integration's token>", "t" * 43))
    checked = subprocess.run([AMTOOL, "check-config", str(config)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "pagerduty_configs" in receiver and "send_resolved: true" in receiver
