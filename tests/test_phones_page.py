"""The emulator's phones page: what each phone shows, and its read and reply buttons, over real HTTP.

The app's side is a recording sink (`webhook_sink`): these tests check what the buttons make the emulator
send, not what the app does with it (tests/test_browser_e2e.py covers the whole path in a browser).
"""

import json
import re
import subprocess
import sys

import pytest
import requests

from emulator.phones import load_phone_names
from escalation.engine.provider import get_client
from escalation.vonage.forms import FREE_TEXT, Form, TemplateSend
from tests.emulator_fixtures import ROOT

WHATSAPP = {"type": "whatsapp", "address": "447700900001", "expiry_time": 15, "condition": "read",
            "sender": "447700900000"}
VIBER = {"type": "viber_service_msg", "address": "447700900002", "expiry_time": 15, "condition": "read",
         "sender": "oncall-viber"}
SMS = {"type": "sms", "address": "447700900009", "expiry_time": 15, "condition": "delivered", "sender": "OnCall"}


def send(channel: dict, text: str) -> str:
    """A page as it goes to someone who never wrote: on WhatsApp, the template with the text as {{1}}."""
    form = FREE_TEXT
    if channel["type"] == "whatsapp":
        form = Form(template=TemplateSend(name="oncall_alert", namespace="whatsapp:hsm:it:oncall", values=(text,)))
    return get_client().send_message(channel=channel, text=text, client_ref=text[:40], form=form)


def delivered(emulator, message_uuid: str) -> None:
    emulator.wait_for(emulator.messages, lambda ms: any(
        m["message_uuid"] == message_uuid and m["status"] == "delivered" for m in ms))


def page(emulator, **params: str) -> str:
    answer = requests.get(f"{emulator.url}/phones/", params=params, timeout=5)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    assert answer.headers["Cache-Control"] == "no-store"
    return answer.text


def post(emulator, action: str, form: dict) -> requests.Response:
    return requests.post(f"{emulator.url}/phones/{action}", data=form, allow_redirects=False, timeout=5)


def texts(html: str) -> list[str]:
    return re.findall(r'<p class="text">([^<]*)</p>', html)


def sections(html: str) -> list[str]:
    return re.findall(r'<section class="phone"><h2>([^<]*)</h2>', html)


def test_it_shows_each_phone_with_its_messages_newest_first(emulator, webhook_sink):
    first = send(WHATSAPP, "Ann: disk full")
    second = send(WHATSAPP, "Ann: still full")
    other = send(SMS, "Bob: disk full")
    for message_uuid in (first, second, other):
        delivered(emulator, message_uuid)

    html = page(emulator)

    assert sections(html) == ["447700900009", "447700900001"]  # latest news first
    assert texts(html) == ["Bob: disk full", "[template oncall_alert] Ann: still full",
                           "[template oncall_alert] Ann: disk full"]
    assert html.count('<span class="status status-delivered">delivered ') == 3
    assert "from 447700900000 via Messages API" in html
    assert '<span class="channel">WhatsApp</span> <span class="address">447700900001</span>' in html


def test_it_escapes_what_the_app_sent(emulator, webhook_sink):
    send(WHATSAPP, "<script>alert(1)</script> & co")

    html = page(emulator)

    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html
    assert "<script>alert" not in html


def test_mark_read_opens_the_message_and_tells_the_app(emulator, webhook_sink):
    message_uuid = send(VIBER, "Michael: db down")
    delivered(emulator, message_uuid)
    assert f'name="message" value="{message_uuid}"' in page(emulator)

    answer = post(emulator, "read", {"message": message_uuid, "address": "447700900002"})

    assert answer.status_code == 303
    assert answer.headers["Location"] == "/phones/?note=Read%20the%20message%20to%20447700900002."
    [message] = emulator.messages(to="447700900002")
    assert message["status"] == "read"
    emulator.wait_for(lambda: webhook_sink.bodies("/webhooks/status"),
                      lambda bodies: any(b["message_uuid"] == message_uuid and b["status"] == "read" for b in bodies))
    html = page(emulator, note="Read the message to 447700900002.")
    assert '<p class="note" role="status">Read the message to 447700900002.</p>' in html
    assert f'name="message" value="{message_uuid}"' not in html  # nothing left to read
    assert '<span class="status status-read">read ' in html


def test_an_sms_has_no_read_button_and_a_forged_read_is_refused(emulator, webhook_sink):
    message_uuid = send(SMS, "Bob: db down")
    delivered(emulator, message_uuid)

    html = page(emulator)
    answer = post(emulator, "read", {"message": message_uuid})

    assert 'class="read"' not in html
    assert "SMS has no read receipts: reply to acknowledge." in html
    assert "Not%20read%3A%20SMS%20has%20no%20read%20receipts." in answer.headers["Location"]
    assert emulator.messages(to="447700900009")[0]["status"] == "delivered"


