"""Issue 15: what the README and .env.example promise a new user."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_it_defaults_production_to_the_api_a_new_account_can_use():
    assert env_example()["ESCALATION_API"] == "messages"
    readme = (ROOT / "README.md").read_text()
    assert "Vonage closed the Dispatch API to new customers on 2025-08-31" in readme
    assert "`ESCALATION_API=messages make run`" in readme
    assert "sent by Vonage's failover after the escalation ended" in readme
