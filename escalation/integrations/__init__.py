"""Alert intake: monitoring systems (Alertmanager, Grafana, anything that can POST JSON) fire escalations.

`parse` turns a webhook body into `AlertNotice`s; `views.receive` is the endpoint; what each notice does to
its alert (open it and page, note a repeat, resolve it) is `escalation.services.alerts`, and every
notification is recorded by `escalation.services.alert_receipts`.
"""
