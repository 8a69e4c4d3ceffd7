"""SMS callbacks from the gateway: delivery reports (incoming messages come with two-way SMS)."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, request
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from models.base import utcnow
from models.db import get_session
from models.messaging import OutboundSms

log = logging.getLogger(__name__)
bp = Blueprint("sms", __name__, url_prefix="/sms")


def plain(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/plain")


@bp.post("/delivery")
def delivery_report() -> Response:
    """Record a delivery report; statuses only move forward; unknown ids are answered 200."""
    form = request.form
    gateway_id, status = form.get("id", "").strip(), form.get("status", "").strip()
    if not gateway_id or not status:
        return plain("missing field " + ("id" if not gateway_id else "status"), 400)
    if len(gateway_id) > 100 or len(status) > 40 or len(form.get("failureReason", "")) > 200:
        return plain("a field is too long", 400)
    session = get_session()
    try:
        row = session.scalar(
            select(OutboundSms).where(OutboundSms.gateway_id == gateway_id).with_for_update()
        )
        if row is None:
            log.info("delivery report for an unknown message id %s", gateway_id)
            return plain("unknown id")
        moved = row.record_delivery(status, form.get("failureReason") or None, utcnow())
        session.commit()
    except SQLAlchemyError:
        session.rollback()
        log.exception("could not store a delivery report")
        return plain("try again later", 503)
    return plain("ok" if moved else "ignored: status does not move forward")
