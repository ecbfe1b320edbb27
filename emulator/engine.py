"""The recipients' phones and Dispatch's failover, played on the scheduler thread.

Default phone: every message is `submitted` at once, `delivered` a second later and never `read`.
A Scenario changes that per address. Delays are emulated seconds (scaled by --time-scale).
"""

import time
import uuid

from emulator import shapes, windows
from emulator.schemas import DISPATCH_FIELDS, V1_TO_TYPE
from emulator.store import STATUS_RANK, Dispatch, Message, Scenario

SUBMIT_DELAY = 0.1
DELIVER_DELAY = 1.0
READ_DELAY = 5.0  # a "read" scenario without `after`
REJECT_DELAY = 0.5
UNDELIVERABLE_DELAY = 2.0
# A last workflow item that is never delivered has no expiry to end the workflow; after a day (Vonage's
# message lifetime) the emulator reports the workflow as `error`, so every workflow gets its one report.
LAST_ITEM_GIVE_UP = 24 * 3600.0
# Our side's address when a person writes before we ever sent them anything.
DEFAULT_SENDERS = {"messenger": "1923256201474167", "whatsapp": "447700900000", "sms": "447700900000",
                   "viber_service_msg": "654321"}
FAILED = ("rejected", "undeliverable")


class Engine:
    def __init__(self, emulator) -> None:
        self.emulator = emulator
        self.store = emulator.store
        self.scheduler = emulator.scheduler
        self.webhooks = emulator.webhooks

    # --- requests the app makes -----------------------------------------------------------------------

    def accept_dispatch(self, body: dict) -> str:
        dispatch = Dispatch(uuid=str(uuid.uuid4()), items=body["workflow"], created=time.time())
        with self.store.lock:
            self.store.dispatches[dispatch.uuid] = dispatch
        self.scheduler.call_later(0, self._send_item, dispatch.uuid, 0)
        return dispatch.uuid

    def accept_message(self, body: dict) -> str:
        form, text = windows.v1_form(body)
        message = Message(
            uuid=str(uuid.uuid4()), api="messages", channel=V1_TO_TYPE[body["channel"]], to=body["to"],
            sender=body["from"], text=text, created=time.time(), client_ref=body.get("client_ref", ""),
            webhook_url=body.get("webhook_url", ""), form=form,
        )
        with self.store.lock:
            self.store.add_message(message)
            self._play(message)
        return message.uuid

    def upcoming_webhooks(self) -> int:
        """Timers that will make a webhook: the phones' statuses and replies, and Dispatch's first items (sent
        at once). Dispatch's expiries are not counted: they follow a workflow's timetable, which may be a day."""
        return self.scheduler.pending(self._status, self._scenario_reply, self._send_item)

    # --- the phones --------------------------------------------------------------------------------------

    def _play(self, message: Message) -> None:
        """Schedule what the recipient's phone does with a message just sent (store lock held)."""
        if self.emulator.config.enforce_windows and windows.refused(self.store, message,
                                                                    time_scale=self.scheduler.time_scale):
            # The platform refuses it whatever the phone would do: no scenario is used up.
            message.error = (windows.WINDOW_ERROR_CODE, windows.WINDOW_ERROR_TITLE,
                             windows.WINDOW_ERROR_DETAIL[message.channel])
            self.scheduler.call_later(REJECT_DELAY, self._status, message.uuid, "rejected")
            return
        scenario = self.store.take_scenario(message.channel, message.to) or Scenario(address=message.to)
        after = scenario.after
        if scenario.action == "reject":
            timeline = [(REJECT_DELAY if after is None else after, "rejected")]
        else:
            later = []
            if scenario.action == "deliver":
                later.append((DELIVER_DELAY if after is None else after, "delivered"))
            elif scenario.action == "read":
                read_at = READ_DELAY if after is None else after
                later.append((min(DELIVER_DELAY, read_at), "delivered"))
                if message.channel != "sms":  # SMS has no read receipts (VONAGE_FACTS.md)
                    later.append((read_at, "read"))
            elif scenario.action == "undeliverable":
                later.append((UNDELIVERABLE_DELAY if after is None else after, "undeliverable"))
            # Never before `submitted`: equal delays run in the order they were scheduled.
            timeline = [(SUBMIT_DELAY, "submitted")] + [(max(d, SUBMIT_DELAY), s) for d, s in later]
        for delay, status in timeline:
            self.scheduler.call_later(delay, self._status, message.uuid, status)
        if scenario.reply:
            reply_at = max(READ_DELAY if after is None else after, SUBMIT_DELAY)
            self.scheduler.call_later(reply_at, self._scenario_reply, message.uuid, scenario.reply)

    def _status(self, message_uuid: str, status: str) -> None:
        with self.store.lock:
            message = self.store.messages.get(message_uuid)
            # Statuses only move up: a scheduled `delivered` after a manual `read` is dropped.
            if message is None or STATUS_RANK[status] <= STATUS_RANK[message.status]:
                return
            at = time.time()
            message.status = status
            message.history.append((status, at))
            if message.api == "dispatch":
                body = shapes.v01_status(message, status, at)
            else:
                body = shapes.v1_status(message, status, at)
            self.webhooks.send(path="/webhooks/status", body=body, kind="status", key=self._lane_key(message),
                               url=message.webhook_url)
            if message.dispatch_uuid:
                self._advance(message)

    def mark_read(self, message_uuid: str) -> str:
        """The person opens the message now; returns "" or why that is impossible."""
        with self.store.lock:
            message = self.store.messages.get(message_uuid)
            if message is None or message.api == "inbound":
                return "no such message sent by the app"
            if message.channel == "sms":
                return "SMS has no read receipts"
            if message.status in FAILED:
                return f"the message was {message.status}"
            for status in ("submitted", "delivered", "read"):
                self._status(message_uuid, status)
            return ""

    def reply(self, *, sender: str, channel: str, text: str, version: str = "", to: str = "",
              ago: float = 0.0) -> str:
        """The person at `sender` writes `text` to us on `channel`; returns the inbound message_uuid.

        The webhook shape follows the API that last wrote to this phone (v0.1 after Dispatch, v1 after
        Messages) unless `version` says otherwise. Replying opens the chat, so the latest message is read.
        `ago` (emulated seconds) dates the message in the past, e.g. "wrote an hour ago": it opened the
        person's 24-hour window then.
        """
        with self.store.lock:
            latest = self.store.latest_sent_to(channel, sender)
            version = version or ("v0.1" if latest is not None and latest.api == "dispatch" else "v1")
            to = to or (latest.sender if latest is not None else DEFAULT_SENDERS[channel])
            at = time.time() - ago * self.scheduler.time_scale
            inbound = Message(uuid=str(uuid.uuid4()), api="inbound", channel=channel, to=to, sender=sender,
                              text=text, created=at, status="inbound")
            self.store.add_message(inbound)
            if latest is not None and latest.channel != "sms" and latest.status not in FAILED:
                self.mark_read(latest.uuid)
            build = shapes.v01_inbound if version == "v0.1" else shapes.v1_inbound
            body = build(message_uuid=inbound.uuid, channel=channel, sender=sender, to=to, text=text, at=at)
            key = self._lane_key(latest) if latest is not None else inbound.uuid
            self.webhooks.send(path="/webhooks/inbound", body=body, kind="inbound", key=key)
            return inbound.uuid

    def _scenario_reply(self, message_uuid: str, text: str) -> None:
        with self.store.lock:
            message = self.store.messages.get(message_uuid)
            if message is not None:
                self.reply(sender=message.to, channel=message.channel, text=text)

    @staticmethod
    def _lane_key(message: Message) -> str:
        # One workflow's events share a lane so they keep their order unless a fault reorders them.
        return message.dispatch_uuid or message.uuid

    # --- Dispatch's failover -------------------------------------------------------------------------

    def _send_item(self, dispatch_uuid: str, index: int) -> None:
        with self.store.lock:
            dispatch = self.store.dispatches.get(dispatch_uuid)
            # Both an expiry and a failed status can ask for the next item: only the first one counts.
            if dispatch is None or dispatch.status != "running" or index <= dispatch.current:
                return
            dispatch.current = index
            item = dispatch.items[index]
            kind = item["to"]["type"]
            from_field, to_field = DISPATCH_FIELDS[kind]
            form, text = windows.dispatch_form(item["message"])
            message = Message(
                uuid=str(uuid.uuid4()), api="dispatch", channel=kind, to=item["to"][to_field],
                sender=item["from"][from_field], text=text, created=time.time(), dispatch_uuid=dispatch.uuid,
                form=form,
            )
            self.store.add_message(message)
            dispatch.message_uuids.append(message.uuid)
            self._play(message)
            failover = item.get("failover")
            wait = failover["expiry_time"] if failover else LAST_ITEM_GIVE_UP
            self.scheduler.call_later(wait, self._expire, dispatch.uuid, index)

    def _expire(self, dispatch_uuid: str, index: int) -> None:
        with self.store.lock:
            dispatch = self.store.dispatches.get(dispatch_uuid)
            if dispatch is None or dispatch.status != "running" or dispatch.current != index:
                return
            # No "expired" event exists: the item keeps its last status and the next one is sent.
            if index + 1 < len(dispatch.items):
                self._send_item(dispatch_uuid, index + 1)
            else:
                self._finish(dispatch, "error")

    def _advance(self, message: Message) -> None:
        """React to a status of the workflow's current item (store lock held)."""
        dispatch = self.store.dispatches.get(message.dispatch_uuid)
        if dispatch is None or dispatch.status != "running" or dispatch.message_uuids[dispatch.current] != message.uuid:
            return  # a late status of an earlier item changes nothing
        failover = dispatch.items[dispatch.current].get("failover")
        if message.status in FAILED:
            if failover:
                self._send_item(dispatch.uuid, dispatch.current + 1)
            else:
                self._finish(dispatch, "error")
        elif failover is None:
            if message.status in ("delivered", "read"):
                self._finish(dispatch, "completed")
        elif STATUS_RANK[message.status] >= STATUS_RANK[failover["condition_status"]]:
            self._finish(dispatch, "completed")

    def _finish(self, dispatch: Dispatch, status: str) -> None:
        dispatch.status = status
        dispatch.items = []  # the largest part of a workflow's memory, and never needed again
        messages = [self.store.messages[u] for u in dispatch.message_uuids]
        body = shapes.final_report(dispatch, messages, status, time.time())
        self.webhooks.send(path="/webhooks/status", body=body, kind="final_report", key=dispatch.uuid)
