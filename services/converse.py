"""One USSD step, whatever transport brought it: a neutral `UssdStep` in, a `UssdReply` out.

Every rule of a USSD conversation lives here once, for Africa's Talking's webhook and the SMPP
connector alike: the session belongs to the phone that opened it, the rate limit, erasure of a
phone whose session is open, resume, repeats and racing requests, the transcript, and saving the
state only once what the step did is committed. A transport only parses and renders.

The request path is short on purpose: read the session from Redis, run the pure engine, commit
the effects if the step has any, then claim the new state and buffer the step's transcript line
in one Redis call. The database session is opened only by a step that needs it (effects, a phone
whose profile is not cached, Redis down, a journey to resume whose call may have ended), and
closed when the step ends.

Transports differ in what they send: Africa's Talking sends the whole history (`1*2*Awa`) with
every request, so a session whose state Redis lost is rebuilt from it; an SMPP gateway sends only
the newest input. Such a step is made cumulative from the saved state; when that state cannot be
read (Redis down or flushed) nothing can rebuild the session, so the step ends it politely and
changes nothing: the returnee dials again, and a new session starts from what the database knows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import TypeGuard

from sqlalchemy import Engine as DatabaseEngine
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from config import Settings
from flows.effects import SaveRegistration
from flows.engine import Engine, Facts, KeepMissing, Reply, State, StepResult
from flows.i18n import DEFAULT_LANGUAGE, _
from flows.sms import SmsTexts
from flows.text import to_ussd
from gateway.ussd import StepRefused, UssdReply, UssdStep
from infra.metrics import observe_step
from infra.queues import Outbox
from infra.ratelimit import RateLimit
from infra.sealing import Sealer
from infra.ussd_store import DROP, REFRESH, Loaded, UssdStore
from models import UssdSession
from models import UssdStep as StepRow
from models.base import as_utc, utcnow
from models.db import autocommit_engine, insert_ignore
from models.phone import phone_hash
from services import phone_profile
from services.effects import Performed, perform, register_at_once
from services.erasure import erased_since
from services.referrals import NotReferable
from services.transcripts import step_record

log = logging.getLogger(__name__)

UNAVAILABLE = _("Service unavailable. Please try again later.")
REGISTER_FIRST = _("Please register first: dial again and choose Register.")
SLOW_DOWN = _("Too many requests from your number. Please wait a few minutes and dial again.")
ERASED = _("Your data has been erased.")
MAX_RACES = 3


class _Database:
    """The step's database session, opened on first use: most steps need none."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._session: Session | None = None

    def __call__(self) -> Session:
        if self._session is None:
            self._session = self._sessions()
        return self._session

    def rollback(self) -> None:
        if self._session is not None:
            self._session.rollback()

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


@dataclass(frozen=True)
class Converse:
    """What a step needs from the app, gathered once; calling it runs one step."""

    settings: Settings
    engine: Engine
    store: UssdStore[State]
    step_sealer: Sealer
    outbox: Outbox
    texts: SmsTexts
    limit: RateLimit
    sessions: sessionmaker[Session]

    def __call__(self, step: UssdStep) -> UssdReply:
        """Run `step`; every failure but a refused step is a polite END, never a gateway error.

        Raises `StepRefused` for a step that must touch nothing (another phone's session id).
        """
        started = time.perf_counter()
        digest = phone_hash(step.phone, self.settings.phone_hash_key)
        db = _Database(self.sessions)
        run = _Step(self, step, digest, started, db)
        outcome = "unavailable"
        try:
            reply = run.run()
            outcome = "end" if reply.end else "continue"
        except StepRefused:
            outcome = "refused"
            raise
        except SQLAlchemyError:
            db.rollback()
            log.exception("database unavailable during a USSD step")
            reply = self.polite(UNAVAILABLE)
        except Exception:  # a returnee must get a polite END, never a gateway error
            db.rollback()
            if self.settings.raise_step_errors:  # under test, a crash inside a step fails the test
                raise
            log.exception("unexpected failure during a USSD step")
            reply = self.polite(UNAVAILABLE)
        finally:
            db.close()
            observe_step(step.transport, outcome, run.screen, time.perf_counter() - started)
        return UssdReply(reply.text, reply.end)

    @cached_property
    def registers_at_once(self) -> bool:
        """Whether a registration step can be one statement (data-modifying CTEs: PostgreSQL)."""
        return self.sessions.kw["bind"].dialect.name == "postgresql"

    @cached_property
    def autocommit(self) -> DatabaseEngine:
        """The same pool, each statement its own transaction: no BEGIN and COMMIT round trips."""
        return autocommit_engine(self.sessions)

    def polite(self, msgid: str, language: str | None = None) -> Reply:
        """An END in the session's language if known, else the default one."""
        return Reply(to_ussd(self.engine.catalogs.gettext(language or DEFAULT_LANGUAGE, msgid)), end=True)


