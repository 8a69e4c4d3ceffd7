"""An erasure outlives Redis: killed while the erased person's session is open, then back empty.

The gateway's `text` still holds the first name typed before the erasure; with no state and no
tombstone left in Redis, only the database's record of the erasure stops that session from being
rebuilt and registered again. Once Redis came back empty, another session's id (whose steps
during the outage went to the database) stays its phone's.
"""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import func, select

from models import Returnee
from tests.conftest import LiveServer, Phone
from tests.faults.conftest import RedisProcess, Stage
from tests.gateway_helpers import EmulatorProcess, fresh_number
from tests.test_erasure_open_sessions import erase_on_the_admin, half_registered
from web.context import sira

pytestmark = pytest.mark.faults


def test_an_erasure_holds_while_redis_is_down_and_after_it_restarts_empty(
    private_redis: RedisProcess, gateway: EmulatorProcess, stage: Stage, app_port: int, figures
) -> None:
    app = stage.app
    with LiveServer(app, app_port) as server:
        phone = half_registered(server)
        bystander = Phone(server.url, number=fresh_number())
        bystander.dial()
        with sira(app).sessions() as db:
            erase_on_the_admin(app, db)
        private_redis.stop()
        while_down = phone.send("2")
        bystander_while_down = bystander.send("1")
        private_redis.start()  # empty: the session's state and the tombstone are gone
        after_restart = phone.send("3")
        retried = phone.repeat()
        other = requests.post(
            server.url + "/ussd",
            data={"sessionId": bystander.session_id, "serviceCode": phone.service_code,
                  "phoneNumber": "+22370000198", "networkCode": "61001", "text": ""},
            timeout=10,
        )  # fmt: skip
    with sira(app).sessions() as db:
        returnees = db.scalar(select(func.count()).select_from(Returnee))
    figures.update(
        while_redis_down=while_down,
        bystander_while_redis_down=bystander_while_down,
        after_restart=after_restart,
        gateway_retry=retried,
        other_phone_same_session_id=(other.status_code, other.text),
        returnees_registered=returnees,
    )
    for reply in (while_down, after_restart, retried):
        assert reply.startswith("END ") and "effacees" in reply, figures
    assert (other.status_code, other.text) == (400, "sessionId belongs to another phoneNumber"), figures
    assert bystander_while_down.startswith("CON "), figures
    assert returnees == 1, figures  # the bystander's, from its language; none for the erased phone
