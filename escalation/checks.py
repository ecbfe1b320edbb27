"""System checks: missing or wrong configuration is reported at start-up with clear ids."""

from pathlib import Path
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import Error, Warning, register

from escalation.engine.provider import vonage_config
from escalation.vonage.auth import PrivateKeyProblem, read_private_key


@register()
def check_vonage_settings(app_configs: list[AppConfig] | None, **kwargs: Any) -> list:
    problems = []
    if settings.ESCALATION_API not in ("dispatch", "messages"):
        problems.append(Error(
            f"ESCALATION_API is {settings.ESCALATION_API!r}.",
            hint="Set ESCALATION_API to 'dispatch' or 'messages'.", id="escalation.E002"))
    if not settings.VONAGE_APPLICATION_ID:
        problems.append(Warning(
            "VONAGE_APPLICATION_ID is not set: no escalation can be sent.",
            hint="Set it to your Vonage application's id.", id="escalation.W001"))
    key_path = settings.VONAGE_PRIVATE_KEY_PATH
    if not key_path:
        problems.append(Warning(
            "VONAGE_PRIVATE_KEY_PATH is not set: no escalation can be sent.",
            hint="Point it at the application's private key file.", id="escalation.W002"))
    elif not Path(key_path).is_file():
        problems.append(Error(
            f"VONAGE_PRIVATE_KEY_PATH points at {key_path}, which is not a readable file.",
            hint="Point it at the application's private key file.", id="escalation.E003"))
    else:
        problems += _private_key_problems(key_path)
    if not settings.VONAGE_SIGNATURE_SECRET:
        problems.append(Warning(
            "VONAGE_SIGNATURE_SECRET is not set: webhooks are accepted without checking Vonage's signature.",
            hint="Set it to the account's signature secret (Dashboard > Settings).", id="escalation.W003"))
    if not settings.VONAGE_API_URL.startswith(("https://", "http://")):
        problems.append(Error(
            f"VONAGE_API_URL is {settings.VONAGE_API_URL!r}.",
            hint="Use https://api.nexmo.com, or the local emulator's http://127.0.0.1:PORT.", id="escalation.E004"))
    request_seconds = vonage_config().request_time.total_seconds()
    if settings.ESCALATION_SEND_LEASE_SECONDS <= request_seconds:
        problems.append(Error(
            f"ESCALATION_SEND_LEASE_SECONDS ({settings.ESCALATION_SEND_LEASE_SECONDS:g}) is not longer than one "
            f"request to Vonage can take ({request_seconds:g} s, its connect and read timeouts): a send could "
            "still be in flight when another worker takes it over and sends it again.",
            hint="Make the lease longer than VONAGE_CONNECT_TIMEOUT + VONAGE_READ_TIMEOUT (the default is 30 s).",
            id="escalation.E005"))
    return problems


def _private_key_problems(key_path: str) -> list:
    # Every request to Vonage is signed with this key: a file that cannot sign would fail each send, so the
    # processes must not start on it (the worker runs the checks at start).
    try:
        read_private_key(key_path)
    except PrivateKeyProblem as problem:
        check_id = "escalation.E003" if problem.unreadable else "escalation.E006"
        return [Error(f"VONAGE_PRIVATE_KEY_PATH ({key_path}) {problem}.",
                      hint="Point it at the private.key file Vonage gave when the application was created "
                           "(-----BEGIN PRIVATE KEY-----, RSA).", id=check_id)]
    return []


@register(deploy=True)
def check_secret_key(app_configs: list[AppConfig] | None, **kwargs: Any) -> list:
    if settings.SECRET_KEY == settings.INSECURE_DEV_SECRET_KEY:
        return [Error("SECRET_KEY is the development default.",
                      hint="Set SECRET_KEY in the environment.", id="escalation.E001")]
    return []
