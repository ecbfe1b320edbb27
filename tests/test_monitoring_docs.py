"""docs/monitoring/: the alert rules load in Prometheus' own promtool and fire on the series they are meant for,
and the rules and the Grafana dashboard only use metrics that /metrics exposes."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.test_metrics import needs_promtool, scrape

pytestmark = pytest.mark.django_db

DOCS = Path(__file__).resolve().parent.parent / "docs" / "monitoring"
RULES = DOCS / "alert-rules.yml"
DASHBOARD = DOCS / "grafana-dashboard.json"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([shutil.which("promtool"), *args], capture_output=True, text=True, timeout=60, cwd=DOCS)


@needs_promtool
def test_it_ships_alert_rules_promtool_accepts():
    checked = promtool("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 8 rules found" in checked.stdout


@needs_promtool
def test_it_ships_alert_rules_that_fire_when_the_worker_stops_and_timers_are_overdue():
    tested = promtool("test", "rules", "alert-rules.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_it_uses_only_metrics_that_are_exposed(settings):
    settings.METRICS_ACCESS = "open"
    exposed = set()
    for family in text_string_to_metric_families(scrape()):
        exposed.add(family.name)
        exposed.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(expressions) >= 12
    used = set(re.findall(r"\boncall_\w+", " ".join(expressions) + RULES.read_text()))
    assert used and used <= exposed, used - exposed
    assert all(panel["datasource"]["uid"] == "${datasource}" for panel in dashboard["panels"])


@needs_promtool
def test_it_shows_a_prometheus_configuration_promtool_accepts(tmp_path):
    readme = (DOCS.parent.parent / "README.md").read_text()
    config = re.search(r"```yaml\n(# prometheus.yml\n.*?)```", readme, re.S).group(1)
    (tmp_path / "prometheus.yml").write_text(config.replace("/etc/prometheus/oncall-metrics-token", "token"))
    (tmp_path / "token").write_text("metrics-token-0123456789abcdef\n")
    shutil.copy(RULES, tmp_path / "oncall-alert-rules.yml")
    checked = subprocess.run([shutil.which("promtool"), "check", "config", "prometheus.yml"], capture_output=True,
                             text=True, timeout=60, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
