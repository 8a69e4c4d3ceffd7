"""Callbacks replayed from the spool forget in Redis what the webhook would have forgotten."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from sqlalchemy import select

from infra import keys, queues
from infra.spool import INCOMING, Spool
from models import OutboundSms, Returnee
from models.phone import phone_hash
from tests.conftest import PHONE_HASH_KEY, SECRET_KEY, run_worker

NUMBER = "+22370000123"
DIGEST = phone_hash(NUMBER, PHONE_HASH_KEY)


def replay(redis: Redis, database_url: str, spool: Spool, text: str, gateway_id: str) -> None:
    message = {"id": gateway_id, "from": NUMBER, "to": "7472", "text": text, "linkId": "",
               "date": "2026-11-29T05:00:00+00:00", "received_at": "2026-11-29T05:00:01+00:00"}  # fmt: skip
    spool.append(INCOMING, message)
    Queue(queues.DEFAULT, connection=redis).enqueue("workers.spool.replay_spool")
    run_worker(database_url)


def test_a_replayed_sms_drops_the_cached_profile_and_a_replayed_erasure_leaves_a_tombstone(
    app, db, redis: Redis, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPOOL_DIR", str(tmp_path))  # the worker's settings come from its environment
    spool = Spool(tmp_path, SECRET_KEY)
    db.add(Returnee(phone_hash=DIGEST, phone_e164=NUMBER, language="fr", first_name="Awa"))  # data to erase
    db.commit()
    redis.set(keys.ussd_profile(DIGEST), b"sealed profile")
    replay(redis, database_url, spool, "SUPPRIMER", "in-1")
    assert not redis.exists(
        keys.ussd_profile(DIGEST)
    )  # the returnee changed: their next dial reads the database

    redis.set(keys.ussd_profile(DIGEST), b"sealed profile")
    redis.set(keys.ussd_resume(DIGEST), b"sealed state")
    [pin_sms] = db.scalars(select(OutboundSms)).all()
    pin = next(word for word in pin_sms.body.split() if word.isdigit() and len(word) == 6)
    replay(redis, database_url, spool, f"SUPPRIMER {pin}", "in-2")
    db.expire_all()
    assert db.scalar(select(Returnee)) is None
    assert not redis.exists(keys.ussd_profile(DIGEST), keys.ussd_resume(DIGEST))
    assert redis.get(keys.ussd_erased(DIGEST)) is not None  # its open sessions go at their next step
