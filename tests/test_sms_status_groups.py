"""Which outgoing SMS are still to send is one rule on the status enum: the Python and the SQL the
sweeper, the send job, the retention purge and the erasure use agree with the brief's reading."""

from __future__ import annotations

from sqlalchemy import select

from models import OutboundSms
from models.messaging import SmsStatus

# From the brief, not from the code: a job may take a message waiting or held by the gateway's
# account; one a job holds is still to send too; accepted, failed and dead ones are not.
CLAIMABLE = {"pending", "held"}
STILL_TO_SEND = {"pending", "held", "sending"}


def test_python_groups_follow_the_brief() -> None:
    assert {s.value for s in SmsStatus if s.is_still_to_send()} == STILL_TO_SEND


def test_sql_clauses_select_the_same_rows_as_the_python(db) -> None:
    for status in SmsStatus:
        db.add(
            OutboundSms(
                to_e164="+22370000101", to_hash=f"h-{status}", body="x", purpose="test", status=status
            )
        )
    db.commit()
    claimable = set(db.scalars(select(OutboundSms.status).where(SmsStatus.to_send_clause())))
    still = set(db.scalars(select(OutboundSms.status).where(SmsStatus.still_to_send_clause())))
    assert (claimable, still) == (CLAIMABLE, STILL_TO_SEND)
