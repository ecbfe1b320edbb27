"""Webhook bodies from monitoring systems, turned into the alerts we act on.

Alertmanager (webhook_config, payload version 4) and Grafana alerting (the same shape plus `title`,
`message`, `state`, `orgId`) send one notification per alert group: `status` is "firing" while any alert
of the group fires and "resolved" once all have, and `groupKey` names the group. One group is one
alert (one incident), so the group key is the dedup key; an old sender without `groupKey` is handled per alert by
its `fingerprint`.

Anything wrong with a body raises `BadPayload` with a message naming the field, which the view returns
as a 400: a monitoring system's operator reads it in their logs.
"""

import hashlib
import re
import uuid
from dataclasses import dataclass

from escalation.models import IntegrationFormat
from escalation.storable import TooDeep, storable

FIRING = "firing"
RESOLVED = "resolved"
STATUSES = (FIRING, RESOLVED)
# Alert.dedup_key is 255 characters; a longer group key (many grouping labels) is hashed to fit.
DEDUP_KEY_MAX = 255
# Real notifications are a few levels deep; this bounds the walk below (json.loads allows far deeper).
MAX_DEPTH = 64


class BadPayload(ValueError):
    pass


@dataclass(frozen=True)
class AlertNotice:
    """What one notification says about one alert: it fires (page about it) or it resolved."""

    status: str  # "firing" | "resolved"
    dedup_key: str
    title: str  # e.g. "[FIRING:2] InstanceDown"; may be empty
    summary: str  # one line for a human; may be empty


def parse(format: str, body: object) -> list[AlertNotice]:
    try:
        # NUL or a lone surrogate would turn an alert into a 500, which Alertmanager retries forever.
        body = storable(body, max_depth=MAX_DEPTH)
    except TooDeep:
        raise BadPayload(f"the body is nested more than {MAX_DEPTH} levels deep") from None
    if format == IntegrationFormat.ALERTMANAGER:
        return _alertmanager(body)
    if format == IntegrationFormat.GRAFANA:
        return _grafana(body)
    if format == IntegrationFormat.GENERIC:
        return _generic(body)
    raise ValueError(f"unknown integration format {format!r}")


def dedup_key(value: str) -> str:
    if len(value) <= DEDUP_KEY_MAX:
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def one_line(text: str) -> str:
    """Annotations are often multi-line templates; a page is read on a lock screen."""
    return re.sub(r"\s+", " ", text).strip()


def _object(value: object, where: str) -> dict:
    if not isinstance(value, dict):
        raise BadPayload(f"{where} must be a JSON object, got {_json_type(value)}")
    return value


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )


def _status(value: object, where: str) -> str:
    if value not in STATUSES:
        raise BadPayload(f"{where} must be \"firing\" or \"resolved\", got {value!r}"[:200])
    return value


def _text_map(value: object, where: str) -> dict[str, str]:
    """Labels and annotations: string to string (numbers are tolerated and shown as text)."""
    if value is None:
        return {}
    mapping = _object(value, where)
    return {str(k): v if isinstance(v, str) else str(v) for k, v in mapping.items() if v is not None}


@dataclass(frozen=True)
class _GroupAlert:
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    fingerprint: str


def _group_alerts(body: dict, group_status: str) -> list[_GroupAlert]:
    alerts = body.get("alerts")
    if not isinstance(alerts, list):
        raise BadPayload(f"alerts must be an array, got {_json_type(alerts)}")
    parsed = []
    for i, raw in enumerate(alerts):
        item = _object(raw, f"alerts[{i}]")
        status = item.get("status", group_status)
        fingerprint = item.get("fingerprint", "")
        if not isinstance(fingerprint, str):
            raise BadPayload(f"alerts[{i}].fingerprint must be a string, got {_json_type(fingerprint)}")
        parsed.append(_GroupAlert(
            status=_status(status, f"alerts[{i}].status"),
            labels=_text_map(item.get("labels"), f"alerts[{i}].labels"),
            annotations=_text_map(item.get("annotations"), f"alerts[{i}].annotations"),
            fingerprint=fingerprint,
        ))
    return parsed


def _annotated(annotations: dict[str, str]) -> str:
    for name in ("summary", "description", "message"):
        if annotations.get(name, "").strip():
            return one_line(annotations[name])
    return ""


