"""The baseline for `bench.sms_delivery`: a bare RQ job that makes the HTTP call Sira's send job
makes, run by a worker built like Sira's.

The bare job sends one SMS to the same endpoint (the Africa's Talking emulator, a real Kannel's
smsbox, or the emulator's Orange face, as SMS_GATEWAY names in the environment) with the same
client: one `requests.Session` per process with requests' default pool, the same method, URL,
headers and body, an Orange token fetched once and kept. It checks the answer says "accepted",
and does nothing else: no database, no outbox claim, no routing, no audit, no SDK, no metrics.
What Sira's job costs beyond that is the ratio the benchmark prints.

The worker is RQ's non-forking `SimpleWorker`, as Sira's (`workers/runner.py`), with the same
routine log lines filtered out; it loads the same Flask app first so both processes carry the same
imports and heap, and checks the same services before it works.

    python -m bench.rq_baseline --queue sira-bench-bare   # burst: stops once the queue is empty
"""

from __future__ import annotations

import argparse
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import requests

from bench.ussd_load import bench_phone
from gateway.base import unanswered
from gateway.orange import tel
from web.context import sira

BARE_QUEUE = "sira-bench-bare"
BARE_PHONES = 8_000_000  # first made-up number of phase B (apart from phase A's returnees)
AT_USER_AGENT = "africastalking-python/2.0.0"  # what the SDK sends (africastalking.Service)


class BareSendFailed(RuntimeError):
    """The endpoint did not accept the bare job's SMS: the job fails, and the benchmark counts it."""


@dataclass
class BareClient:
    """What a bare job needs, built once per process: the settings' endpoint and one session."""

    kind: str
    settings: Any
    session: requests.Session
    orange_token: str | None = None
    kannel: Any = None  # Sira's KannelGateway, for its request's parameters (SMS_GATEWAY=kannel)


@lru_cache(maxsize=1)
def _client() -> BareClient:
    from config import load_settings
    from gateway import gateway_from_settings

    settings = load_settings()
    kind = settings.sms_gateway.strip().lower()
    kannel = gateway_from_settings(settings) if kind == "kannel" else None
    return BareClient(kind, settings, requests.Session(), kannel=kannel)


def bare_send(n: int, text: str) -> str:
    """RQ job: the send job's HTTP call to SMS_GATEWAY's endpoint, and nothing else.

    The number is the benchmark's n-th made-up one, derived here: no number in a job's arguments.
    """
    client = _client()
    send = {"africastalking": _at, "kannel": _kannel, "orange": _orange}.get(client.kind)
    if send is None:
        raise BareSendFailed(f"no bare call for SMS_GATEWAY={client.kind!r}")
    try:
        return send(client, bare_phone(n), text, client.settings.sms_sender_provider)
    except requests.RequestException as exc:  # requests' message quotes the URL: a number, a password
        raise BareSendFailed(
            unanswered(exc, client.kind, client.settings.gateway_timeout_seconds).detail
        ) from None


def bare_phone(n: int) -> str:
    """The made-up number of the n-th bare job (the driver writes the same block in the outbox)."""
    return bench_phone(BARE_PHONES + n)


def _at(client: BareClient, to: str, text: str, sender: str) -> str:
    """The request AfricasTalkingGateway makes through the SDK: a form POST to /version1/messaging."""
    s = client.settings
    base = s.at_api_url.rstrip("/")
    url = (base if base.endswith("/version1") else base + "/version1") + "/messaging"
    headers = {"Accept": "application/json", "User-Agent": AT_USER_AGENT, "apiKey": s.at_api_key}
    data = {"username": s.at_username, "to": to, "message": text, "bulkSMSMode": 1, "from": sender}
    response = client.session.request(
        "POST", url, headers=headers, data=data, params=None, timeout=s.at_timeout_seconds
    )
    recipients = response.json()["SMSMessageData"]["Recipients"] if response.status_code == 201 else []
    if not recipients or recipients[0].get("statusCode") != 101:
        raise BareSendFailed(f"africastalking answered HTTP {response.status_code}")
    return "accepted"


def _kannel(client: BareClient, to: str, text: str, sender: str) -> str:
    """The request KannelGateway makes, with its own parameters (a dlr-url carrying an id)."""
    from gateway import OutgoingSms

    kannel = client.kannel
    params = kannel.parameters(OutgoingSms(to=to, text=text, sender=sender), f"sira-{uuid.uuid4().hex}")
    response = client.session.get(kannel.sendsms_url, params=params, timeout=kannel.timeout_seconds)
    if not 200 <= response.status_code < 300:
        raise BareSendFailed(f"kannel answered HTTP {response.status_code}")
    return "accepted"


def _orange(client: BareClient, to: str, text: str, sender: str) -> str:
    """The request OrangeGateway makes: a JSON POST with the bearer token it keeps."""
    s = client.settings
    api = s.orange_api_url.rstrip("/")
    address = tel(s.orange_sender_address)
    if client.orange_token is None:  # once per process, as OrangeGateway's TokenCache does
        answer = client.session.post(
            api + "/oauth/v3/token",
            data={"grant_type": "client_credentials"},
            auth=(s.orange_client_id, s.orange_client_secret),
            headers={"Accept": "application/json"},
            timeout=s.orange_timeout_seconds,
        )
        client.orange_token = str(answer.json()["access_token"])
    body = {
        "outboundSMSMessageRequest": {
            "address": tel(to),
            "senderAddress": address,
            "senderName": sender,
            "outboundSMSTextMessage": {"message": text},
        }
    }
    headers = {"Authorization": f"Bearer {client.orange_token}", "Accept": "application/json"}
    url = f"{api}/smsmessaging/v1/outbound/{quote(address, safe='')}/requests"
    response = client.session.post(url, json=body, headers=headers, timeout=s.orange_timeout_seconds)
    if response.status_code != 201 or "resourceURL" not in response.json()["outboundSMSMessageRequest"]:
        raise BareSendFailed(f"orange answered HTTP {response.status_code}")
    return "accepted"


def main(argv: list[str] | None = None) -> None:
    """Mirror cli.worker_command in burst mode, on the bare queue only (same env, same app)."""
    p = argparse.ArgumentParser(prog="python -m bench.rq_baseline", description=__doc__.split("\n\n")[0])
    p.add_argument("--queue", default=BARE_QUEUE, help=f"queue to empty (default {BARE_QUEUE})")
    args = p.parse_args(argv)

    from rq import Queue, SimpleWorker

    from app import create_app
    from infra.health import require_services
    from workers.runner import quiet_routine_logs

    app = create_app()
    sessions, redis = sira(app).sessions, sira(app).redis
    with app.app_context():
        require_services(sessions, redis)
        quiet_routine_logs()
        worker = SimpleWorker([Queue(args.queue, connection=redis)], connection=redis)
        worker.work(burst=True, with_scheduler=True)


if __name__ == "__main__":
    main()
