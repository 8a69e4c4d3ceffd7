"""Stateful property tests: random conversations through the USSD webhook, and the referral
lifecycle against a model of its allowed moves, on both databases and real Redis.

After every USSD step: the reply is `CON `/`END `, fits one screen (160 characters after the
prefix, as tests/test_catalogs_and_screens.py checks for every screen), is plain ASCII; no open
referral belongs to someone without consent; at most one open referral per need and returnee;
and no first name typed earlier is ever shown again. The conversation never shows a registered
first name on any screen (not even on "My data"), so that last check has no exception.
"""

from __future__ import annotations

import uuid

import pytest
from flask import Flask
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from redis import Redis
from sqlalchemy import ColumnElement, and_, delete, func, or_, select
from sqlalchemy.exc import IntegrityError

import models
from flows.i18n import LANGUAGES, Catalogs
from flows.text import to_ussd
from models import Referral, ReferralEvent, Returnee
from models.directory import Category, Provider
from models.referral import IllegalTransition, Status
from tests.conftest import app_settings
from tests.journeys import app_with_directory
from web.context import sira

CATALOGS = Catalogs.load()

PHONES = ("+22370000101", "+22370000102")
NAMES = ("Zanmba", "Kadidiatou", "Safiatou")
ANSWERS = st.one_of(
    st.sampled_from(["1"] * 8 + ["2", "3", "4", "5", "9", "0", "00", "98", "99", "", " ", "1*1", "**"]),
    st.sampled_from(NAMES),
    st.text(alphabet="abc*#1", min_size=1, max_size=6),  # free text with `*` splits into several inputs
)
NAME_PROMPTS = {to_ussd(CATALOGS.gettext(lang, "Your first name?")) for lang in LANGUAGES}
# The oracle, from the brief (PRODUCT.md, "Referrals"), not from the code under test: a referral
# goes new -> sent -> accepted -> closed; a sent one may be declined or expire (no answer in
# time), and either is re-routed (sent to the next provider); any referral not yet closed may be
# cancelled; closed and cancelled are final.
MOVES: dict[str, set[str]] = {
    "new": {"sent", "cancelled"},
    "sent": {"accepted", "declined", "expired", "cancelled"},
    "accepted": {"closed", "cancelled"},
    "declined": {"sent", "cancelled"},
    "expired": {"sent", "cancelled"},
    "closed": set(),
    "cancelled": set(),
}
# Open (one per need and returnee, and never without consent): in a provider's hands, or declined
# or expired with no provider left, waiting at the coordination desk.
IN_HAND, AT_THE_DESK = {"new", "sent", "accepted"}, {"declined", "expired"}


def is_open(status: str, provider_id: int | None) -> bool:
    return status in IN_HAND or (status in AT_THE_DESK and provider_id is None)


def open_referrals() -> ColumnElement[bool]:
    """The same rule as `is_open`, as SQL, for the invariants."""
    return or_(
        Referral.status.in_(sorted(IN_HAND)),
        and_(Referral.status.in_(sorted(AT_THE_DESK)), Referral.provider_id.is_(None)),
    )


PEOPLE_TABLES = ("referral_event", "outbound_sms", "referral", "consent_record", "returnee", "inbound_sms",
                 "ussd_step", "ussd_session")  # fmt: skip


@pytest.fixture
def seeded(database_url: str, redis: Redis) -> Flask:
    return app_with_directory(app_settings(database_url, ussd_rate_limit=0))