def wire(reply: Reply | UssdReply) -> str:
    """A screen as the transcript keeps it, whatever the transport: `CON ` or `END ` and the text."""
    return ("END " if reply.end else "CON ") + reply.text


class _Step:
    """One step's run: the conversation's data and this request's, so helpers take few arguments."""

    def __init__(self, hook: Converse, step: UssdStep, digest: str, started: float, db: _Database) -> None:
        self.hook, self.step, self.digest, self.started, self.db = hook, step, digest, started, db
        self.screen: str | None = None  # where the engine left the session, for the funnel

    def run(self) -> Reply:
        """Run the step; the state is saved only once what the step did is committed.

        A step with effects (registration, a referral) commits them first and then saves the final
        screen, so that a gateway retry never sees a screen whose effects are not in the database.
        The effects are idempotent, so a retry racing the first request does no harm. Every step
        is logged through the transcript buffer, in the same Redis call that saves the state; the
        database only when that call did not save it.
        """
        hook, step = self.hook, self.step
        engine, store, session_id = hook.engine, hook.store, step.session_id
        races, remembered = 0, True
        fresh = self._fresh()
        while races < MAX_RACES:
            loaded = store.load(session_id, self.digest, with_resume=fresh, remembered=remembered,
                                limit=hook.limit)  # fmt: skip
            if loaded.foreign:  # a gateway fault, or a forged request: either way, touch nothing
                raise StepRefused("sessionId belongs to another phoneNumber")
            if loaded.erased is not None:
                return hook.polite(ERASED, loaded.erased)
            if loaded.limited:
                log.info("USSD step refused: the phone is over its rate limit")
                return hook.polite(SLOW_DOWN, loaded.state.language if loaded.state else None)
            text = self._history(loaded.state)
            if text is None:  # only the newest input, and no state to add it to: nothing to rebuild
                log.info("USSD step ended: the session's state is lost and the transport sends no history")
                return hook.polite(UNAVAILABLE)
            if loaded.state is None and self._orphaned(loaded, text):
                log.info("USSD step ended: its state is lost and its phone was erased since it began")
                return hook.polite(ERASED)
            if not step.cumulative and loaded.state is not None and self._repeated(loaded.state):
                return Reply(loaded.state.reply, loaded.state.ended)
            result = engine.feed(loaded.state or self._start(loaded, text), text)
            if not result.advanced:  # a repeat, or a late request of an ended call: no new visit
                return result.reply
            self.screen = result.state.screen
            state = result.state
            state.step_id = step.step_id
            state.session_id = session_id
            if result.effects and loaded.remembered:
                remembered = False  # effects are performed from the state in Redis, never from a copy
                continue
            first = loaded.state is None
            if result.effects:
                return self._with_effects(loaded, state, result, first)
            buffered = self._buffered(state, result.reply, first)
            profile = _profile_to_cache(loaded, state)
            won = (
                store.save(
                    session_id, self.digest, loaded.version, state, buffered, profile, limit=hook.limit
                )
                if loaded.available
                else None
            )
            if won is False:
                races += 1
                continue  # another request advanced the session first: read it again
            if won is None and loaded.remembered:  # a copy Redis cannot confirm is not answered from
                remembered = False
                continue
            if won is None:  # Redis is down: the transcript line goes to the database instead
                self._log_step(state, result.reply)
            return result.reply
        log.warning("a USSD session lost %d races in a row", MAX_RACES)
        latest = store.load(session_id, self.digest, with_resume=False, remembered=False).state
        return Reply(latest.reply, latest.ended) if latest else hook.polite(UNAVAILABLE)

    def _fresh(self) -> bool:
        """A dial (no answer yet): the phone's suspended session and profile are read with it."""
        return not self.step.text if self.step.cumulative else self.step.dialled

    def _history(self, state: State | None) -> str | None:
        """The session's inputs so far, `*`-joined, as the engine reads them; None if unknowable."""
        step = self.step
        if step.cumulative:
            return step.text
        if step.dialled:
            return step.text  # empty, or a dial-through's answers
        if state is None:
            return None
        return f"{state.text}*{step.text}" if state.text else step.text

    def _orphaned(self, loaded: Loaded[State], text: str) -> bool:
        """Redis holds no state for the session: the database says what Redis may have forgotten.

        Asked when the gateway sends answers (a state lost: Redis down, restarted or flushed; or
        a dial-through), or when Redis's memory is younger than a session. The session's row binds
        its id to the phone that opened it: another phone's request is refused. A session rebuilt
        from `text` whose phone was erased since it began (no row of it begun after the erasure)
        is the erased person's: it ends.
        """
        if not text and not loaded.amnesic and loaded.available:
            return False  # a dial, Redis remembers: no session of this id was lost
        session = self.db()
        row = session.execute(
            select(UssdSession.phone_hash, UssdSession.started_at).where(
                UssdSession.session_id == self.step.session_id
            )
        ).first()
        if row is not None and row.phone_hash != self.digest:
            raise StepRefused("sessionId belongs to another phoneNumber")
        if not text:
            return False
        window = timedelta(seconds=self.hook.settings.ussd_session_ttl_seconds)
        erased = erased_since(session, self.digest, utcnow() - window)
        return erased is not None and (row is None or as_utc(row.started_at) <= erased)

    def _repeated(self, state: State) -> bool:
        """The transport delivered this very request again: answer what it was answered."""
        return bool(self.step.step_id) and state.step_id == self.step.step_id and bool(state.reply)

    def _with_effects(self, loaded: Loaded[State], state: State, result: StepResult, first: bool) -> Reply:
        hook, engine = self.hook, self.hook.engine
        try:
            reply, done = self._commit_effects(result)
        except NotReferable as exc:  # no consent on record: nothing may be shared
            self.db.rollback()
            log.info("USSD referral refused: %s", exc)
            return Reply(to_ussd(engine.catalogs.gettext(state.language, REGISTER_FIRST)), end=True)
        state.reply = reply.text
        if "registered" in done.profile_changes:  # the rest of this session knows it too
            state.facts.registered = bool(done.profile_changes["registered"])
        buffered = self._buffered(state, reply, first)
        profile, mode = _profile_after(state, done, len(result.effects))
        store, session_id = hook.store, self.step.session_id
        saved = (
            store.save(session_id, self.digest, loaded.version, state, buffered, profile, mode, hook.limit)
            if loaded.available
            else None
        )
        if not saved:  # lost a race, or Redis is down: the step is logged all the same
            self._log_step(state, reply)
        return reply

    def _commit_effects(self, result: StepResult) -> tuple[Reply, Performed]:
        """Perform the effects, with the session's row, in one transaction; then queue their SMS.

        The session's row goes with the effects because it holds what was known when the session
        began: a session whose state is lost is replayed from there, not from what it changed. A
        step whose one effect is a registration does it all in one statement on PostgreSQL.
        """
        hook = self.hook
        done = Performed(self.digest, self.step.phone, hook.texts, hook.settings.phone_hash_key)
        if hook.registers_at_once and _only_registration(result.effects):
            with hook.autocommit.connect() as connection:
                register_at_once(
                    connection, result.effects[0], done, self._session_row(result.state, utcnow())
                )
        else:
            session = self.db()
            for effect in result.effects:
                perform(effect, session, done)
            insert_ignore(session, UssdSession, **self._session_row(result.state, utcnow()))
            hook.outbox.send_after_commit(session, done.sms_ids)
        if done.touched:
            hook.store.forget_profile(*done.touched)
        reply = result.reply
        if done.params:
            reply = Reply(reply.text.format_map(KeepMissing(done.params)), reply.end)
        return reply, done

    def _buffered(self, state: State, reply: Reply, first: bool) -> bytes:
        """The step, sealed, for the transcript buffer written in the same Redis call as the state."""
        at = utcnow().isoformat()
        record = step_record(
            self.step.session_id, state.inputs, self._last_input(), wire(reply),
            self._elapsed_ms(), at, state.screen if state.ended else None,
            self._session_row(state, at) if first else None,
            state.answers.get("language") if state.ended else None,
        )  # fmt: skip
        return self.hook.step_sealer.seal(record)

    def _elapsed_ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 2)

    def _last_input(self) -> str:
        text = self.step.text
        if not self.step.cumulative:
            return text[:200]
        return text.rsplit("*", 1)[-1][:200] if text else ""

    def _start(self, loaded: Loaded[State], text: str) -> State:
        """A new session: what is known of this phone decides the first screen.

        A session whose state was lost (Redis down or flushed) is rebuilt from the gateway's
        history, so it must start from what was known when it began, not from what its own steps
        changed: the session row keeps that origin from the first step that changed anything.
        """
        engine = self.hook.engine
        if text and self.step.cumulative:  # no state but inputs: a dial-through, or a lost state
            origin = self.db().scalar(
                select(UssdSession.origin).where(
                    UssdSession.session_id == self.step.session_id, UssdSession.phone_hash == self.digest
                )
            )
            if origin is not None:
                profile = loaded.profile or self._profile()
                facts = Facts.of(profile)
                facts.registered = bool(origin.get("registered"))
                return engine.start(facts, origin.get("language"))
        profile = loaded.profile or self._profile()
        facts, language = (Facts.of(profile), profile["language"]) if profile else (Facts(), None)
        state = engine.start(facts, language, loaded.suspended)
        if state.suspended is not None and self._ended(loaded.suspended):
            # Offered only now that the engine would offer it: its END was answered while Redis
            # could not drop the copy (one query, on a dial that has a journey to resume).
            state = engine.start(facts, language)
        return state

    def _ended(self, suspended: State) -> bool:
        """Whether the call a resume copy was taken from has ended since: a step that ends a call
        with Redis unreachable (rebuilt from the gateway's `text`) commits its END to the database
        and cannot drop the copy, which a finished journey must never be offered from.
        """
        if not suspended.session_id:
            return False
        ended_at = self.db().scalar(
            select(UssdSession.ended_at).where(
                UssdSession.session_id == suspended.session_id, UssdSession.phone_hash == self.digest
            )
        )
        return ended_at is not None

    def _profile(self) -> dict | None:
        """What a dial needs to know of a phone, from the database (then cached with the state)."""
        return phone_profile.read(self.db(), self.digest)

    def _session_row(self, state: State, at: str | datetime) -> dict[str, object]:
        """The session's row: who (hashed), where from, and what was known when it began."""
        step = self.step
        return {
            "session_id": step.session_id,
            "phone_hash": self.digest,
            "service_code": step.service_code,
            "network_code": step.network or None,
            "language": state.answers.get("language"),
            "origin": {
                "language": state.origin[1] if state.origin else None,
                "registered": state.facts.registered,
            },
            "started_at": at,
        }

    def _log_step(self, state: State, reply: Reply) -> None:
        """Write the step to the database directly, when the buffer could not take it."""
        session, session_id, now = self.db(), self.step.session_id, utcnow()
        insert_ignore(session, UssdSession, **self._session_row(state, now))
        insert_ignore(
            session,
            StepRow,
            session_id=session_id,
            seq=state.inputs,
            user_input=self._last_input(),
            screen=wire(reply),
            server_ms=self._elapsed_ms(),
            at=now,
        )
        if state.ended:
            session.execute(
                update(UssdSession)
                .where(UssdSession.session_id == session_id)
                .values(outcome=state.screen, ended_at=now, language=state.answers.get("language"))
            )
        session.commit()


def _only_registration(effects: Sequence[object]) -> TypeGuard[Sequence[SaveRegistration]]:
    return len(effects) == 1 and isinstance(effects[0], SaveRegistration)


def _profile_to_cache(loaded: Loaded[State], state: State) -> dict | None:
    """On a fresh dial read from the database, cache what was read (unless this step changes it)."""
    if loaded.state is not None or loaded.profile is not None or not state.origin or not state.origin[1]:
        return None
    if state.facts.provider:  # its open referrals change with every assignment: read at each dial
        return None
    return {"language": state.origin[1], "registered": state.facts.registered,
            "referrals": state.facts.referrals}  # fmt: skip


def _profile_after(state: State, done: Performed, effects: int) -> tuple[dict | None, str]:
    """After effects: the cached profile as they left it, when every one of them says how."""
    if effects == 0 or done.mirrored < effects:
        return None, DROP
    profile = {"language": state.language, "registered": state.facts.registered,
               "referrals": state.facts.referrals, **done.profile_changes}  # fmt: skip
    return profile, REFRESH
