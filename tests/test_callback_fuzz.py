"""Fuzzing every gateway callback: random forms, random bytes, any content type, huge or missing
fields, any script. The app never answers 500, and a refused request writes nothing."""

from __future__ import annotations

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import create_app
from tests.callback_forms import ROUTES, snapshot
from tests.conftest import app_settings

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
CONTENT_TYPES = [None, "application/x-www-form-urlencoded", "multipart/form-data", "multipart/form-data; boundary=x",
                 "application/json", "text/plain; charset=utf-8", "application/x-www-form-urlencoded; charset=latin-1",
                 "application/octet-stream"]  # fmt: skip
REFUSALS = ("END Desole", "ignored: ")

values = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    st.text(alphabet="0123456789+* #", max_size=40),
    st.sampled_from(["", " ", "\x00", "+22370000001", "70000001", "ATUid_1", "*384*7472#", "1*1*Awa*2", "STOP",
                     "2017-05-03 06:04:45", "Success", "é" * 2000, "9" * 5000]),
)  # fmt: skip


@pytest.fixture
def app(database_url: str, redis) -> Flask:
    return create_app(app_settings(database_url, ussd_rate_limit=0, sms_rate_limit=0))


def refused(status: int, body: str) -> bool:
    return status >= 400 or body.startswith(REFUSALS)


def assert_sane(app: Flask, redis, path: str, before: object, response) -> None:
    body = response.get_data(as_text=True)
    assert response.status_code < 500, (path, response.status_code, body)
    assert response.mimetype == "text/plain", (path, response.status_code, body)
    if path == "/ussd" and response.status_code == 200:
        assert body.startswith(("CON ", "END ")) and body.isascii(), body
    if refused(response.status_code, body):
        assert snapshot(app, redis) == before, (path, response.status_code, body)


@pytest.mark.parametrize("path", list(ROUTES))
def test_random_forms_never_break_a_callback(app: Flask, redis, path: str) -> None:
    client = app.test_client()
    known = list(ROUTES[path])

    @FUZZ
    @given(
        keep=st.lists(st.sampled_from(known), unique=True),
        changes=st.dictionaries(st.sampled_from([*known, "extra", "text", "from"]), values, max_size=4),
    )
    def run(keep: list[str], changes: dict[str, str]) -> None:
        form = {**{k: ROUTES[path][k] for k in keep}, **changes}
        before = snapshot(app, redis)
        assert_sane(app, redis, path, before, client.post(path, data=form))

    run()


@pytest.mark.parametrize("path", list(ROUTES))
def test_random_bytes_in_any_content_type_never_break_a_callback(app: Flask, redis, path: str) -> None:
    client = app.test_client()

    @FUZZ
    @given(body=st.one_of(st.binary(max_size=600), st.binary(min_size=4000, max_size=9000)),
           content_type=st.sampled_from(CONTENT_TYPES))  # fmt: skip
    def run(body: bytes, content_type: str | None) -> None:
        before = snapshot(app, redis)
        headers = {"Content-Type": content_type} if content_type else {}
        assert_sane(app, redis, path, before, client.post(path, data=body, headers=headers))

    run()


@pytest.mark.parametrize("path", list(ROUTES))
def test_a_good_form_in_the_wrong_content_type_is_refused(app: Flask, redis, path: str) -> None:
    before = snapshot(app, redis)
    response = app.test_client().post(path, json=ROUTES[path])
    assert_sane(app, redis, path, before, response)
    assert refused(response.status_code, response.get_data(as_text=True))


answers = st.one_of(
    st.lists(st.text(alphabet="0123456789", min_size=1, max_size=3), min_size=1, max_size=12).map("*".join),
    st.text(alphabet="0123456789*# ", max_size=40),
    st.text(max_size=60),
    st.sampled_from(["1*1*Awa*2", "1*1*Awa*2*3*98*20*1*2*1", "0", "00", "99*0*0", "*", "**", "1**2"]),
)


def test_random_answers_in_well_formed_steps_always_get_a_screen(app: Flask, redis) -> None:
    """Every example reaches the conversation (the form is the gateway's own, only what the person
    typed varies), so that a crash anywhere in a step fails here, as in the stateful test: the
    tests' settings re-raise it instead of the polite END production gives."""
    client = app.test_client()

    @FUZZ
    @given(text=answers, call=st.integers(0, 3))
    def run(text: str, call: int) -> None:
        form = {**ROUTES["/ussd"], "sessionId": f"ATUid_fuzz{call}", "text": text}
        response = client.post("/ussd", data=form)
        body = response.get_data(as_text=True)
        assert response.status_code == 200, (text, response.status_code, body)
        assert body.startswith(("CON ", "END ")) and body.isascii(), (text, body)

    run()