class Conversations(RuleBasedStateMachine):
    """Several phones dialling, answering at random, retrying and hanging up."""

    app: Flask

    def __init__(self) -> None:
        super().__init__()
        tables = models.Base.metadata.tables
        with sira(self.app).sessions() as s:
            for name in PEOPLE_TABLES:
                s.execute(delete(tables[name]))
            s.commit()
        sira(self.app).redis.flushdb()
        self.client = self.app.test_client()
        self.open: dict[str, tuple[str, list[str]]] = {}  # phone -> (session id, inputs)
        self.typed: dict[str, set[str]] = {}  # session id -> names typed in it
        self.reply = ""
        self.session = ""

    def post(self, phone: str) -> None:
        session_id, inputs = self.open[phone]
        form = {"sessionId": session_id, "serviceCode": "*384*7472#", "phoneNumber": phone,
                "networkCode": "61001", "text": "*".join(inputs)}  # fmt: skip
        response = self.client.post("/ussd", data=form)
        assert response.status_code == 200, response.get_data(as_text=True)
        self.reply, self.session = response.get_data(as_text=True), session_id
        self.check_reply()
        if self.reply.startswith("END "):
            del self.open[phone]

    @rule(phone=st.sampled_from(PHONES))
    def dial(self, phone: str) -> None:
        session_id = f"ATUid_{uuid.uuid4().hex}"
        self.open[phone] = (session_id, [])
        self.typed[session_id] = set()
        self.post(phone)

    @precondition(lambda self: self.open)
    @rule(data=st.data(), answer=ANSWERS)
    def answer(self, data: st.DataObject, answer: str) -> None:
        phone = data.draw(st.sampled_from(sorted(self.open)))
        session_id, inputs = self.open[phone]
        inputs.append(answer)
        self.typed[session_id] |= {n for n in NAMES if n in answer}
        self.post(phone)

    @precondition(lambda self: self.open)
    @rule(data=st.data(), steps=st.integers(1, 12))
    def go_forward(self, data: st.DataObject, steps: int) -> None:
        """Mostly the first option, a name when asked for one: registrations and referrals happen."""
        phone = data.draw(st.sampled_from(sorted(self.open)))
        for _ in range(steps):
            if phone not in self.open:
                return
            session_id, inputs = self.open[phone]
            asks_name = self.reply[4:].split("\n")[0] in NAME_PROMPTS
            answer = data.draw(st.sampled_from(NAMES) if asks_name else st.sampled_from(["1", "1", "1", "2"]))
            inputs.append(answer)
            self.typed[session_id] |= {n for n in NAMES if n in answer}
            self.post(phone)

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def gateway_retries(self, data: st.DataObject) -> None:
        """The gateway sends the same request again: the same screen comes back."""
        phone = data.draw(st.sampled_from(sorted(self.open)))
        session_id, inputs = self.open[phone]
        self.post(phone)
        first = self.reply
        self.open.setdefault(phone, (session_id, inputs))
        self.post(phone)
        assert self.reply == first

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def hang_up(self, data: st.DataObject) -> None:
        del self.open[data.draw(st.sampled_from(sorted(self.open)))]

    def check_reply(self) -> None:
        """Every reply fits a screen in plain letters and shows no name typed in another session."""
        assert self.reply.startswith(("CON ", "END ")), self.reply
        assert len(self.reply) - 4 <= 160, self.reply
        assert self.reply.isascii(), self.reply
        earlier = set().union(*(names for sid, names in self.typed.items() if sid != self.session))
        assert not any(name.lower() in self.reply.lower() for name in earlier), self.reply

    @invariant()
    def referrals_need_consent_and_are_one_per_need(self) -> None:
        with sira(self.app).sessions() as s:
            without_consent = s.scalar(
                select(func.count())
                .select_from(Referral)
                .join(Returnee, Returnee.id == Referral.returnee_id)
                .where(open_referrals(), Returnee.consent_version.is_(None))
            )
            assert without_consent == 0
            doubles = s.execute(
                select(Referral.returnee_id, Referral.requested_category)
                .where(open_referrals())
                .group_by(Referral.returnee_id, Referral.requested_category)
                .having(func.count() > 1)
            ).all()
            assert doubles == []


def test_random_conversations_keep_every_promise(seeded: Flask) -> None:
    Conversations.app = seeded
    run_state_machine_as_test(
        Conversations,
        settings=settings(max_examples=20, stateful_step_count=30, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]),
    )  # fmt: skip


class Lifecycle(RuleBasedStateMachine):
    """One need of one returnee: its referral moves at random; the model says what is allowed."""

    app: Flask

    def __init__(self) -> None:
        super().__init__()
        self.s = sira(self.app).sessions()
        self.s.execute(delete(ReferralEvent))
        self.s.execute(delete(Referral))
        self.s.commit()
        self.returnee_id = self.s.scalar(select(Returnee.id))
        self.provider_id = self.s.scalar(select(Provider.id))
        self.referral = self.new_referral()
        self.model = "new"
        self.provider: int | None = self.provider_id
        self.moves: list[tuple[str, str]] = []

    def new_referral(self) -> Referral:
        row = Referral(code=uuid.uuid4().hex[:8], returnee_id=self.returnee_id, category="jobs",
                       requested_category="jobs", status=Status.NEW, provider_id=self.provider_id)  # fmt: skip
        self.s.add(row)
        self.s.commit()
        return row

    def model_open(self) -> bool:
        return is_open(self.model, self.provider)

    @rule(to=st.sampled_from(sorted(MOVES)))
    def move(self, to: str) -> None:
        if to in MOVES[self.model]:
            self.referral.move(Status(to), actor="test", channel="web")
            self.s.commit()
            self.moves.append((self.model, to))
            self.model = to
        else:
            with pytest.raises(IllegalTransition):
                self.referral.move(Status(to), actor="test", channel="web")
            self.s.commit()

    @rule(assigned=st.booleans())
    def assign(self, assigned: bool) -> None:
        """A coordinator assigns a provider, or the referral waits at the desk without one."""
        self.provider = self.provider_id if assigned else None
        self.referral.provider_id = self.provider
        self.s.commit()

    @rule()
    def ask_again_for_the_same_need(self) -> None:
        """The database allows a second referral for the need only once the first is not open."""
        try:
            self.new_referral()
        except IntegrityError:
            self.s.rollback()
            assert self.model_open()
        else:
            assert not self.model_open()
            self.s.execute(delete(Referral).where(Referral.id != self.referral.id))
            self.s.commit()

    @invariant()
    def the_database_agrees_with_the_model(self) -> None:
        self.s.expire_all()
        row = self.s.get(Referral, self.referral.id)
        assert row.status == self.model and row.is_open == self.model_open()
        events = [(e.from_status, e.to_status) for e in row.events]
        assert events == self.moves

    def teardown(self) -> None:
        self.s.close()


def test_the_referral_lifecycle_follows_its_table(app: Flask) -> None:
    assert {s.value for s in Status} == set(MOVES)  # a status the brief does not know needs a decision
    with sira(app).sessions() as s:
        s.add(Category(code="jobs", name="Jobs", sms_label="emploi"))
        s.add(Provider(slug="apej", name="APEJ", kind="public"))
        s.add(Returnee(phone_hash="h", consent_version="consent-v1"))
        s.commit()
    Lifecycle.app = app
    run_state_machine_as_test(
        Lifecycle,
        settings=settings(max_examples=40, stateful_step_count=25, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture]),
    )  # fmt: skip
