"""What a USSD step costs in round trips, on real services: the work the speed target depends on.

A registered returnee's dial is served from the cached profile, a registration refreshes that
cache instead of dropping it (unless something else dropped it meanwhile), steps with effects
reach the transcript through the Redis buffer, and the next step of a session starts from the
state this process saved last.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select

from app import create_app
from infra import keys
from models import UssdSession, UssdStep
from models.phone import phone_hash
from tests.conftest import PHONE_HASH_KEY, app_settings, flush_transcripts
from web.context import sira

NUMBER = "+22370000001"
DIGEST = phone_hash(NUMBER, PHONE_HASH_KEY)
PROFILE_KEY = f"ussd:profile:{DIGEST}"
REGISTRATION = ("3", "Awa", "2", "3", "1", "1", "1", "1")  # after the main menu: Register ... I agree


class Dialler:
    """The gateway's forms for one phone, through the test client."""

    def __init__(self, client: FlaskClient) -> None:
        self.client, self.session, self.history, self.dials = client, "", [], 0

    def dial(self) -> str:
        self.dials += 1
        self.session, self.history = f"ATUid_rt_{self.dials}", []
        return self._post()

    def send(self, answer: str) -> str:
        self.history.append(answer)
        return self._post()

    def _post(self) -> str:
        form = {"sessionId": self.session, "serviceCode": "*384*7472#", "phoneNumber": NUMBER,
                "networkCode": "61001", "text": "*".join(self.history)}  # fmt: skip
        response = self.client.post("/ussd", data=form)
        assert response.status_code == 200
        return response.get_data(as_text=True)

    def register(self, language: str | None = None) -> str:
        menu = self.dial()
        if language:
            menu = self.send(language)
        assert "3 S'inscrire" in menu or "3 Modifier mon inscription" in menu, menu
        for answer in REGISTRATION:
            reply = self.send(answer)
        assert "Vous etes inscrit" in reply, reply
        return reply


@pytest.fixture
def statements(app: Flask) -> Iterator[list[str]]:
    """Every SQL statement the app sends, as the database driver receives it."""
    engine = sira(app).sessions.kw["bind"]
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_a_registration_refreshes_the_cached_profile_and_the_next_dial_reads_no_database(
    client: FlaskClient, redis, statements: list[str]
) -> None:
    phone = Dialler(client)
    phone.register(language="1")  # a new phone: nothing was cached, nothing is
    assert not redis.exists(PROFILE_KEY)
    phone.register()  # its dial read the database and cached the profile; the registration refreshed it
    assert redis.exists(PROFILE_KEY)
    statements.clear()
    menu = phone.dial()
    assert menu.startswith("CON ") and "Modifier mon inscription" in menu and "Francais" not in menu
    assert statements == []


def test_a_profile_dropped_during_the_session_is_not_brought_back_by_the_registration(
    app: Flask, client: FlaskClient, redis
) -> None:
    phone = Dialler(client)
    phone.register(language="1")
    phone.dial()  # caches the profile
    for answer in REGISTRATION[:-1]:
        phone.send(answer)
    assert redis.exists(PROFILE_KEY)
    sira(app).ussd_store.forget_profile(DIGEST)  # e.g. a provider answered by SMS
    assert "Vous etes inscrit" in phone.send(REGISTRATION[-1])
    assert not redis.exists(PROFILE_KEY)  # the next dial reads the database


def test_a_step_with_effects_commits_them_with_the_session_row_and_buffers_its_transcript_line(
    client: FlaskClient, db, redis, database_url: str
) -> None:
    phone = Dialler(client)
    done = phone.register(language="1")
    session = db.scalar(select(UssdSession))  # written with the effects: it holds the origin
    assert session.session_id == phone.session and session.origin == {"language": None, "registered": False}
    assert db.scalar(select(func.count()).select_from(UssdStep)) == 0  # nothing else on the request path
    assert redis.llen(keys.STEP_BUFFER) == len(REGISTRATION) + 2
    flush_transcripts(database_url)
    db.expire_all()
    steps = db.scalars(select(UssdStep).order_by(UssdStep.seq)).all()
    assert [s.seq for s in steps] == list(range(len(REGISTRATION) + 2))
    assert steps[-1].screen == done and steps[-1].server_ms > 0
    session = db.scalar(select(UssdSession))
    assert session.language == "fr" and session.outcome is None  # the call goes on to the need


def test_the_next_step_starts_from_the_state_this_process_saved_and_a_lost_race_reads_redis(
    app: Flask, client: FlaskClient, redis
) -> None:
    store = sira(app).ussd_store
    phone = Dialler(client)
    phone.dial()
    phone.send("1")
    remembered = store.load(phone.session, DIGEST, with_resume=False)
    assert remembered.remembered and remembered.state.text == "1"
    # the state is lost: the copy can no longer be saved over it
    redis.delete(keys.ussd_session(phone.session))
    assert "Votre prenom" in phone.send("3")  # rebuilt from the gateway's history
    again = store.load(phone.session, DIGEST, with_resume=False, remembered=False)
    assert not again.remembered and again.state.text == "1*3" and again.version == "1"


def test_with_no_remembered_states_every_step_reads_redis(database_url: str, redis) -> None:
    """USSD_REMEMBERED_STATES=0 turns the per-process copy off (bench/README.md compares both)."""
    app = create_app(app_settings(database_url, ussd_remembered_states=0))
    store = sira(app).ussd_store
    phone = Dialler(app.test_client())
    phone.dial()
    assert "S'inscrire" in phone.send("1")
    loaded = store.load(phone.session, DIGEST, with_resume=False)
    assert not loaded.remembered and loaded.state.text == "1" and loaded.version == "2"
    redis.delete(keys.ussd_session(phone.session))  # nothing in memory answers for the lost state
    assert store.load(phone.session, DIGEST, with_resume=False).state is None
    assert "Votre prenom" in phone.send("3")  # rebuilt from the gateway's history, as with the copy
