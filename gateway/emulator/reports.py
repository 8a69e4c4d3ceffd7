"""Delivery reports, posted back to Sira a moment after the emulator accepts a message."""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

import requests

from gateway.emulator.state import EmulatorState

log = logging.getLogger(__name__)

NETWORK_CODE = "61001"  # a Malian network code, as delivery reports carry one
ORANGE_REQUESTS = "https://api.orange.com/smsmessaging/v1/outbound/requests"  # resourceURL's stem


@dataclass(frozen=True)
class _Report:
    due: float
    generation: int
    message_id: str
    phone: str
    failure_reason: str | None
    orange: bool = False  # Orange's JSON deliveryInfoNotification instead of AT's form


class DeliveryReporter:
    """Posts delivery reports from one background thread, each `delay` seconds after acceptance."""

    def __init__(self, state: EmulatorState, callback_base_url: str | None, delay: float) -> None:
        self.state = state
        self.url = f"{callback_base_url.rstrip('/')}/sms/delivery" if callback_base_url else None
        self.orange_url = (
            f"{callback_base_url.rstrip('/')}/sms/orange/delivery" if callback_base_url else None
        )
        self.delay = delay
        self._queue: queue.Queue[_Report] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._session = requests.Session()

    def schedule(
        self, message_id: str, phone: str, failure_reason: str | None, generation: int, orange: bool = False
    ) -> None:
        self._ensure_thread()
        due = time.monotonic() + self.delay
        self._queue.put(_Report(due, generation, message_id, phone, failure_reason, orange))

    def _ensure_thread(self) -> None:
        # Started on first use, not in create_emulator, so building the app starts no thread.
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="delivery-reports", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            report = self._queue.get()
            time.sleep(max(0.0, report.due - time.monotonic()))  # delays are equal, so FIFO is in due order
            try:
                self._deliver(report)
            except Exception:  # the reporter thread must outlive any one bad report
                log.exception("delivery report for %s failed", report.message_id)

    def _deliver(self, report: _Report) -> None:
        status = "Failed" if report.failure_reason else "Success"
        if not self.state.set_status(report.message_id, status, report.failure_reason, report.generation):
            return
        if self.url is None or self.orange_url is None:
            return
        if report.orange:
            self._post(report, self.orange_url, json=orange_receipt(report))
            return
        form = {
            "id": report.message_id,
            "status": status,
            "phoneNumber": report.phone,
            "networkCode": NETWORK_CODE,
            "retryCount": "0",
        }
        if report.failure_reason:
            form["failureReason"] = report.failure_reason
        self._post(report, self.url, data=form)

    def _post(self, report: _Report, url: str, **body: object) -> None:
        try:
            response = self._session.post(url, timeout=5, **body)  # type: ignore[arg-type]
        except requests.RequestException as exc:
            log.warning(
                "delivery report for %s dropped: %s unreachable (%s)",
                report.message_id,
                url,
                type(exc).__name__,
            )
            return
        if response.status_code >= 300:
            log.warning("delivery report for %s answered HTTP %s", report.message_id, response.status_code)


def orange_receipt(report: _Report) -> dict[str, object]:
    """Orange's delivery receipt for one message: its resourceURL, the phone, and the outcome."""
    status = "DeliveryImpossible" if report.failure_reason else "DeliveredToTerminal"
    return {
        "deliveryInfoNotification": {
            "callbackData": report.message_id,
            "resourceURL": f"{ORANGE_REQUESTS}/{report.message_id}",
            "deliveryInfo": {"address": f"tel:{report.phone}", "deliveryStatus": status},
        }
    }
