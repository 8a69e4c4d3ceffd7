"""A session that ends while Redis hangs is not offered for resume once Redis is back (issue #14).

A returnee at "Send?" has a resume copy in Redis (should the call drop now). Redis hangs just as
they confirm: the step is rebuilt from the gateway's `text`, the request is committed to the
database and the END answered, and the copy, which only Redis could drop, stays.
When Redis answers again, the next dial must not offer to resume the request already sent:
saying yes would send it a second time.
"""

from __future__ import annotations

import os
import signal

import pytest
from sqlalchemy import func, select

from models import Referral
from tests.conftest import LiveServer, Phone
from tests.faults.conftest import RedisProcess, Stage
from tests.gateway_helpers import fresh_number, wait_for
from tests.journeys import code_in
from tests.test_registration_ussd import register
from web.context import sira

pytestmark = pytest.mark.faults

OFFER = "Reprendre votre demande d'aide ?"


def test_a_request_sent_while_redis_hung_is_not_offered_for_resume_when_it_is_back(
    private_redis: RedisProcess, stage: Stage, app_port: int, figures
) -> None:
    app = stage.app
    assert private_redis.process is not None
    with LiveServer(app, app_port) as server:
        phone = Phone(server.url, fresh_number())
        register(phone)
        phone.dial()
        phone.send("1")  # Ask for help
        assert "Envoyer ?" in phone.send("1")  # jobs: the resume copy holds this "Send?"

        os.kill(private_redis.process.pid, signal.SIGSTOP)  # Redis hangs as the returnee confirms
        try:
            sent = phone.send("1")
        finally:
            os.kill(private_redis.process.pid, signal.SIGCONT)
        assert sent.startswith("END ") and code_in(sent), sent
        store = sira(app).ussd_store
        wait_for(
            lambda: store.load("probe", "probe", with_resume=False, remembered=False).available, timeout=10
        )

        again = phone.dial()
        with sira(app).sessions() as session:
            referrals = session.scalar(select(func.count()).select_from(Referral))
        figures.update(
            sent_while_redis_hung=sent[:60], next_dial=again.replace("\n", " | "), referrals=referrals
        )
        assert OFFER not in again and "Demander de l'aide" in again, again
        assert referrals == 1