def _describe(alert: _GroupAlert) -> str:
    if text := _annotated(alert.annotations):
        return text
    shown = [f"{k}={v}" for k, v in alert.labels.items() if k != "alertname"]
    return one_line(", ".join(shown))


def _group(body: object, *, title: object = None) -> list[AlertNotice]:
    """The shape Alertmanager and Grafana share."""
    body = _object(body, "the body")
    group_status = _status(body.get("status"), "status")
    alerts = _group_alerts(body, group_status)
    common_labels = _text_map(body.get("commonLabels"), "commonLabels")
    common_annotations = _text_map(body.get("commonAnnotations"), "commonAnnotations")
    group_key = body.get("groupKey")
    if group_key is not None and not isinstance(group_key, str):
        raise BadPayload(f"groupKey must be a string, got {_json_type(group_key)}")

    if group_key:
        if group_status == FIRING and not any(a.status == FIRING for a in alerts):
            raise BadPayload("status is \"firing\" but no alert in alerts is firing")
        current = [a for a in alerts if a.status == group_status] or alerts
        first = current[0] if current else _GroupAlert(group_status, {}, {}, "")
        name = common_labels.get("alertname") or first.labels.get("alertname", "")
        summary = _annotated(common_annotations)
        if not summary:
            summary = _describe(first)
            if len(current) > 1:
                summary += f" (and {len(current) - 1} more)"
        if isinstance(title, str) and title.strip():
            heading = one_line(title)
        else:
            heading = f"[{group_status.upper()}:{len(current)}] {one_line(name)}".strip()
        return [AlertNotice(status=group_status, dedup_key=dedup_key(group_key), title=heading, summary=summary)]

    # No group key: each alert stands alone, identified by its fingerprint.
    if not alerts:
        raise BadPayload("groupKey is missing and alerts is empty: there is nothing to identify the alert by")
    result = []
    for i, alert in enumerate(alerts):
        if not alert.fingerprint:
            raise BadPayload(f"groupKey is missing and alerts[{i}] has no fingerprint to identify it by")
        name = alert.labels.get("alertname", "")
        heading = f"[{alert.status.upper()}] {one_line(name)}".strip()
        result.append(AlertNotice(status=alert.status, dedup_key=dedup_key(alert.fingerprint), title=heading,
                            summary=_describe(alert)))
    return result


def _alertmanager(body: object) -> list[AlertNotice]:
    version = body.get("version") if isinstance(body, dict) else None
    if version is not None and version != "4":
        raise BadPayload(
            f"version {version!r} is not Alertmanager's webhook version \"4\"; "
            "for Grafana alerting, set this integration's format to Grafana"[:300]
        )
    return _group(body)


def _grafana(body: object) -> list[AlertNotice]:
    if isinstance(body, dict) and "alerts" not in body and "ruleName" in body:
        raise BadPayload("this is a legacy Grafana alerting body (ruleName, evalMatches); "
                         "use Grafana's unified alerting webhook contact point")
    return _group(body, title=body.get("title") if isinstance(body, dict) else None)


def _generic(body: object) -> list[AlertNotice]:
    """`{"summary": "...", "dedup_key": "...", "status": "firing"|"resolved"}`; status defaults to firing."""
    body = _object(body, "the body")
    status = _status(body.get("status", FIRING), "status")
    key = body.get("dedup_key", "")
    if isinstance(key, int) and not isinstance(key, bool):
        key = str(key)
    if not isinstance(key, str):
        raise BadPayload(f"dedup_key must be a string, got {_json_type(key)}")
    key = key.strip()
    summary = body.get("summary", "")
    if not isinstance(summary, str):
        raise BadPayload(f"summary must be a string, got {_json_type(summary)}")
    summary = one_line(summary)
    if status == RESOLVED and not key:
        raise BadPayload("a resolved notification needs the dedup_key of the alert it resolves")
    if status == FIRING and not summary:
        raise BadPayload("summary is missing or empty: it is the text people are paged with")
    if not key:
        # Without a key the alert is never deduplicated; a random one still lets the page link to exactly
        # this escalation (the link is by integration and key).
        key = f"auto-{uuid.uuid4().hex}"
    return [AlertNotice(status=status, dedup_key=dedup_key(key), title="", summary=summary)]
