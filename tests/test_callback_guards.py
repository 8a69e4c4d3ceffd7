"""Callbacks are capped, checked field by field, rate-limited per phone and, optionally, accepted
only from the gateway's networks (behind a reverse proxy too). A refusal writes nothing."""

from __future__ import annotations

import pytest
import requests
from flask import Flask
from sqlalchemy import select

from app import create_app
from config import ConfigError, load_settings
from infra.keys import STEP_BUFFER
from models import InboundSms, OutboundSms
from models.phone import phone_hash
from tests.callback_forms import OPTOUT, ROUTES, SMS, USSD, snapshot
from tests.conftest import PHONE_HASH_KEY, LiveServer, app_settings
from web.context import sira

GATEWAY_NET = "196.201.214.0/23"


@pytest.mark.parametrize("path", list(ROUTES))
def test_a_body_over_the_cap_is_refused_with_413_and_writes_nothing(app: Flask, redis, path: str) -> None:
    before = snapshot(app, redis)
    form = {**ROUTES[path], "padding": "x" * 5000}
    response = app.test_client().post(path, data=form)
    assert response.status_code == 413 and response.mimetype == "text/plain"
    assert "larger than 4096 bytes" in response.get_data(as_text=True)
    assert snapshot(app, redis) == before


def test_the_cap_is_configurable_and_holds_for_a_chunked_body(database_url: str, redis) -> None:
    app = create_app(app_settings(database_url, callback_max_bytes=1024))
    assert app.test_client().post("/sms/incoming", data={**SMS, "text": "x" * 1200}).status_code == 413
    before = snapshot(app, redis)

    def chunks():  # no Content-Length: the cap must hold while the body is read
        yield b"from=%2B22370000001&to=7472&id=c-1&date=2017-05-03+06%3A04%3A45&text="
        for _ in range(40):
            yield b"y" * 100

    with LiveServer(app) as server:
        response = requests.post(server.url + "/sms/incoming", data=chunks(), timeout=10,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert response.status_code == 413, response.text
    assert snapshot(app, redis) == before


@pytest.mark.parametrize(
    ("change", "reason"),
    [({"from": "+223 7000 ABCD"}, "from is not a phone number"), ({"id": "in 1"}, "id has characters"),
     ({"to": "7472;DROP"}, "to has characters"), ({"text": "AIDE\x00"}, "text has characters"),
     ({"linkId": "é"}, "linkId has characters"), ({"text": None}, "missing field text"),
     ({"date": "yesterday"}, "is not like")],
)  # fmt: skip
def test_an_incoming_sms_with_a_bad_field_gets_400_and_nothing_stored(
    app: Flask, redis, change: dict, reason: str
) -> None:
    before = snapshot(app, redis)
    form = {k: v for k, v in {**SMS, **change}.items() if v is not None}
    response = app.test_client().post("/sms/incoming", data=form)
    assert response.status_code == 400 and reason in response.get_data(as_text=True)
    assert snapshot(app, redis) == before


def test_an_empty_sms_and_one_in_any_script_are_stored(app: Flask, db) -> None:
    client = app.test_client()
    assert client.post("/sms/incoming", data={**SMS, "text": ""}).status_code == 200
    text = "Ń ka baara ɲini\nشكرا"
    assert client.post("/sms/incoming", data={**SMS, "id": "in-2", "text": text}).status_code == 200
    assert db.scalar(select(InboundSms.text).where(InboundSms.gateway_id == "in-2")) == text


@pytest.mark.parametrize(("path", "form"), [("/sms/optout", {**OPTOUT, "phoneNumber": "7000\x0001"}),
                                            ("/sms/delivery", {"id": "x", "status": "Succ\x00ess"})])  # fmt: skip
def test_optout_and_delivery_refuse_control_characters(app: Flask, redis, path: str, form: dict) -> None:
    before = snapshot(app, redis)
    assert app.test_client().post(path, data=form).status_code == 400
    assert snapshot(app, redis) == before


def test_an_end_of_session_notice_with_a_bad_field_is_ignored_with_200(app: Flask, redis) -> None:
    before = snapshot(app, redis)
    response = app.test_client().post("/ussd/events", data={**ROUTES["/ussd/events"], "status": "x\x07"})
    assert response.status_code == 200 and response.get_data(as_text=True).startswith("ignored: status")
    assert snapshot(app, redis) == before


# Rate limits


def limited_app(database_url: str, **extra: object) -> Flask:
    return create_app(app_settings(database_url, ussd_rate_limit=4, sms_rate_limit=2, **extra))


def test_a_phone_over_its_ussd_limit_gets_a_polite_end_and_others_go_on(database_url: str, redis) -> None:
    client = limited_app(database_url).test_client()
    history: list[str] = []
    replies = []
    logged = []
    for answer in (None, "1", "1", "9", "2"):
        if answer is not None:
            history.append(answer)
        replies.append(client.post("/ussd", data={**USSD, "text": "*".join(history)}).get_data(as_text=True))
        logged.append(redis.llen(STEP_BUFFER))
    assert all(r.startswith("CON ") for r in replies[:4])
    assert replies[4] == "END Trop de demandes depuis votre numero. Attendez quelques minutes puis rappelez."
    assert logged[4] == logged[3]  # the refused step is not in the transcript
    other = {**USSD, "sessionId": "ATUid_2", "phoneNumber": "+22370000002"}
    assert client.post("/ussd", data=other).get_data(as_text=True).startswith("CON ")
    keys = [k.decode() for k in redis.keys("limit:*")]
    digest = phone_hash("+22370000001", PHONE_HASH_KEY)
    assert any(digest in k for k in keys) and not any("2237000000" in k for k in keys)
    assert all(0 < redis.ttl(k) <= 61 for k in keys)


def dial_and_wander(client, phone: str, steps: int) -> list[str]:
    """A fresh session of `steps` answers that change nothing (9: an invalid choice, re-asked)."""
    form = {**USSD, "sessionId": f"ATUid_{phone[-4:]}_{steps}", "phoneNumber": phone}
    return [client.post("/ussd", data={**form, "text": "*".join(["9"] * n)}).get_data(as_text=True)
            for n in range(steps)]  # fmt: skip


@pytest.mark.parametrize(("env", "limited"), [("development", False), ("testing", True)])
def test_the_demo_numbers_are_not_rate_limited_in_development_only(
    database_url: str, redis, env: str, limited: bool
) -> None:
    """The README's scripted example, run three times in a row, must not hit the limit on a laptop."""
    client = limited_app(database_url, env=env).test_client()
    demo = dial_and_wander(client, "+22370000101", 8)
    assert any(r.startswith("END Trop de demandes") for r in demo) is limited, demo
    assert not redis.keys("limit:*") if not limited else redis.keys("limit:*")
    other = dial_and_wander(client, "+22370000177", 8)
    assert other[-1].startswith("END Trop de demandes"), other  # any other number is held to it


def test_the_limit_answers_in_the_sessions_language(database_url: str, redis) -> None:
    client = limited_app(database_url).test_client()
    history: list[str] = []
    for answer in (None, "3", "9", "9"):  # 3: English
        if answer is not None:
            history.append(answer)
        client.post("/ussd", data={**USSD, "text": "*".join(history)})
    reply = client.post("/ussd", data={**USSD, "text": "*".join([*history, "9"])}).get_data(as_text=True)
    assert reply == "END Too many requests from your number. Please wait a few minutes and dial again."


def test_redis_down_means_no_limit(database_url: str, redis) -> None:
    app = create_app(app_settings(database_url, ussd_rate_limit=1, sms_rate_limit=1,
                                  redis_url="redis://127.0.0.1:1/0"))  # fmt: skip
    client = app.test_client()
    history: list[str] = []
    for answer in (None, "1", "1", "9"):
        if answer is not None:
            history.append(answer)
        assert (
            client.post("/ussd", data={**USSD, "text": "*".join(history)}).get_data(as_text=True)[:4]
            == "CON "
        )
    for n in range(3):
        assert (
            client.post("/sms/incoming", data={**SMS, "id": f"in-{n}"}).get_data(as_text=True) == "ok: help"
        )


def test_sms_over_the_limit_are_stored_but_neither_acted_on_nor_answered(database_url: str, redis) -> None:
    app = limited_app(database_url)
    client = app.test_client()
    answers = [client.post("/sms/incoming", data={**SMS, "id": f"in-{n}", "text": "STOP"}).get_data(as_text=True)
               for n in range(2)] + [client.post("/sms/incoming", data={**SMS, "id": "in-2", "text": "START"}).get_data(as_text=True)]  # fmt: skip
    assert answers == ["ok: stop", "ok: stop", "ok: rate_limited"]
    with sira(app).sessions() as db:
        stored = db.scalars(select(InboundSms).order_by(InboundSms.id)).all()
        assert [(m.text, m.handled_as) for m in stored][-1] == ("START", "rate_limited")
        assert len(stored) == 3
        replies = db.scalars(select(OutboundSms)).all()
        assert len(replies) <= 2 and not any("START" in r.purpose for r in replies)


def test_a_providers_number_is_not_limited_so_its_answers_are_never_dropped(database_url: str, redis) -> None:
    """A focal point clearing a backlog sends OK then FINI for each referral: every one counts."""
    app = limited_app(database_url)
    assert app.test_cli_runner().invoke(args=["seed"]).exit_code == 0
    client = app.test_client()
    apej = {**SMS, "from": "+22370000002"}  # a provider's registered number in the sample directory
    answers = [
        client.post("/sms/incoming", data={**apej, "id": f"p-{n}", "text": "OK ZZZZZ"}).text for n in range(4)
    ]
    assert answers == ["ok: unknown_code"] * 4
    with sira(app).sessions() as db:
        assert len(db.scalars(select(OutboundSms)).all()) == 4  # each told the code is unknown


# Allowed networks, behind a reverse proxy


def test_networks_setting_is_validated() -> None:
    assert (
        len(load_settings({}, callback_allowed_networks=f"{GATEWAY_NET}, 2001:db8::/32").callback_networks)
        == 2
    )
    with pytest.raises(ConfigError, match="CALLBACK_ALLOWED_NETWORKS"):
        load_settings({}, callback_allowed_networks="196.201.214.0/33")
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        load_settings({}, trusted_proxies=-1)


@pytest.fixture
def behind_proxy(database_url: str, redis) -> Flask:
    return create_app(app_settings(database_url, callback_allowed_networks=GATEWAY_NET, trusted_proxies=1))


@pytest.mark.parametrize(
    ("forwarded", "status"),
    [("196.201.214.10", 200), ("196.201.215.255", 200), ("10.0.0.7", 404),
     ("196.201.214.10, 10.0.0.7", 404),  # forged first hop; the proxy appended the real client
     ("10.0.0.7, 196.201.214.10", 200), (None, 404), ("not-an-address", 404)],
)  # fmt: skip
@pytest.mark.parametrize("path", list(ROUTES))
def test_only_the_gateways_networks_reach_the_callbacks(
    behind_proxy: Flask, redis, path: str, forwarded: str | None, status: int
) -> None:
    before = snapshot(behind_proxy, redis)
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    response = behind_proxy.test_client().post(path, data=ROUTES[path], headers=headers,
                                               environ_base={"REMOTE_ADDR": "127.0.0.1"})  # fmt: skip
    assert response.status_code == status, response.get_data(as_text=True)
    if status == 404:
        assert snapshot(behind_proxy, redis) == before


def test_without_trusted_proxies_the_forwarded_header_is_not_believed(database_url: str, redis) -> None:
    app = create_app(app_settings(database_url, callback_allowed_networks=GATEWAY_NET))
    client = app.test_client()
    spoofed = client.post("/ussd", data=USSD, headers={"X-Forwarded-For": "196.201.214.10"},
                          environ_base={"REMOTE_ADDR": "203.0.113.9"})  # fmt: skip
    assert spoofed.status_code == 404
    direct = client.post("/ussd", data=USSD, environ_base={"REMOTE_ADDR": "196.201.214.10"})
    assert direct.status_code == 200
    assert client.get("/healthz", environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code in (200, 503)


def test_the_allow_list_holds_over_real_http_with_a_secret(database_url: str, redis) -> None:
    secret = "s" * 40
    app = create_app(app_settings(database_url, callback_allowed_networks="127.0.0.0/8,::1/128",
                                  callback_secret=secret))  # fmt: skip
    with LiveServer(app) as server:
        assert requests.post(f"{server.url}/{secret}/ussd", data=USSD, timeout=5).status_code == 200
    app = create_app(
        app_settings(database_url, callback_allowed_networks=GATEWAY_NET, callback_secret=secret)
    )
    with LiveServer(app) as server:
        assert requests.post(f"{server.url}/{secret}/ussd", data=USSD, timeout=5).status_code == 404