def test_reply_writes_back_to_the_app(emulator, webhook_sink):
    message_uuid = send(SMS, "Bob: db down")
    delivered(emulator, message_uuid)

    answer = post(emulator, "reply", {"channel": "sms", "address": "447700900009", "text": "on it"})

    assert answer.status_code == 303
    [inbound] = emulator.wait_for(lambda: webhook_sink.bodies("/webhooks/inbound"), lambda bodies: len(bodies) == 1)
    assert (inbound["from"], inbound["to"], inbound["text"], inbound["channel"]) == (
        "447700900009", "OnCall", "on it", "sms")
    html = page(emulator)
    assert texts(html) == ["on it", "Bob: db down"]
    assert "you replied · " in html


@pytest.mark.parametrize("form, note", [
    ({"channel": "sms", "address": "447700900009", "text": "  "}, "Not sent: the reply was empty."),
    ({"channel": "fax", "address": "447700900009", "text": "ok"}, "Not sent: the reply form lost its channel"),
])
def test_a_bad_reply_sends_nothing(emulator, webhook_sink, form, note):
    answer = post(emulator, "reply", form)

    assert answer.status_code == 303
    assert requests.utils.unquote(answer.headers["Location"]).startswith(f"/phones/?note={note}")
    assert emulator.messages() == []


def test_named_phones_come_first_and_gather_their_addresses(emulator, webhook_sink):
    emulator.instance.config.phone_names = {"Michael": ["447700900002", "447700900001"], "Anna": ["447700900005"]}
    delivered(emulator, send(WHATSAPP, "Michael: db down"))
    delivered(emulator, send(VIBER, "Michael: db down (Viber)"))
    delivered(emulator, send(SMS, "Bob: db down"))

    html = page(emulator)

    assert sections(html) == ["Michael", "Anna", "447700900009"]
    michael = html[html.index("<h2>Michael</h2>"):html.index("<h2>Anna</h2>")]
    # In the order the names file gives the addresses, whatever order the messages came in.
    assert re.findall(r'<span class="address">(\d+)</span>', michael) == ["447700900002", "447700900001"]
    assert '<p class="addresses">447700900002 · 447700900001</p>' in michael
    anna = html[html.index("<h2>Anna</h2>"):html.index("<h2>447700900009</h2>")]
    assert "Nothing has arrived yet." in anna
    viber = emulator.messages(to="447700900002")[0]["message_uuid"]
    answer = post(emulator, "read", {"message": viber, "address": "447700900002"})
    note = requests.utils.unquote(answer.headers["Location"])
    assert note == "/phones/?note=Michael read the message to 447700900002."


def test_the_fragment_is_the_part_the_page_refreshes(emulator, webhook_sink):
    send(WHATSAPP, "Ann: disk full")

    whole, fragment = page(emulator), page(emulator, fragment="1")

    assert not fragment.startswith("<!doctype")
    assert fragment.startswith('<p class="updated">Updated ')
    assert texts(fragment) == ["[template oncall_alert] Ann: disk full"]
    assert 'fetch("/phones/?fragment=1"' in whole
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in whole


def test_an_empty_emulator_says_what_to_do(emulator):
    assert "No messages yet. Fire an escalation in the app" in page(emulator)


def test_wrong_methods_and_paths(emulator):
    assert requests.get(f"{emulator.url}/phones/read", timeout=5).status_code == 405
    assert requests.get(f"{emulator.url}/phones/nothing", timeout=5).status_code == 404
    assert requests.get(f"{emulator.url}/phones", timeout=5).status_code == 200


def test_the_names_file_is_checked(tmp_path, vonage_keys):
    good = tmp_path / "names.json"
    good.write_text(json.dumps({"Tony": ["23037543461244470", "447700900001"]}))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"Tony": "447700900001"}))

    assert load_phone_names(str(good)) == {"Tony": ["23037543461244470", "447700900001"]}
    with pytest.raises(ValueError, match="expected"):
        load_phone_names(str(bad))
    refused = subprocess.run([sys.executable, "-m", "emulator", "--public-key", vonage_keys["public_path"],
                              "--phone-names", str(bad)], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert refused.returncode == 2
    assert "--phone-names" in refused.stderr and "expected" in refused.stderr


@pytest.mark.django_db
def test_the_admin_links_to_the_phones_only_in_demo_mode(admin_client, settings):
    settings.DEMO_PHONES_URL = "http://127.0.0.1:8025/phones/"
    demo = admin_client.get("/admin/").content.decode()
    settings.DEMO_PHONES_URL = ""
    plain = admin_client.get("/admin/").content.decode()

    assert ('<a href="http://127.0.0.1:8025/phones/" target="_blank" rel="noopener" class="demo-phones-link">'
            'Phones (demo)</a>') in demo
    assert "Phones (demo)" not in plain
    assert "Log out" in demo and "Log out" in plain  # Django's own user links are still there
