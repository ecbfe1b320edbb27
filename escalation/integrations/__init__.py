"""Alert intake: monitoring systems (Alertmanager, Grafana, anything that can POST JSON) fire escalations.

`parse` turns a webhook body into `Alert`s; `views.receive` is the endpoint; the decisions (fire, join the
active escalation, cancel on resolve) are `escalation.services.integrations.integration_receive`.
"""
