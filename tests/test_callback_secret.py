"""Gateway callbacks behind a secret first path segment (two valid during a rotation)."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from app import create_app
from config import ConfigError, load_settings
from infra.keys import STEP_BUFFER
from models import InboundSms, UssdSession
from tests.conftest import app_settings

OLD, NEW = "old-secret-" + "a" * 32, "new-secret-" + "b" * 32
USSD = {"sessionId": "ATUid_1", "serviceCode": "*384*7472#", "phoneNumber": "+22370000001", "text": ""}
SMS = {"from": "+22370000001", "to": "7472", "text": "AIDE", "date": "2017-05-03 06:04:45", "id": "in-1"}


@pytest.fixture
def client(database_url: str, redis):
    return create_app(app_settings(database_url, callback_secret=f"{OLD},{NEW}")).test_client()


@pytest.mark.parametrize("secret", [OLD, NEW])
def test_both_secrets_of_a_rotation_are_served(client, secret: str) -> None:
    assert client.post(f"/{secret}/ussd", data=USSD).get_data(as_text=True).startswith("CON ")
    assert client.post(f"/{secret}/sms/incoming", data=SMS).status_code == 200


@pytest.mark.parametrize("path", ["/ussd", "/wrong/ussd", f"/{OLD[:-1]}/ussd", "/sms/incoming", "/x/sms/incoming",
                                  "/sms/delivery", "/ussd/events"])  # fmt: skip
def test_a_wrong_or_missing_secret_is_a_404_that_writes_nothing(client, db, redis, path: str, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    form = SMS if "sms" in path else USSD
    assert client.post(path, data=form).status_code == 404
    assert db.scalar(select(func.count()).select_from(UssdSession)) == 0
    assert db.scalar(select(func.count()).select_from(InboundSms)) == 0
    assert redis.llen(STEP_BUFFER) == 0


def test_the_secret_never_reaches_the_logs(client, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    client.post(f"/{OLD}/ussd", data=USSD)
    client.post(f"/{OLD}/sms/incoming", data=SMS)
    assert OLD not in "\n".join(r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("value", ["", "short", f"{OLD},short"])
def test_production_refuses_to_start_without_long_secrets(value: str) -> None:
    env = {"ENV": "production", "SECRET_KEY": "s" * 40, "PHONE_HASH_KEY": "p" * 40, "CALLBACK_SECRET": value}
    with pytest.raises(ConfigError, match="CALLBACK_SECRET"):
        load_settings(env)
