"""The settings and building blocks behind the fault-tolerance paths (tests/faults/ runs them for real)."""

from __future__ import annotations

import socket
import time
from datetime import timedelta
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import OperationalError

from config import ConfigError, load_settings
from infra.connection import redis_from_url
from infra.spool import DELIVERY, INCOMING, Spool
from workers.sms import backoff


@pytest.mark.parametrize(
    "values",
    [
        {"SMS_JOB_TIMEOUT_SECONDS": "200"},  # longer than the claim lease: a live send could be taken back
        {"AT_TIMEOUT_SECONDS": "60"},  # the gateway client may outlast its job
        {"SMS_MAX_ATTEMPTS": "0"},
        {"OUTBOX_SWEEP_SECONDS": "0"},
        {"SPOOL_REPLAY_SECONDS": "-1"},
        {"DATABASE_CONNECT_TIMEOUT_SECONDS": "0"},
    ],
)
def test_unsafe_timing_settings_are_refused_at_start_up(values: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(values)
    assert any(name in str(refused.value) for name in values)


def test_backoff_follows_the_retry_schedule_then_doubles_up_to_an_hour() -> None:
    seconds = [backoff(n, (5, 30, 120, 600)).total_seconds() for n in range(1, 10)]
    assert seconds == [5, 30, 120, 600, 1200, 2400, 3600, 3600, 3600]
    assert backoff(7, (0, 0)) == timedelta(0)


def test_a_hung_redis_costs_one_time_out_then_calls_fail_at_once_for_a_moment() -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        redis = redis_from_url(f"redis://127.0.0.1:{silent.getsockname()[1]}/0", 0.3, cooldown=0.5)
        took = []
        for _ in range(3):
            started = time.perf_counter()
            with pytest.raises((RedisConnectionError, RedisTimeoutError)):
                redis.get("k")
            took.append(time.perf_counter() - started)
        time.sleep(0.6)
        started = time.perf_counter()
        with pytest.raises(RedisTimeoutError):  # tried again once the moment has passed
            redis.get("k")
        again = time.perf_counter() - started
    assert took[0] >= 0.25 and took[1] < 0.05 and took[2] < 0.05 and again >= 0.25


def test_the_spool_keeps_callbacks_sealed_and_replays_them_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", "secret-one")
    spool.append(INCOMING, {"from": "+22370000123", "text": "OK AB12C"})
    spool.append(DELIVERY, {"id": "ATXid_1", "status": "Success"})
    raw = b"".join(p.read_bytes() for p in spool.pending())
    assert b"70000123" not in raw and b"AB12C" not in raw and not list((tmp_path / "spool").glob(".*.tmp"))
    seen: list[tuple[str, dict]] = []
    result = spool.replay(lambda kind, fields: seen.append((kind, fields)))
    assert [k for k, _ in seen] == [INCOMING, DELIVERY] and seen[0][1]["from"] == "+22370000123"
    assert (result.done, result.left, result.rejected) == (2, 0, 0) and spool.pending() == []


def test_replay_stops_while_the_database_is_down_and_sets_aside_what_cannot_be_opened(tmp_path: Path) -> None:
    Spool(tmp_path, "an-old-secret").append(INCOMING, {"from": "+22370000123"})
    spool = Spool(tmp_path, "secret-one")
    spool.append(DELIVERY, {"id": "ATXid_1"})
    spool.append(DELIVERY, {"id": "ATXid_2"})

    def down(kind: str, fields: dict) -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    result = spool.replay(down)
    assert (result.done, result.left, result.rejected) == (0, 2, 1)
    assert len(spool.pending()) == 2 and len(list((tmp_path / "rejected").iterdir())) == 1


def test_a_message_spooled_over_the_rate_limit_is_stored_not_acted_on_at_replay(
    app, db, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flood that arrives while the database is down must not be answered once it is back."""
    from redis import Redis
    from rq import Queue

    from infra import queues
    from models import InboundSms, OutboundSms
    from tests.conftest import REDIS_URL, SECRET_KEY, run_worker

    monkeypatch.setenv("SPOOL_DIR", str(tmp_path))  # the worker's settings come from its environment
    spool = Spool(tmp_path, SECRET_KEY)
    message = {"id": "in-flood", "from": "+22370000123", "to": "7472", "text": "AIDE", "linkId": "",
               "date": "2026-11-29T05:00:00+00:00", "received_at": "2026-11-29T05:00:01+00:00"}  # fmt: skip
    spool.append(INCOMING, {**message, "limited": "1"})
    spool.append(INCOMING, {**message, "id": "in-calm"})
    with Redis.from_url(REDIS_URL) as redis:
        Queue(queues.DEFAULT, connection=redis).enqueue("workers.spool.replay_spool")
    run_worker(database_url)
    db.expire_all()
    handled = {m.gateway_id: m.handled_as for m in db.query(InboundSms)}
    assert handled == {"in-flood": "rate_limited", "in-calm": "help"}
    assert db.query(OutboundSms).count() == 1  # the calm one's answer only


def test_callbacks_set_aside_are_deleted_by_the_retention_purge_once_as_old_as_purged_sms(
    app, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """They hold a phone number and a message, sealed; the database keeps those 90 days only."""
    from datetime import timedelta

    from redis import Redis
    from rq import Queue

    from infra import queues
    from models.base import utcnow
    from tests.conftest import REDIS_URL, SECRET_KEY, run_worker

    monkeypatch.setenv("SPOOL_DIR", str(tmp_path))
    Spool(tmp_path, "a-secret-since-rotated").append(INCOMING, {"from": "+22370000123", "text": "AIDE"})
    spool = Spool(tmp_path, SECRET_KEY)
    assert spool.replay(lambda kind, fields: None).rejected == 1
    aside = tmp_path / "rejected"
    (aside / "kept-by-an-operator.rec").write_bytes(b"not a spooled name")

    assert spool.purge_rejected(utcnow() - timedelta(days=90)) == 0  # not old enough yet
    with Redis.from_url(REDIS_URL) as redis:
        later = (utcnow() + timedelta(days=91)).isoformat()
        job = Queue(queues.DEFAULT, connection=redis).enqueue("workers.retention.purge", later)
        run_worker(database_url)
        job.refresh()
        assert job.return_value()["rejected_callbacks"] == 1
    assert [p.name for p in aside.iterdir()] == ["kept-by-an-operator.rec"]


def test_the_spool_purge_reads_record_times_as_utc_and_takes_half_written_records_too(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta, timezone

    spool = Spool(tmp_path, "secret-one")
    aside = tmp_path / "rejected"
    aside.mkdir()
    spooled_at = datetime(2026, 3, 1, 11, 30, tzinfo=UTC)
    name = f"{spooled_at.strftime('%Y%m%dT%H%M%S%f')}-{'a' * 32}"
    (aside / f"{name}.rec").write_bytes(b"sealed")
    (tmp_path / f".{name}.tmp").write_bytes(b"half a record, left by a crash")

    noon_at_utc_plus_one = datetime(2026, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=1)))  # 11:00 UTC
    assert spool.purge_rejected(noon_at_utc_plus_one) == 0
    assert spool.purge_rejected(spooled_at + timedelta(seconds=1)) == 2
    assert list(aside.iterdir()) == [] and list(tmp_path.glob(".*.tmp")) == []
    assert spool.purge_rejected(spooled_at + timedelta(days=1)) == 0


def test_sms_retry_intervals_are_read_once_into_seconds() -> None:
    """The variable keeps its comma-separated format; every use site gets the numbers."""
    assert load_settings({"SMS_RETRY_INTERVALS": "1, 2,30"}).sms_retry_intervals == (1, 2, 30)
    assert load_settings({}).sms_retry_intervals == (5, 30, 120, 600)
    with pytest.raises(
        ConfigError, match=r"^SMS_RETRY_INTERVALS must be comma-separated seconds, e\.g\. 5,30,120,600$"
    ):
        load_settings({"SMS_RETRY_INTERVALS": "5,30,soon"})


def test_lists_read_from_text_are_parsed_once_per_settings() -> None:
    """A callback's secrets and networks, the exempt numbers: parsed at start-up, not per request."""
    s = load_settings(
        {"CALLBACK_SECRET": "a,b", "CALLBACK_ALLOWED_NETWORKS": "10.0.0.0/8", "ENV": "development"}
    )
    for name in (
        "callback_secrets",
        "callback_networks",
        "rate_limit_exempt",
        "simulator_prefixes",
        "smpp_links",
    ):
        assert getattr(s, name) is getattr(s, name), name
    assert s.callback_secrets == ("a", "b")
