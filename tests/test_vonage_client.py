"""The Vonage client's HTTP seam, over real HTTP to the emulator on loopback."""

import shutil
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from escalation.engine.provider import get_client, vonage_config
from escalation.vonage import VonageClient, VonageConfig, VonageError
from escalation.vonage.auth import TOKEN_REUSE_SECONDS, application_token
from escalation.vonage.client import answer_uuid
from escalation.vonage.errors import error_from_response
from escalation.vonage.http import VonageHttp
from tests.conftest import TEST_APPLICATION_ID

WHATSAPP = {"type": "whatsapp", "address": "447700900001", "expiry_time": 60, "condition": "read",
            "sender": "447700900000"}
SMS = {"type": "sms", "address": "447700900002", "expiry_time": 60, "condition": "delivered", "sender": "ACME"}


def send_dispatch() -> str:
    return get_client().dispatch_failover(person_name="Ann", channels=[WHATSAPP, SMS], text="db down")


def test_it_starts_a_dispatch_workflow(emulator):
    dispatch_uuid = send_dispatch()

    [record] = emulator.requests()
    assert record["path"] == "/v0.1/dispatch"
    assert record["status"] == 202
    assert record["response"] == {"dispatch_uuid": dispatch_uuid}
    assert record["body"]["workflow"][0]["to"] == {"type": "whatsapp", "number": "447700900001"}


def test_it_sends_a_v1_message(emulator):
    viber = {**WHATSAPP, "type": "viber_service_msg", "sender": "acme-viber"}

    message_uuid = get_client().send_message(channel=viber, text="db down", client_ref="ref-1")

    [record] = emulator.requests()
    assert (record["path"], record["status"]) == ("/v1/messages", 202)
    assert record["response"] == {"message_uuid": message_uuid}
    assert record["body"] == {"message_type": "text", "text": "db down", "to": "447700900001",
                              "from": "acme-viber", "channel": "viber_service", "client_ref": "ref-1"}


def test_its_jwt_has_vonages_claims_and_no_nbf(emulator):
    send_dispatch()

    claims = emulator.requests()[0]["auth"]
    assert set(claims) == {"application_id", "iat", "jti", "exp"}
    assert claims["application_id"] == TEST_APPLICATION_ID
    assert claims["exp"] - claims["iat"] == 15 * 60


def test_it_reuses_a_token_for_a_minute(vonage_keys, tmp_path):
    # A key path of its own, so no token cached by another test is involved.
    key_path = str(tmp_path / "private.key")
    shutil.copy(vonage_keys["private_path"], key_path)
    now = time.time()

    first = application_token(application_id="app", key_path=key_path, now=now)
    again = application_token(application_id="app", key_path=key_path, now=now + TOKEN_REUSE_SECONDS - 1)
    later = application_token(application_id="app", key_path=key_path, now=now + TOKEN_REUSE_SECONDS)

    assert again == first
    assert later != first
    assert jwt.decode(later, options={"verify_signature": False})["iat"] == int(now + TOKEN_REUSE_SECONDS)


def test_a_burst_of_sends_signs_one_token(emulator):
    for _ in range(5):
        send_dispatch()

    jtis = {r["auth"]["jti"] for r in emulator.requests()}
    assert len(jtis) <= 2  # two only if the burst straddles a token refresh


def test_a_wrong_key_is_a_401_provider_fault(emulator, settings, tmp_path):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_path = tmp_path / "other.key"
    key_path.write_bytes(other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))
    settings.VONAGE_PRIVATE_KEY_PATH = str(key_path)

    with pytest.raises(VonageError) as raised:
        send_dispatch()

    assert raised.value.provider_fault  # our credentials, not the person: the escalation holds
    assert raised.value.held_by == "credentials:401"
    assert raised.value.status == 401
    assert raised.value.title == "You did not provide correct credentials."
    assert "Signature" in emulator.requests()[0]["auth"]["error"]


@pytest.mark.parametrize("mode, status", [("429", 429), ("500", 500)])
def test_throttling_and_server_errors_are_provider_faults(emulator, mode, status):
    emulator.fault(mode)

    with pytest.raises(VonageError) as raised:
        send_dispatch()

    assert raised.value.provider_fault
    assert raised.value.status == status
    assert send_dispatch()  # the fault was for one request only


def test_no_answer_in_time_is_a_provider_fault(emulator, settings):
    settings.VONAGE_READ_TIMEOUT = 0.2
    emulator.configure(hang_seconds=2)
    emulator.fault("hang")

    with pytest.raises(VonageError) as raised:
        send_dispatch()

    assert (raised.value.provider_fault, raised.value.held_by) == (True, "timeout")
    assert raised.value.status is None
    assert raised.value.title == "No answer in time"


def test_an_unreachable_vonage_is_a_provider_fault(settings):
    # conftest points VONAGE_API_URL at the discard port, where nothing listens.
    with pytest.raises(VonageError) as raised:
        send_dispatch()

    assert (raised.value.provider_fault, raised.value.held_by) == (True, "unreachable")
    assert raised.value.title == "Could not reach Vonage"


