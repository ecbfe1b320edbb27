"""The escalation engine: person by person, channel by channel, until someone is reached.

- `step.py` decides, under the escalation's row lock, what is due now (start a page, send a message,
  fail over, pass a person over, end the escalation) and claims any send it decides on.
- `sending.py` performs a claimed send outside any transaction and records its outcome.
- `intake.py` takes the webhooks the web process stored and applies them at the start of each pass; `apply.py`
  says what each one changes (statuses, final reports, replies).
- `transitions.py` ends an escalation (acknowledged, reached, cancelled), for the webhooks and the services.
- `provider.py` builds the Vonage client from the settings.
- `worker.py` is the loop behind `manage.py run_escalations`.

It calls the models and the Vonage client, never the services above it (tests/test_layers.py).

Crash safety in one sentence: every send is recorded (claimed, with a lease) before the request and its
outcome after, so a worker killed anywhere leaves either nothing done (redone later) or a claimed send whose
lease runs out and is sent again (at most one duplicate); the timer lives on the escalation's own row.
"""
