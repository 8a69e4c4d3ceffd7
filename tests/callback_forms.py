"""Well-formed gateway forms for every callback, and a snapshot of everything stored, to prove
that a refused request wrote nothing."""

from __future__ import annotations

from flask import Flask
from redis import Redis
from sqlalchemy import func, select

import models
from web.context import sira

USSD = {"sessionId": "ATUid_1", "serviceCode": "*384*7472#", "phoneNumber": "+22370000001",
        "networkCode": "61001", "text": ""}  # fmt: skip
SMS = {"from": "+22370000001", "to": "7472", "text": "AIDE", "date": "2017-05-03 06:04:45", "id": "in-1",
       "linkId": "link-1"}  # fmt: skip
OPTOUT = {"phoneNumber": "+22370000001", "senderId": "INFO"}
DELIVERY = {"id": "ATXid_1", "status": "Success", "failureReason": "", "phoneNumber": "+22370000001"}
EVENTS = {"sessionId": "ATUid_1", "status": "Incomplete", "phoneNumber": "+22370000001", "hopsCount": "3",
          "durationInMillis": "41230", "errorMessage": "", "serviceCode": "*384*7472#"}  # fmt: skip

ROUTES = {"/ussd": USSD, "/ussd/events": EVENTS, "/sms/incoming": SMS, "/sms/optout": OPTOUT,
          "/sms/delivery": DELIVERY}  # fmt: skip


def snapshot(app: Flask, redis: Redis) -> tuple[dict[str, int], list[bytes]]:
    """Row counts of every table and every Redis key: equal before and after a refused request."""
    with sira(app).sessions() as session:
        counts = {
            table.name: session.scalar(select(func.count()).select_from(table))
            for table in models.Base.metadata.sorted_tables
        }
    return counts, sorted(redis.keys("*"))
