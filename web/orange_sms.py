"""Orange's SMS callbacks: delivery receipts and incoming SMS, as JSON notifications.

Each notification is read into the fields of Africa's Talking's form (gateway/orange.py) and
then checked and handled exactly as AT's are (web/sms.py): the same statuses, the same provider
commands and returnee keywords, the same spool while the database is down. They are served
behind the same callback secret and guards (web/callbacks.py).
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, request

from gateway.orange import delivery_fields, incoming_fields
from web import plain
from web.sms import apply_delivery, apply_incoming

bp = Blueprint("sms_orange", __name__)
KIND = "orange"  # the gateway kind (gateway.GATEWAYS) whose ids these callbacks carry


@bp.post("/delivery")
def delivery_receipt() -> Response:
    """A deliveryInfoNotification; unknown message ids are answered 200, as AT's are."""
    try:
        fields = delivery_fields(_json())
    except ValueError as exc:
        return plain(str(exc), 400)
    return apply_delivery(fields, KIND)


@bp.post("/incoming")
def incoming() -> Response:
    """An inboundSMSMessageNotification: a provider's answer or a returnee's keyword."""
    try:
        fields = incoming_fields(_json())
    except ValueError as exc:
        return plain(str(exc), 400)
    return apply_incoming(fields, KIND)


def _json() -> object:
    """The body as JSON; ValueError with a reason a gateway's operator can act on otherwise."""
    try:
        return json.loads(request.get_data(cache=True).decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError("body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"body is not JSON ({exc.msg} at character {exc.pos})") from None