def test_a_422_keeps_vonages_invalid_parameters(emulator):
    bad = {**SMS, "address": "+44 7700 900002"}

    with pytest.raises(VonageError) as raised:
        get_client().send_message(channel=bad, text="db down", client_ref="ref-1")

    error = raised.value
    assert not error.provider_fault  # about this recipient: the engine moves on
    assert (error.status, error.title) == (422, "Invalid params")
    assert error.detail == "The value of one or more parameters is invalid."
    assert error.invalid_parameters == [{"name": "to", "reason": "must be E.164 digits without '+'"}]
    assert str(error) == ("Vonage 422: Invalid params - The value of one or more parameters is invalid. "
                          "[to: must be E.164 digits without '+'] (refused)")


@pytest.mark.parametrize("mode, blame", [("401", "provider"), ("422", "recipient"), ("low_balance", "provider")])
def test_each_refusal_is_blamed_on_whoever_it_is_about(emulator, mode, blame):
    emulator.fault(mode)

    with pytest.raises(VonageError) as raised:
        send_dispatch()

    assert raised.value.failure.blame == blame


def test_low_balance_is_a_provider_fault_whatever_its_status():
    body = b'{"type":"https://developer.nexmo.com/api-errors/#low-balance","title":"Low balance"}'

    assert error_from_response(503, "Service Unavailable", body).held_by == "balance:503"


def test_a_proxy_error_page_is_a_provider_fault_and_readable():
    error = error_from_response(502, "Bad Gateway", b"<html><body>upstream went away</body></html>")

    assert error.held_by == "outage:502"
    assert str(error) == "Vonage 502: Bad Gateway - <html><body>upstream went away</body></html> (provider fault)"


def test_a_missing_key_is_a_provider_fault(settings, tmp_path):
    settings.VONAGE_PRIVATE_KEY_PATH = str(tmp_path / "absent.key")

    with pytest.raises(VonageError) as raised:
        send_dispatch()

    assert raised.value.held_by == "key"
    assert raised.value.title == "Private key unreadable"


def test_a_broken_key_file_never_reaches_the_error(settings, tmp_path):
    key_path = tmp_path / "broken.key"
    key_path.write_text("-----BEGIN PRIVATE KEY-----\nTOP-SECRET-MATERIAL\n-----END PRIVATE KEY-----\n")
    settings.VONAGE_PRIVATE_KEY_PATH = str(key_path)

    with pytest.raises(VonageError) as raised:
        send_dispatch()

    assert raised.value.held_by == "key"
    assert "TOP-SECRET" not in str(raised.value)
    assert raised.value.__suppress_context__  # no chained exception can print the file's content either


def test_one_client_per_process():
    assert get_client() is get_client()
    assert isinstance(get_client(), VonageClient)


def test_a_new_client_when_the_settings_change(settings):
    first = get_client()
    settings.VONAGE_READ_TIMEOUT = 3.5
    assert get_client() is not first
    assert get_client().http.config.read_timeout == 3.5


def test_it_takes_plain_values_and_tells_whoever_counts_its_requests(emulator, vonage_keys):
    # Built as any program would build it: a config of plain values, no settings, an observer of its own.
    observed = []
    config = VonageConfig(api_url=emulator.url, application_id=TEST_APPLICATION_ID,
                          private_key_path=vonage_keys["private_path"], connect_timeout=2, read_timeout=5)
    client = VonageClient(config, observe=lambda path, status, started: observed.append((path, status)))

    message_uuid = client.send_message(channel=SMS, text="db down", client_ref="ref-1")

    [record] = emulator.requests()
    assert record["response"] == {"message_uuid": message_uuid}
    assert observed == [("/v1/messages", 202)]
    assert config.request_time.total_seconds() == 7


@pytest.mark.parametrize("answer", [{}, {"dispatch_uuid": ""}, {"dispatch_uuid": "not-a-uuid"},
                                    {"dispatch_uuid": 42}, {"dispatch_uuid": ["a"]}])
def test_an_accepted_answer_without_a_uuid_is_not_retried(answer):
    # Accepted (2xx), so never retried; and never stored, where a malformed uuid would fail the whole outcome.
    with pytest.raises(VonageError) as raised:
        answer_uuid(answer, "dispatch_uuid")
    assert not raised.value.provider_fault


def test_an_accepted_uuid_is_kept_in_its_canonical_form():
    assert answer_uuid({"message_uuid": "AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE"}, "message_uuid") == \
        "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"


def test_the_environments_proxy_is_read_once_for_vonages_url(monkeypatch, settings):
    settings.VONAGE_API_URL = "https://api.nexmo.com"
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert VonageHttp(vonage_config()).proxy == "http://proxy.internal:3128"
    monkeypatch.setenv("NO_PROXY", "api.nexmo.com")
    assert VonageHttp(vonage_config()).proxy is None


@pytest.mark.parametrize("url", ["api.nexmo.com", "ftp://api.nexmo.com", ""])
def test_a_url_that_is_not_http_is_our_configuration_not_a_send(settings, url):
    settings.VONAGE_API_URL = url

    with pytest.raises(VonageError) as raised:
        send_dispatch()

    assert (raised.value.title, raised.value.held_by) == ("Bad Vonage URL", "configuration")


def test_all_proxy_is_honoured_as_requests_honours_it(monkeypatch, settings):
    settings.VONAGE_API_URL = "https://api.nexmo.com"
    for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALL_PROXY", "http://proxy.internal:3128")
    assert VonageHttp(vonage_config()).proxy == "http://proxy.internal:3128"
